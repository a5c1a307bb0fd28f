package backendfake

// The fake's node catalogue (the classes of the Z-Image-Turbo graph) and
// graph validation as execution.py validate_prompt/validate_inputs do it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

type comfyNode struct {
	ClassType string         `json:"class_type"`
	Inputs    map[string]any `json:"inputs"`
	Meta      any            `json:"_meta,omitempty"`
}

// comfyInput is one required input. Type is INT, FLOAT, STRING, COMBO, or
// the type of a link (MODEL, CLIP, …).
type comfyInput struct {
	Name     string
	Type     string
	Options  []string
	Min, Max float64
	Default  any
}

type comfyClass struct {
	Display    string
	Category   string
	Required   []comfyInput
	Output     []string
	OutputNode bool
}

func comfyInt(name string, def, lo, hi float64) comfyInput {
	return comfyInput{Name: name, Type: "INT", Default: def, Min: lo, Max: hi}
}

func comfyFloat(name string, def, lo, hi float64) comfyInput {
	return comfyInput{Name: name, Type: "FLOAT", Default: def, Min: lo, Max: hi}
}

func comfyLink(name, typ string) comfyInput { return comfyInput{Name: name, Type: typ} }

func comfyCombo(name string, options ...string) comfyInput {
	return comfyInput{Name: name, Type: "COMBO", Options: options}
}

// comfyCatalogue lists the node classes the fake knows; loaders offer the
// configured files.
func comfyCatalogue(cfg ComfyUIConfig) map[string]comfyClass {
	orDefault := func(files []string, def string) []string {
		if files == nil {
			return []string{def}
		}
		return files
	}
	unets := orDefault(cfg.Models, ComfyDefaultUNet)
	clips := orDefault(cfg.CLIPs, ComfyDefaultCLIP)
	vaes := orDefault(cfg.VAEs, ComfyDefaultVAE)
	samplers := []string{"euler", "euler_ancestral", "dpmpp_2m", "res_multistep", "lcm"}
	schedulers := []string{"simple", "normal", "karras", "exponential", "sgm_uniform", "beta"}
	return map[string]comfyClass{
		"UNETLoader": {Display: "Load Diffusion Model", Category: "advanced/loaders", Output: []string{"MODEL"},
			Required: []comfyInput{comfyCombo("unet_name", unets...), comfyCombo("weight_dtype", "default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2")}},
		"CLIPLoader": {Display: "Load CLIP", Category: "advanced/loaders", Output: []string{"CLIP"},
			Required: []comfyInput{comfyCombo("clip_name", clips...), comfyCombo("type", "stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image")}},
		"VAELoader": {Display: "Load VAE", Category: "loaders", Output: []string{"VAE"},
			Required: []comfyInput{comfyCombo("vae_name", vaes...)}},
		"ModelSamplingAuraFlow": {Display: "ModelSamplingAuraFlow", Category: "advanced/model", Output: []string{"MODEL"},
			Required: []comfyInput{comfyLink("model", "MODEL"), comfyFloat("shift", 1.73, 0, 100)}},
		"CLIPTextEncode": {Display: "CLIP Text Encode (Prompt)", Category: "conditioning", Output: []string{"CONDITIONING"},
			Required: []comfyInput{{Name: "text", Type: "STRING"}, comfyLink("clip", "CLIP")}},
		"ConditioningZeroOut": {Display: "ConditioningZeroOut", Category: "advanced/conditioning", Output: []string{"CONDITIONING"},
			Required: []comfyInput{comfyLink("conditioning", "CONDITIONING")}},
		"EmptySD3LatentImage": {Display: "EmptySD3LatentImage", Category: "latent/sd3", Output: []string{"LATENT"},
			Required: []comfyInput{comfyInt("width", 1024, 16, 16384), comfyInt("height", 1024, 16, 16384), comfyInt("batch_size", 1, 1, 4096)}},
		"KSampler": {Display: "KSampler", Category: "sampling", Output: []string{"LATENT"},
			Required: []comfyInput{comfyLink("model", "MODEL"), comfyInt("seed", 0, 0, 18446744073709551615), comfyInt("steps", 20, 1, 10000),
				comfyFloat("cfg", 8, 0, 100), comfyCombo("sampler_name", samplers...), comfyCombo("scheduler", schedulers...),
				comfyLink("positive", "CONDITIONING"), comfyLink("negative", "CONDITIONING"), comfyLink("latent_image", "LATENT"), comfyFloat("denoise", 1, 0, 1)}},
		"VAEDecode": {Display: "VAE Decode", Category: "latent", Output: []string{"IMAGE"},
			Required: []comfyInput{comfyLink("samples", "LATENT"), comfyLink("vae", "VAE")}},
		"SaveImage": {Display: "Save Image", Category: "image", OutputNode: true,
			Required: []comfyInput{comfyLink("images", "IMAGE"), {Name: "filename_prefix", Type: "STRING", Default: "ComfyUI"}}},
		"EmptyImage": {Display: "EmptyImage", Category: "image", Output: []string{"IMAGE"},
			Required: []comfyInput{comfyInt("width", 512, 1, 16384), comfyInt("height", 512, 1, 16384), comfyInt("batch_size", 1, 1, 4096), comfyInt("color", 0, 0, 0xFFFFFF)}},
		"ImageAddNoise": {Display: "ImageAddNoise", Category: "image", Output: []string{"IMAGE"},
			Required: []comfyInput{comfyLink("image", "IMAGE"), comfyInt("seed", 0, 0, 18446744073709551615), comfyFloat("strength", 0.5, 0, 1)}},
		"PreviewImage": {Display: "Preview Image", Category: "image", OutputNode: true,
			Required: []comfyInput{comfyLink("images", "IMAGE")}},
	}
}

// objectInfo is GET /object_info[/{class}]; an unknown class gives {}.
func (f *ComfyUI) objectInfo(only string) map[string]any {
	out := map[string]any{}
	for name, c := range comfyCatalogue(f.config()) {
		if only != "" && name != only {
			continue
		}
		required, order := map[string]any{}, []string{}
		for _, in := range c.Required {
			order = append(order, in.Name)
			switch in.Type {
			case "COMBO":
				opts := in.Options
				if opts == nil {
					opts = []string{} // an empty models folder lists [], never null
				}
				required[in.Name] = []any{opts, map[string]any{}}
			case "INT", "FLOAT":
				required[in.Name] = []any{in.Type, map[string]any{"default": in.Default, "min": in.Min, "max": in.Max}}
			case "STRING":
				required[in.Name] = []any{in.Type, map[string]any{"multiline": in.Name == "text", "default": in.Default}}
			default:
				required[in.Name] = []any{in.Type}
			}
		}
		isList := make([]bool, len(c.Output))
		out[name] = map[string]any{
			"input":          map[string]any{"required": required, "optional": map[string]any{}},
			"input_order":    map[string]any{"required": order},
			"output":         c.Output,
			"output_is_list": isList,
			"output_name":    c.Output,
			"name":           name,
			"display_name":   c.Display,
			"description":    "",
			"python_module":  "nodes",
			"category":       c.Category,
			"output_node":    c.OutputNode,
		}
	}
	return out
}

// validate checks a graph. On success it returns the graph and its valid
// outputs; nodeErrs may still list outputs that failed, as ComfyUI runs a
// prompt when at least one output is valid.
func (f *ComfyUI) validate(prompt map[string]json.RawMessage, cfg ComfyUIConfig) (graph map[string]comfyNode, outputs []string, top, nodeErrs map[string]any) {
	cat := comfyCatalogue(cfg)
	graph = make(map[string]comfyNode, len(prompt))
	ids := make([]string, 0, len(prompt))
	for id := range prompt {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		var n comfyNode
		dec := json.NewDecoder(bytes.NewReader(prompt[id]))
		dec.UseNumber()
		if err := dec.Decode(&n); err != nil || n.ClassType == "" {
			return nil, nil, comfyErr("invalid_prompt", "Cannot execute because a node is missing the class_type property.", fmt.Sprintf("Node ID '#%s'", id)), nil
		}
		if _, ok := cat[n.ClassType]; !ok {
			return nil, nil, comfyErr("invalid_prompt", fmt.Sprintf("Cannot execute because node %s does not exist.", n.ClassType), fmt.Sprintf("Node ID '#%s'", id)), nil
		}
		if n.Inputs == nil {
			n.Inputs = map[string]any{}
		}
		graph[id] = n
	}
	var all []string
	for _, id := range ids {
		if cat[graph[id].ClassType].OutputNode {
			all = append(all, id)
		}
	}
	if len(all) == 0 {
		return nil, nil, comfyErr("prompt_no_outputs", "Prompt has no outputs", ""), nil
	}

	errs := map[string][]map[string]any{}
	valid := map[string]bool{}
	var check func(id string) bool
	check = func(id string) bool {
		if v, ok := valid[id]; ok {
			return v
		}
		valid[id] = true // a cycle is not this fake's concern; stop recursing
		node := graph[id]
		ok := true
		for _, in := range cat[node.ClassType].Required {
			v, present := node.Inputs[in.Name]
			if !present {
				errs[id] = append(errs[id], comfyInputErr("required_input_missing", "Required input is missing", in.Name, in.Name, nil))
				continue
			}
			if link, isLink := v.([]any); isLink {
				src, fault := comfyCheckLink(graph, cat, link, in)
				if fault != nil {
					errs[id] = append(errs[id], fault)
				} else if !check(src) {
					ok = false // upstream fault: this node has no error of its own
				}
				continue
			}
			if e := comfyCheckValue(in, v); e != nil {
				errs[id] = append(errs[id], e)
			}
		}
		ok = ok && len(errs[id]) == 0
		valid[id] = ok
		return ok
	}
	var failed []string
	var details []string
	for _, out := range all {
		if check(out) {
			outputs = append(outputs, out)
			continue
		}
		failed = append(failed, out)
		for _, e := range errs[out] {
			details = append(details, fmt.Sprintf("%s: %s", e["message"], e["details"]))
		}
	}
	if len(errs) > 0 {
		nodeErrs = map[string]any{}
		for id, list := range errs {
			nodeErrs[id] = map[string]any{"errors": list, "dependent_outputs": failed, "class_type": graph[id].ClassType}
		}
	}
	if len(outputs) == 0 {
		return nil, nil, comfyErr("prompt_outputs_failed_validation", "Prompt outputs failed validation", strings.Join(details, "\n")), nodeErrs
	}
	return graph, outputs, nil, nodeErrs
}

func comfyInputErr(typ, message, details, input string, received any) map[string]any {
	return map[string]any{"type": typ, "message": message, "details": details,
		"extra_info": map[string]any{"input_name": input, "input_config": nil, "received_value": received}}
}

func comfyCheckLink(graph map[string]comfyNode, cat map[string]comfyClass, link []any, in comfyInput) (string, map[string]any) {
	bad := comfyInputErr("bad_linked_input", "Bad linked input, must be a length-2 list of [string, int]", fmt.Sprintf("%s, %v", in.Name, link), in.Name, link)
	if len(link) != 2 {
		return "", bad
	}
	src := fmt.Sprint(link[0])
	idx, err := comfyNumber(link[1])
	srcNode, ok := graph[src]
	if err != nil || !ok {
		return "", bad
	}
	outs := cat[srcNode.ClassType].Output
	if int(idx) < 0 || int(idx) >= len(outs) || outs[int(idx)] != in.Type {
		got := "?"
		if int(idx) >= 0 && int(idx) < len(outs) {
			got = outs[int(idx)]
		}
		return "", comfyInputErr("return_type_mismatch", "Return type mismatch between linked nodes",
			fmt.Sprintf("%s, received_type(%s) mismatch input_type(%s)", in.Name, got, in.Type), in.Name, link)
	}
	return src, nil
}

func comfyCheckValue(in comfyInput, v any) map[string]any {
	switch in.Type {
	case "INT", "FLOAT":
		n, err := comfyNumber(v)
		if err != nil {
			return comfyInputErr("invalid_input_type", "Failed to convert an input value to a "+in.Type+" value", fmt.Sprintf("%s, %v, %v", in.Name, v, err), in.Name, v)
		}
		if n < in.Min {
			return comfyInputErr("value_smaller_than_min", fmt.Sprintf("Value %v smaller than min of %v", v, in.Min), in.Name, in.Name, v)
		}
		if n > in.Max {
			return comfyInputErr("value_bigger_than_max", fmt.Sprintf("Value %v bigger than max of %v", v, in.Max), in.Name, in.Name, v)
		}
	case "COMBO":
		s := fmt.Sprint(v)
		for _, o := range in.Options {
			if o == s {
				return nil
			}
		}
		list := fmt.Sprintf("(list of length %d)", len(in.Options))
		if len(in.Options) == 0 {
			list = "[]"
		} else if len(in.Options) <= 10 {
			list = "['" + strings.Join(in.Options, "', '") + "']"
		}
		return comfyInputErr("value_not_in_list", "Value not in list", fmt.Sprintf("%s: '%s' not in %s", in.Name, s, list), in.Name, v)
	}
	return nil
}

// comfyNumber converts like Python's int()/float() on a JSON value.
func comfyNumber(v any) (float64, error) {
	switch n := v.(type) {
	case json.Number:
		return n.Float64()
	case float64:
		return n, nil
	case bool:
		if n {
			return 1, nil
		}
		return 0, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(n), 64)
	}
	return 0, fmt.Errorf("invalid literal %v", v)
}
