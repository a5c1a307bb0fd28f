package media

import (
	"context"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/sqlite"
)

// Sink stores a finished generation's images for the queue (it satisfies
// queue.Sink without media importing the queue).
type Sink struct {
	Media *Store
	// Options returns the owner's save preferences; nil means defaults
	// (parameters not embedded in files).
	Options func(ctx context.Context, userID string) SaveOptions
}

// Store saves res as g's images and returns their ids.
func (s Sink) Store(ctx context.Context, g app.Generation, res backend.Result) ([]string, error) {
	var opts SaveOptions
	if s.Options != nil {
		opts = s.Options(ctx, g.UserID)
	}
	backendName := g.AssignedBackend
	if backendName == "" {
		backendName = g.Backend
	}
	return s.Media.Save(ctx, GenerationInfo{
		ID: g.ID, UserID: g.UserID, Prompt: g.Prompt, NegativePrompt: g.NegativePrompt, Steps: g.Steps,
		Guidance: g.Guidance, Backend: backendName, Model: g.Model, Seed: g.Seed, Count: g.Count, QueuedAt: g.CreatedAt,
		APIKeyID: g.APIKeyID,
	}, res, opts)
}

// PersonPreferences reads each person's save preferences from the store
// (whether new PNGs carry their generation parameters).
func PersonPreferences(db *sqlite.DB) func(ctx context.Context, userID string) SaveOptions {
	return func(ctx context.Context, userID string) SaveOptions {
		on, _ := db.EmbedParameters(ctx, userID) // unreadable: the private default
		return SaveOptions{EmbedParameters: on}
	}
}
