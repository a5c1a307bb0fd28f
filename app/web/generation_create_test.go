package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestCreateGenerationChecksSampler: the API refuses a sampler or
// scheduler the chosen backend cannot use, naming the field, before any
// job runs; without them the job is accepted.
func TestCreateGenerationChecksSampler(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	alice := env.signup(t, "alice")
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{name: "sampler on a backend without one", body: `{"prompt":"a fox","width":64,"height":64,"steps":1,"sampler":"euler"}`, status: http.StatusBadRequest, field: "sampler"},
		{name: "scheduler on a backend without one", body: `{"prompt":"a fox","width":64,"height":64,"steps":1,"scheduler":"simple"}`, status: http.StatusBadRequest, field: "scheduler"},
		{name: "recommended ones", body: `{"prompt":"a fox","width":64,"height":64,"steps":1}`, status: http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := alice.do("POST", "/api/v1/generations", tt.body)
			if r.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Code, tt.status, r.Body)
			}
			if tt.field == "" {
				return
			}
			fields, _ := r.json(t)["error"].(map[string]any)["fields"].(map[string]any)
			if msg, _ := fields[tt.field].(string); !strings.Contains(msg, "builtin does not let you choose the "+tt.field) {
				t.Errorf("fields = %v, want %s explained", fields, tt.field)
			}
		})
	}
}

// TestGenerateFormSampler: the form offers sampler and scheduler selects,
// and a post without JavaScript gets the same refusal, beside the field.
func TestGenerateFormSampler(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	alice := env.signup(t, "alice")
	page := alice.do("GET", "/generate", "").Body.String()
	for _, want := range []string{`<select id="sampler" name="sampler"`, `<select id="scheduler" name="scheduler"`, "Recommended for the model"} {
		if !strings.Contains(page, want) {
			t.Errorf("generate page lacks %s", want)
		}
	}
	r := alice.form("/generate", url.Values{"prompt": {"a fox"}, "size": {"512x512"}, "steps": {"1"}, "sampler": {"euler"}})
	if r.Code != http.StatusBadRequest || !strings.Contains(r.Body.String(), "builtin does not let you choose the sampler") {
		t.Errorf("form post with a sampler: %d, want 400 with the reason", r.Code)
	}
}
