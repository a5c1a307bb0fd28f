package web

import (
	"math"
	"time"

	"zimage/app"
)

// imageJSON is an image as the API shows it to its owner.
type imageJSON struct {
	ID             string  `json:"id"`
	GenerationID   string  `json:"generation_id"`
	Index          int     `json:"index"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	Seed           int64   `json:"seed"`
	ContentType    string  `json:"content_type"`
	Bytes          int64   `json:"bytes"`
	HasWebP        bool    `json:"has_webp"`
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt"`
	Steps          int     `json:"steps"`
	Guidance       float64 `json:"guidance"`
	Backend        string  `json:"backend"`
	Model          string  `json:"model"`
	// APIKeyID and APIKeyName say which API key (which tool) asked for
	// the image; absent for images made from the pages. The name is given
	// for one image, not in gallery pages (names are sealed).
	APIKeyID           string    `json:"api_key_id,omitempty"`
	APIKeyName         string    `json:"api_key_name,omitempty"`
	Favourite          bool      `json:"favourite"`
	ParametersEmbedded bool      `json:"parameters_embedded"`
	CreatedAt          time.Time `json:"created_at"`
	ExpiresAt          time.Time `json:"expires_at"`
	DeletesInDays      int       `json:"deletes_in_days"`
	RenderMillis       int64     `json:"render_ms,omitempty"`
	WaitMillis         int64     `json:"wait_ms,omitempty"`
	// BackendFinishedAt is when the backend's last byte arrived.
	BackendFinishedAt *time.Time `json:"backend_finished_at,omitempty"`
	URLs              imageURLs  `json:"urls"`
}

type imageURLs struct {
	Original string `json:"original"`
	WebP     string `json:"webp"`
	Thumb    string `json:"thumb"`
	Page     string `json:"page"`
}

// daysLeft rounds up: an image deleted in 3 hours is "1 day" away, never 0
// while it still exists.
func daysLeft(expires, now time.Time) int {
	d := expires.Sub(now).Hours() / 24
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d))
}

func toImageJSON(i app.Image, now time.Time) imageJSON {
	base := "/api/v1/images/" + i.ID + "/file"
	return imageJSON{
		ID: i.ID, GenerationID: i.GenerationID, Index: i.Index, Width: i.Width, Height: i.Height, Seed: i.Seed,
		ContentType: i.ContentType, Bytes: i.Bytes, HasWebP: i.HasWebP, Prompt: i.Prompt, NegativePrompt: i.NegativePrompt,
		Steps: i.Steps, Guidance: i.Guidance, Backend: i.Backend, Model: i.Model, APIKeyID: i.APIKeyID, Favourite: i.Favourite,
		ParametersEmbedded: i.ParametersEmbedded, CreatedAt: i.CreatedAt, ExpiresAt: i.ExpiresAt,
		DeletesInDays: daysLeft(i.ExpiresAt, now),
		RenderMillis:  i.RenderTime().Milliseconds(), WaitMillis: i.WaitTime().Milliseconds(),
		BackendFinishedAt: timePtr(i.FinishedAt),
		URLs:              imageURLs{Original: base + "?format=png", WebP: base + "?format=webp", Thumb: base + "?size=thumb", Page: "/images/" + i.ID},
	}
}
