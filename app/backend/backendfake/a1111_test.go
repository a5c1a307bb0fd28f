package backendfake

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A1111's API returns PNGs with the infotext in a "parameters" text chunk
// (processing.py puts it in image.info, encode_pil_to_base64 copies it).
func TestA1111ImagesCarryParameters(t *testing.T) {
	f := NewA1111(t, A1111Config{})
	body := `{"prompt":"a fox in snow","negative_prompt":"blurry","seed":77,"steps":2,"cfg_scale":1,"width":64,"height":32,"sampler_name":"Euler"}`
	resp, err := http.Post(f.URL+"/sdapi/v1/txt2img", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Images []string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Images) != 1 {
		t.Fatalf("txt2img: %v, %d images", err, len(out.Images))
	}
	png, _ := base64.StdEncoding.DecodeString(out.Images[0])
	want := "tEXtparameters\x00a fox in snow\nNegative prompt: blurry\nSteps: 2, Sampler: Euler, Schedule type: Automatic, CFG scale: 1, Seed: 77, Size: 64x32"
	if !strings.Contains(string(png), want) {
		t.Errorf("PNG lacks %q", want)
	}
}
