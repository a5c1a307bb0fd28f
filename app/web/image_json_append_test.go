package web

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"zimage/app"
)

// TestAppendImageJSONMatchesEncodingJSON: the hand-written gallery page is
// byte for byte what encoding/json (through c.JSON) writes for the same
// images, for every kind of value a field can hold.
func TestAppendImageJSONMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	base := app.Image{ID: "01JABCDEF0123456789ABCDEFG", UserID: "u1", GenerationID: "01JGEN", Index: 2, Width: 1024, Height: 768,
		Seed: -42, ContentType: "image/png", Bytes: 1 << 20, HasWebP: true, Prompt: "a lighthouse, at dusk.", NegativePrompt: "blurry",
		Steps: 8, Guidance: 7.5, Backend: "builtin", Model: "z-image-turbo", Favourite: true, ParametersEmbedded: true,
		QueuedAt: now.Add(-3 * time.Second), StartedAt: now.Add(-2 * time.Second), FinishedAt: now.Add(-123456789 * time.Nanosecond),
		CreatedAt: now, ExpiresAt: now.Add(89*24*time.Hour + time.Hour)}
	with := func(f func(*app.Image)) app.Image { i := base; f(&i); return i }
	tests := []struct {
		name string
		imgs []app.Image
		next string
	}{
		{"empty page", nil, ""},
		{"plain image and a cursor", []app.Image{base}, "MTc3.MDFK"},
		{"HTML, quotes and escapes in prompts", []app.Image{with(func(i *app.Image) {
			i.Prompt, i.NegativePrompt = `<b>"cat" & dog</b> \ back`, "tab\there\nnew\rline\b\f\x01\x7f"
		})}, ""},
		{"non-ASCII, U+2028 and invalid UTF-8", []app.Image{with(func(i *app.Image) {
			i.Prompt, i.NegativePrompt, i.Model = "château 🐱 über", "line\u2028sep\u2029para \xff\xfe bad", "modèle"
		})}, ""},
		{"times unknown, zero guidance", []app.Image{with(func(i *app.Image) {
			i.QueuedAt, i.StartedAt, i.FinishedAt, i.Guidance, i.Favourite, i.HasWebP = time.Time{}, time.Time{}, time.Time{}, 0, false, false
		})}, ""},
		{"finished before started, expired", []app.Image{with(func(i *app.Image) {
			i.FinishedAt, i.ExpiresAt = i.StartedAt.Add(-time.Second), now.Add(-time.Hour)
		})}, ""},
		{"tiny, huge and negative guidance", []app.Image{
			with(func(i *app.Image) { i.Guidance = 1e-7 }),
			with(func(i *app.Image) { i.Guidance = 1e21 }),
			with(func(i *app.Image) { i.Guidance = -3.25 }),
			with(func(i *app.Image) { i.Guidance = 1.0 / 3 }),
		}, ""},
		{"another time zone", []app.Image{with(func(i *app.Image) {
			i.CreatedAt = i.CreatedAt.In(time.FixedZone("", 2*3600+30*60))
		})}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]imageJSON, 0, len(tt.imgs))
			for _, i := range tt.imgs {
				out = append(out, toImageJSON(i, now))
			}
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(map[string]any{"images": out, "next": tt.next}); err != nil {
				t.Fatal(err)
			}
			got, ok := appendImagesPage(nil, tt.imgs, tt.next, now)
			if !ok || string(got) != want.String() {
				t.Errorf("ok %v\ngot  %s\nwant %s", ok, got, want.Bytes())
			}
		})
	}
}
