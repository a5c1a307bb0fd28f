package web

import (
	"bytes"
	"testing"
)

// Embedding generation parameters in the PNG is each person's choice, off
// by default.
func TestEmbedParametersPreference(t *testing.T) {
	env := newAuthEnv(t, authOptionsForTest(), Options{})
	ann := env.signup(t, "annembed")
	if got := ann.do("GET", "/api/v1/me", "").json(t)["embed_parameters"]; got != false {
		t.Fatalf("default embed_parameters = %v, want false", got)
	}
	const prompt = "a copper kettle on a windowsill"
	fileOf := func() []byte {
		t.Helper()
		r := ann.do("POST", "/api/v1/generations", `{"prompt":"`+prompt+`","width":64,"height":64,"steps":1}`)
		if r.Code != 202 {
			t.Fatalf("generate: %d %s", r.Code, r.Body)
		}
		_, img := waitGeneration(t, ann, r.json(t)["id"].(string))
		return ann.do("GET", "/api/v1/images/"+img+"/file?format=png", "").Body.Bytes()
	}
	if png := fileOf(); bytes.Contains(png, []byte(prompt)) {
		t.Error("the prompt was written into the file although the person did not ask for it")
	}
	r := ann.do("PATCH", "/api/v1/me", `{"embed_parameters":true}`)
	if r.Code != 200 || r.json(t)["embed_parameters"] != true {
		t.Fatalf("turn on: %d %s", r.Code, r.Body)
	}
	if png := fileOf(); !bytes.Contains(png, []byte(prompt)) {
		t.Error("the PNG does not carry the parameters after the person turned embedding on")
	}
}
