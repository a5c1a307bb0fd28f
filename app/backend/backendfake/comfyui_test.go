package backendfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The fake's own corners, checked over plain HTTP the way ComfyUI answers them.
func TestComfyUIWireCorners(t *testing.T) {
	tests := []struct {
		name     string
		cfg      ComfyUIConfig
		method   string
		path     string
		origin   string
		body     string
		status   int
		contains string // in the body; "" means any
	}{
		{name: "origin from another host on loopback", method: "GET", path: "/system_stats", origin: "http://evil.example", status: 403},
		{name: "origin matching the host", method: "GET", path: "/system_stats", origin: "same", status: 200, contains: `"comfyui_version"`},
		{name: "api alias", method: "GET", path: "/api/system_stats", status: 200, contains: `"devices"`},
		{name: "no prompt", method: "POST", path: "/prompt", body: `{}`, status: 400, contains: `"type":"no_prompt"`},
		{name: "no prompt, old schema", cfg: ComfyUIConfig{OldErrorSchema: true}, method: "POST", path: "/prompt", body: `{}`, status: 400, contains: `{"error":"no prompt","node_errors":[]}`},
		{name: "prompt_id not a canonical uuid", method: "POST", path: "/prompt", body: `{"prompt":{},"prompt_id":"ABC"}`, status: 400, contains: `"invalid_prompt_id"`},
		{name: "unknown node class", method: "POST", path: "/prompt", body: `{"prompt":{"1":{"class_type":"Nope","inputs":{}}}}`, status: 400, contains: `Cannot execute because node Nope does not exist.`},
		{name: "no outputs", method: "POST", path: "/prompt", body: `{"prompt":{"1":{"class_type":"VAELoader","inputs":{"vae_name":"ae.safetensors"}}}}`, status: 400, contains: `"prompt_no_outputs"`},
		{name: "linked output of the wrong type", method: "POST", path: "/prompt",
			body:   `{"prompt":{"28":{"class_type":"UNETLoader","inputs":{"unet_name":"x.safetensors","weight_dtype":"default"}},"9":{"class_type":"SaveImage","inputs":{"images":["28",0],"filename_prefix":"a"}}}}`,
			status: 400, contains: `"return_type_mismatch"`},
		{name: "unknown history id", method: "GET", path: "/history/0f0e0d0c-0b0a-4908-8706-050403020100", status: 200, contains: "{}"},
		{name: "view climbing out", method: "GET", path: "/view?filename=../secret.png", status: 400},
		{name: "view subfolder climbing out", method: "GET", path: "/view?filename=a.png&subfolder=../x", status: 403},
		{name: "view missing file", method: "GET", path: "/view?filename=a.png&type=output", status: 404},
		{name: "object_info unknown class", method: "GET", path: "/object_info/Nope", status: 200, contains: "{}"},
		{name: "object_info combo lists models", cfg: ComfyUIConfig{Models: []string{"m.safetensors"}}, method: "GET", path: "/object_info/UNETLoader", status: 200, contains: `"unet_name":[["m.safetensors"],{}]`},
		{name: "http 500", cfg: ComfyUIConfig{Fail: ComfyHTTP500}, method: "GET", path: "/system_stats", status: 500},
		{name: "queue shape", method: "GET", path: "/queue", status: 200, contains: `"queue_pending":[]`},
		{name: "queue remaining", method: "GET", path: "/prompt", status: 200, contains: `{"exec_info":{"queue_remaining":0}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewComfyUI(t, tt.cfg)
			req, err := http.NewRequest(tt.method, f.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.origin == "same" {
				req.Header.Set("Origin", f.URL)
			} else if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.contains) {
				t.Errorf("got %d %s\nwant %d containing %s", resp.StatusCode, body, tt.status, tt.contains)
			}
		})
	}
}

// GET /history/{id} is {} while the prompt runs and the full entry after;
// the saved PNG carries the prompt graph and extra_pnginfo as SaveImage
// writes them.
func TestComfyUIHistoryEmptyUntilDone(t *testing.T) {
	f := NewComfyUI(t, ComfyUIConfig{StepDelay: 30 * time.Millisecond})
	const id = "0f0e0d0c-0b0a-4908-8706-050403020100"
	body := `{"prompt_id":"` + id + `","prompt":{
	 "13":{"class_type":"EmptySD3LatentImage","inputs":{"width":64,"height":32,"batch_size":1}},
	 "28":{"class_type":"UNETLoader","inputs":{"unet_name":"` + ComfyDefaultUNet + `","weight_dtype":"default"}},
	 "30":{"class_type":"CLIPLoader","inputs":{"clip_name":"` + ComfyDefaultCLIP + `","type":"lumina2"}},
	 "29":{"class_type":"VAELoader","inputs":{"vae_name":"` + ComfyDefaultVAE + `"}},
	 "27":{"class_type":"CLIPTextEncode","inputs":{"clip":["30",0],"text":"a fox in snow"}},
	 "3":{"class_type":"KSampler","inputs":{"model":["28",0],"positive":["27",0],"negative":["27",0],"latent_image":["13",0],
	      "seed":1,"steps":4,"cfg":1,"sampler_name":"euler","scheduler":"simple","denoise":1}},
	 "8":{"class_type":"VAEDecode","inputs":{"samples":["3",0],"vae":["29",0]}},
	 "9":{"class_type":"SaveImage","inputs":{"images":["8",0],"filename_prefix":"z-image-turbo"}}},
	 "extra_data":{"extra_pnginfo":{"workflow":{"nodes":[{"id":27,"widgets_values":["a fox in snow"]}]}}}}`
	resp, err := http.Post(f.URL+"/prompt", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var ok struct {
		PromptID string `json:"prompt_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ok)
	resp.Body.Close()
	if resp.StatusCode != 200 || ok.PromptID != id {
		t.Fatalf("POST /prompt: %d, prompt_id %q, want 200 and the client's id", resp.StatusCode, ok.PromptID)
	}
	get := func() map[string]json.RawMessage {
		resp, err := http.Get(f.URL + "/history/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h map[string]json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := get(); len(h) != 0 {
		t.Fatalf("history while running = %s, want {}", h)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.Status(id) != "success" {
		if time.Now().After(deadline) {
			t.Fatalf("prompt status %q, want success", f.Status(id))
		}
		time.Sleep(10 * time.Millisecond)
	}
	entry := string(get()[id])
	if !strings.Contains(entry, `"filename":"z-image-turbo_00001_.png"`) || !strings.Contains(entry, `"status_str":"success"`) {
		t.Errorf("history entry = %s", entry)
	}
	resp, err = http.Get(f.URL + "/view?filename=z-image-turbo_00001_.png&subfolder=&type=output")
	if err != nil {
		t.Fatal(err)
	}
	png, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("/view: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"tEXtprompt\x00{\"13\": {", `"text": "a fox in snow"`, "tEXtworkflow\x00{\"nodes\": [{\"id\": 27, \"widgets_values\": [\"a fox in snow\"]}]}"} {
		if !strings.Contains(string(png), want) {
			t.Errorf("saved PNG lacks %q", want)
		}
	}
}
