package backend

import (
	"math"
	"reflect"
	"strings"
	"testing"

	zembed "zimage/embed"
)

// FuzzComfyUIWorkflow feeds arbitrary workflows and workflow maps to
// NewComfyUI and arbitrary requests to the graph it fills. A workflow the
// adapter accepts at start must work for every job: fill never fails,
// every parameter lands exactly on the input the map names, and nothing
// else in the graph changes but SaveImage sent as PreviewImage.
func FuzzComfyUIWorkflow(f *testing.F) {
	turbo, err := zembed.FS.ReadFile(comfyDefaultWorkflowPath)
	if err != nil {
		f.Fatal(err)
	}
	sd := `{"3":{"class_type":"KSampler","inputs":{"seed":0,"steps":20,"cfg":7,"model":["4",0]}},` +
		`"4":{"class_type":"CheckpointLoaderSimple","inputs":{"ckpt_name":"v1-5.safetensors"}},` +
		`"5":{"class_type":"EmptyLatentImage","inputs":{"width":512,"height":512,"batch_size":1}},` +
		`"6":{"class_type":"CLIPTextEncode","inputs":{"text":"","clip":["4",1]}},` +
		`"7":{"class_type":"CLIPTextEncode","inputs":{"text":"","clip":["4",1]}}}`
	sdMap := "prompt=6.text;negative_prompt=7.text;seed=3.seed;steps=3.steps;cfg=3.cfg;width=5.width;height=5.height;batch_size=5.batch_size;model=4.ckpt_name"
	for _, s := range []struct {
		workflow, mapping string
	}{
		{string(turbo), ""},
		{sd, sdMap},
		{`{"prompt":` + sd + `,"client_id":"x"}`, sdMap},
		{`{"prompt":{"prompt":{"class_type":"CLIPTextEncode","inputs":{"text":""}}}}`, "prompt=prompt.text"},
		{`{"prompt":{"nodes":{"class_type":"A","inputs":{"text":""}},"links":{"class_type":"B","inputs":{}}}}`, "prompt=nodes.text"},
		{sd, "prompt=6.text;negative_prompt=6.text"},
		{sd, "prompt=6.text;seed=6.text"},
		{`{"a.b":{"class_type":"X","inputs":{"c":1,"text":""}}}`, "prompt=a.b.text;seed=a.b.c"},
		{`{"1":{"class_type":"X","inputs":{"text":["2",0]}},"2":{"class_type":"Y"}}`, "prompt=1.text"},
		{`{"nodes":[],"links":[]}`, ""},
		{`{"1":{"class_type":"X","inputs":{"seed":18446744073709551615,"text":"a"},"_meta":{"title":"t"}}}`, "prompt=1.text"},
		{`{"1":null}`, "prompt=1.text"},
		{`[]`, ""},
	} {
		f.Add([]byte(s.workflow), s.mapping, "a red fox in snow", "blurry", int64(42), 1024, 768, 8, 1.0, 2, "")
	}
	f.Fuzz(func(t *testing.T, workflow []byte, mapping, prompt, negative string, seed int64, width, height, steps int, guidance float64, count int, model string) {
		m := map[string]string{}
		for _, kv := range strings.Split(mapping, ";") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		b, err := NewComfyUI(Options{Name: "gpu0", URL: "http://127.0.0.1:8188", Workflow: workflow, WorkflowMap: m})
		if err != nil {
			if !strings.HasPrefix(err.Error(), `comfyui backend "gpu0": `) {
				t.Fatalf("refusal %q does not name the backend", err)
			}
			return
		}
		c := b.(*comfyUI)
		if math.IsNaN(guidance) || guidance < 0 || guidance > 30 {
			guidance = 1 // app.GenerationParams.Validate keeps guidance there
		}
		req := Request{Prompt: prompt, NegativePrompt: negative, Seed: seed, Width: width, Height: height,
			Steps: steps, Guidance: guidance, Count: count, Model: model}
		graph, _, err := c.fill(req)
		if err != nil {
			t.Fatalf("the workflow was accepted at start, but filling a job fails: %v", err)
		}
		want := map[string]any{"prompt": prompt, "negative_prompt": negative, "seed": seed, "batch_size": max(count, 1)}
		if width > 0 {
			want["width"] = width
		}
		if height > 0 {
			want["height"] = height
		}
		if steps > 0 {
			want["steps"] = steps
		}
		if guidance > 0 {
			want["cfg"] = guidance
		}
		if model != "" {
			want["model"] = model
		}
		template, err := comfyDecodeGraph(c.workflow)
		if err != nil {
			t.Fatal(err)
		}
		filled := map[comfyTarget]bool{}
		for key, target := range c.targets {
			v, ok := want[key]
			if !ok || template[target.Node].ClassType == "SaveImage" {
				continue // a save node is sent as PreviewImage, its prefix dropped
			}
			filled[target] = true
			if got := graph[target.Node].Inputs[target.Input]; !reflect.DeepEqual(got, v) {
				t.Fatalf("%s is %#v at %s, want %#v", key, got, target, v)
			}
		}
		// The one change fill makes beyond the map: every SaveImage is sent
		// as a PreviewImage, so no copy stays in ComfyUI's output folder.
		comfyKeepNoCopy(template)
		if len(graph) != len(template) {
			t.Fatalf("the filled graph has %d nodes, the workflow %d", len(graph), len(template))
		}
		for id, node := range template {
			got := graph[id]
			if got == nil || got.ClassType != node.ClassType || !reflect.DeepEqual(got.Meta, node.Meta) || len(got.Inputs) != len(node.Inputs) {
				t.Fatalf("node %s changed: %+v, want %+v", id, got, node)
			}
			for input, v := range node.Inputs {
				if !filled[comfyTarget{id, input}] && !reflect.DeepEqual(got.Inputs[input], v) {
					t.Fatalf("input %s.%s changed from %#v to %#v though no parameter maps to it", id, input, v, got.Inputs[input])
				}
			}
		}
	})
}
