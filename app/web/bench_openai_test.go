package web

import (
	"net/http"
	"testing"

	"zimage/app"
	"zimage/app/queue"
)

// BenchmarkOpenAIOverNative measures what the OpenAI endpoint adds over the
// native API for the same job on the builtin renderer (64×64, one step,
// so the renderer's own time is small): native is POST /api/v1/generations,
// wait for the success event, GET the PNG; openai is one POST
// /v1/images/generations answering b64_json. The difference per op is the
// OpenAI layer's cost (model resolution, waiting, base64, JSON).
//
//	go test ./app/web/ -run '^$' -bench OpenAIOverNative -benchtime 200x
func BenchmarkOpenAIOverNative(b *testing.B) {
	env := newAuthEnv(b, authOptionsForTest(), Options{})
	owner := env.signup(b, "alice")
	kc, _ := owner.apiKey(b, app.ScopeGenerate, app.ScopeRead)
	b.Run("native", func(b *testing.B) {
		events, stop := env.queue.Subscribe(owner.userID)
		defer stop()
		for b.Loop() {
			r := kc.do("POST", "/api/v1/generations", `{"prompt":"a fox","width":64,"height":64,"steps":1}`)
			if r.Code != http.StatusAccepted {
				b.Fatalf("%d %s", r.Code, r.Body)
			}
			id := r.json(b)["id"].(string)
			var img string
			for img == "" {
				e := <-events
				if e.GenerationID == id && e.Type == queue.EventSucceeded {
					img = e.ImageIDs[0]
				}
			}
			if r := kc.do("GET", "/api/v1/images/"+img+"/file?format=png", ""); r.Code != http.StatusOK {
				b.Fatalf("%d %s", r.Code, r.Body)
			}
		}
	})
	b.Run("openai", func(b *testing.B) {
		for b.Loop() {
			r := kc.do("POST", "/v1/images/generations", `{"prompt":"a fox","size":"64x64","steps":1}`)
			if r.Code != http.StatusOK {
				b.Fatalf("%d %s", r.Code, r.Body)
			}
		}
	})
}
