package web

import (
	"net/http"
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
