package app

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestGenerationValidate(t *testing.T) {
	limits := GenerationLimits{MaxSide: 1024, MaxPixels: 1024 * 768, MaxSteps: 50, MaxCount: 4, MaxPromptLength: 20}
	valid := GenerationParams{Prompt: "a fox", Width: 512, Height: 512, Steps: 8, Guidance: 3.5, Seed: 7, Count: 1}
	tests := []struct {
		name   string
		change func(*GenerationParams)
		field  string // "" means valid
	}{
		{"valid", func(p *GenerationParams) {}, ""},
		{"random seed", func(p *GenerationParams) { p.Seed = RandomSeed }, ""},
		{"largest seed", func(p *GenerationParams) { p.Seed = MaxSeed }, ""},
		{"prompt at the limit in characters", func(p *GenerationParams) { p.Prompt = strings.Repeat("é", 20) }, ""},
		{"empty prompt", func(p *GenerationParams) { p.Prompt = "  \n" }, "prompt"},
		{"prompt too long", func(p *GenerationParams) { p.Prompt = strings.Repeat("a", 21) }, "prompt"},
		{"prompt not UTF-8", func(p *GenerationParams) { p.Prompt = "\xff\xfe" }, "prompt"},
		{"negative prompt too long", func(p *GenerationParams) { p.NegativePrompt = strings.Repeat("b", 21) }, "negative_prompt"},
		{"width not a multiple of 16", func(p *GenerationParams) { p.Width = 500 }, "width"},
		{"height too small", func(p *GenerationParams) { p.Height = 48 }, "height"},
		{"height over max side", func(p *GenerationParams) { p.Height = 1040 }, "height"},
		{"too many pixels", func(p *GenerationParams) { p.Width, p.Height = 1024, 1024 }, "width"},
		{"zero steps", func(p *GenerationParams) { p.Steps = 0 }, "steps"},
		{"too many steps", func(p *GenerationParams) { p.Steps = 51 }, "steps"},
		{"negative guidance", func(p *GenerationParams) { p.Guidance = -1 }, "guidance"},
		{"NaN guidance", func(p *GenerationParams) { p.Guidance = math.NaN() }, "guidance"},
		{"zero images", func(p *GenerationParams) { p.Count = 0 }, "count"},
		{"too many images", func(p *GenerationParams) { p.Count = 5 }, "count"},
		{"seed below -1", func(p *GenerationParams) { p.Seed = -2 }, "seed"},
		{"seed above 2^53-1", func(p *GenerationParams) { p.Seed = MaxSeed + 1 }, "seed"},
		{"backend name absurd", func(p *GenerationParams) { p.Backend = strings.Repeat("x", 300) }, "backend"},
		{"model name absurd", func(p *GenerationParams) { p.Model = strings.Repeat("x", 300) }, "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid
			tt.change(&p)
			err := p.Validate(limits)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != EINVALID {
				t.Fatalf("Validate: %v, want EINVALID", err)
			}
			if len(e.Fields) != 1 || e.Fields[tt.field] == "" {
				t.Errorf("fields = %v, want exactly %s", e.Fields, tt.field)
			}
		})
	}
}
