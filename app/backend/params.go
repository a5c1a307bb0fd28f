package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"zimage/app"
)

// Capabilities is what a backend's server can apply of a request, so a
// person is told before the job runs, not after, and an image record
// never claims a parameter its server dropped.
type Capabilities struct {
	// Ignores lists the parameters the server does not apply, by API name:
	// "negative_prompt", "guidance", "sampler", "scheduler".
	Ignores []string
	// Samplers and Schedulers are the names the server lists; nil when
	// unknown (the server then judges a name itself).
	Samplers, Schedulers []string
}

// Capable is implemented by adapters that can say what their server
// applies.
type Capable interface {
	Capabilities(ctx context.Context) (Capabilities, error)
}

// capsTTL is how long a server's lists are trusted: they change only when
// someone installs a node pack or restarts the server.
const capsTTL = time.Minute

// capsCache keeps one adapter's last good answer for capsTTL.
type capsCache struct {
	mu   sync.Mutex
	at   time.Time
	caps Capabilities
}

func (c *capsCache) get(ctx context.Context, fetch func(context.Context) (Capabilities, error)) (Capabilities, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < capsTTL {
		return c.caps, nil
	}
	ctx, cancel := context.WithTimeout(ctx, httpQuickTimeout)
	defer cancel()
	caps, err := fetch(ctx)
	if err != nil {
		return Capabilities{}, err
	}
	c.at, c.caps = time.Now(), caps
	return caps, nil
}

// Capabilities of ComfyUI come from the workflow (which parameters it maps)
// and /object_info of the node that takes the sampler.
func (c *comfyUI) Capabilities(ctx context.Context) (Capabilities, error) {
	return c.caps.get(ctx, func(ctx context.Context) (Capabilities, error) {
		var caps Capabilities
		for key, api := range map[string]string{"negative_prompt": "negative_prompt", "cfg": "guidance", "sampler_name": "sampler", "scheduler": "scheduler"} {
			if _, ok := c.targets[key]; !ok {
				caps.Ignores = append(caps.Ignores, api)
			}
		}
		slices.Sort(caps.Ignores)
		graph, err := comfyParseWorkflow(c.workflow)
		if err != nil {
			return caps, err
		}
		for key, dst := range map[string]*[]string{"sampler_name": &caps.Samplers, "scheduler": &caps.Schedulers} {
			t, ok := c.targets[key]
			if !ok {
				continue
			}
			class := graph[t.Node].ClassType
			var info map[string]struct {
				Input struct {
					Required map[string]json.RawMessage `json:"required"`
					Optional map[string]json.RawMessage `json:"optional"`
				} `json:"input"`
			}
			if err := c.getJSON(ctx, "object_info/"+url.PathEscape(class), nil, &info); err != nil {
				return caps, err
			}
			in := info[class].Input
			spec, ok := in.Required[t.Input]
			if !ok {
				spec = in.Optional[t.Input]
			}
			*dst = comfyComboOptions(spec)
		}
		return caps, nil
	})
}

// Capabilities of an sdapi server come from /sdapi/v1/samplers and
// /sdapi/v1/schedulers (A1111 before 1.9 has no schedulers route: its
// sampler names carry the schedule).
func (b *a1111) Capabilities(ctx context.Context) (Capabilities, error) {
	return b.caps.get(ctx, func(ctx context.Context) (Capabilities, error) {
		var caps Capabilities
		var samplers []struct {
			Name string `json:"name"`
		}
		if _, e := b.getJSON(ctx, "/sdapi/v1/samplers", &samplers); e != nil {
			return caps, e
		}
		for _, s := range samplers {
			caps.Samplers = append(caps.Samplers, s.Name)
		}
		var schedulers []struct {
			Name string `json:"name"`
		}
		status, e := b.getJSON(ctx, "/sdapi/v1/schedulers", &schedulers)
		switch {
		case status == http.StatusNotFound:
			caps.Ignores = append(caps.Ignores, "scheduler")
		case e != nil:
			return caps, e
		}
		for _, s := range schedulers {
			caps.Schedulers = append(caps.Schedulers, s.Name)
		}
		return caps, nil
	})
}

// sdcppSampleMethods and sdcppSchedulers are the names sd-server's
// <sd_cpp_extra_args> accepts (stable-diffusion.cpp src/stable-diffusion.cpp
// sample_method_to_str and scheduler_to_str; str_to_scheduler also takes
// "normal"). Its OpenAI API has no route that lists them.
var (
	sdcppSampleMethods = []string{"euler", "euler_a", "heun", "dpm2", "dpm++2s_a", "dpm++2m", "dpm++2mv2", "ipndm", "ipndm_v",
		"lcm", "ddim_trailing", "tcd", "res_multistep", "res_2s", "er_sde", "euler_cfg_pp", "euler_a_cfg_pp", "euler_ge",
		"dpm++2m_sde", "dpm++2m_sde_bt", "lms"}
	sdcppSchedulers = []string{"discrete", "karras", "exponential", "ays", "gits", "sgm_uniform", "simple", "smoothstep",
		"kl_optimal", "lcm", "bong_tangent", "ltx2", "logit_normal", "flux2", "flux", "beta", "normal"}
)

// Capabilities of an OpenAI-style server follow from its dialect.
func (b *openAI) Capabilities(ctx context.Context) (Capabilities, error) {
	d, _ := b.dialect(ctx)
	switch d {
	case dialectSDCpp:
		return Capabilities{Samplers: sdcppSampleMethods, Schedulers: sdcppSchedulers}, nil
	case dialectOpenAI:
		return Capabilities{Ignores: []string{"guidance", "negative_prompt", "sampler", "scheduler"}}, nil
	case dialectLocalAI:
		return Capabilities{Ignores: []string{"guidance", "sampler", "scheduler"}}, nil
	}
	return Capabilities{Ignores: []string{"sampler", "scheduler"}}, nil
}

// ParamCheck is what CheckParams needs of a request.
type ParamCheck struct {
	NegativePrompt     bool    // a negative prompt was given
	Guidance           float64 // as asked; 0 and 1 both mean "no CFG"
	Sampler, Scheduler string
}

// CheckParams refuses, at submit time, a sampler or scheduler that a
// backend which could take the job does not have, naming those it has. It
// also returns, by API name, the parameters some such backend would not
// apply (the job is accepted; the image record says what was applied). A
// backend whose lists cannot be had now (down, or not asked yet) does not
// block the request: its server judges the names itself.
func (p *Pool) CheckParams(ctx context.Context, backend, model string, pc ParamCheck) (notApplied []string, err error) {
	p.mu.Lock()
	var cands []Backend
	for _, m := range p.members {
		// A backend that is down is not asked: its answer could take the
		// whole quick timeout, and its server judges the names itself.
		if m.candidate(backend, model) && m.healthy {
			cands = append(cands, m.b)
		}
	}
	p.mu.Unlock()
	f := app.FieldErrors{}
	for _, b := range cands {
		cb, ok := b.(Capable)
		if !ok {
			continue
		}
		caps, err := cb.Capabilities(ctx)
		if err != nil {
			continue
		}
		if pc.NegativePrompt && slices.Contains(caps.Ignores, "negative_prompt") {
			notApplied = append(notApplied, "negative_prompt")
		}
		if pc.Guidance != 0 && pc.Guidance != 1 && slices.Contains(caps.Ignores, "guidance") {
			notApplied = append(notApplied, "guidance")
		}
		checkName(f, b.Name(), "sampler", pc.Sampler, caps.Samplers, slices.Contains(caps.Ignores, "sampler"))
		checkName(f, b.Name(), "scheduler", pc.Scheduler, caps.Schedulers, slices.Contains(caps.Ignores, "scheduler"))
	}
	slices.Sort(notApplied)
	return slices.Compact(notApplied), f.Err()
}

func checkName(f app.FieldErrors, backend, field, name string, have []string, ignored bool) {
	if name == "" {
		return
	}
	if _, told := f[field]; told {
		return
	}
	switch {
	case ignored:
		f.Add(field, fmt.Sprintf("Backend %s does not let you choose the %s: leave it empty for the model's recommended one, or choose another backend.", backend, field))
	case have != nil && !slices.Contains(have, name):
		f.Add(field, fmt.Sprintf("Backend %s has no %s %q. Choose one of: %s, or leave it empty for the model's recommended one.", backend, field, name, strings.Join(have, ", ")))
	}
}

// Capabilities returns what each backend's server applies, by backend
// name, for the generate form; a backend that cannot say now is left out.
func (p *Pool) Capabilities(ctx context.Context) map[string]Capabilities {
	p.mu.Lock()
	var all []Backend
	for _, m := range p.members {
		if m.healthy {
			all = append(all, m.b)
		}
	}
	p.mu.Unlock()
	out := map[string]Capabilities{}
	for _, b := range all {
		if cb, ok := b.(Capable); ok {
			if caps, err := cb.Capabilities(ctx); err == nil {
				out[b.Name()] = caps
			}
		}
	}
	return out
}

// Capabilities of the builtin renderer: it draws without a sampler.
func (b *builtin) Capabilities(context.Context) (Capabilities, error) {
	return Capabilities{Ignores: []string{"sampler", "scheduler"}}, nil
}
