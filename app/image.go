package app

import "time"

// Image is one picture in a person's gallery: the file the backend returned
// (plus a WebP copy and a thumbnail made later), and the parameters of the
// generation that made it, copied so an image can be shown and remade even
// after its generation row is gone.
//
// Prompt and NegativePrompt are plaintext only in memory: the store keeps
// them sealed with the owner's key.
type Image struct {
	ID           string
	UserID       string
	GenerationID string
	// Index is the image's position within its generation (0-based).
	Index         int
	Width, Height int
	Seed          int64
	// ContentType is the MIME type of the original file, as returned by the
	// backend (image/png usually).
	ContentType string
	// Byte sizes of the plaintext files; WebPBytes and ThumbBytes are 0
	// until HasWebP and HasThumb.
	Bytes, WebPBytes, ThumbBytes int64
	HasWebP, HasThumb            bool
	// ParametersEmbedded says the original carries the generation
	// parameters in its own metadata (the owner's preference at the time).
	ParametersEmbedded bool
	Favourite          bool
	CreatedAt          time.Time
	// ExpiresAt is when the images retention job deletes it.
	ExpiresAt time.Time

	Prompt         string
	NegativePrompt string
	Steps          int
	Guidance       float64
	Backend        string
	Model          string
	// APIKeyID is the API key that asked for it ("" from the pages).
	APIKeyID string
	// Timings of the generation; zero when unknown. QueuedAt is when it
	// was asked for, StartedAt when the backend accepted it, FinishedAt when
	// the backend returned the last byte.
	QueuedAt, StartedAt, FinishedAt time.Time
}

// RenderTime is how long the backend took, or 0 when unknown.
func (i *Image) RenderTime() time.Duration {
	if i.StartedAt.IsZero() || i.FinishedAt.Before(i.StartedAt) {
		return 0
	}
	return i.FinishedAt.Sub(i.StartedAt)
}

// WaitTime is how long the generation waited in the queue, or 0 when
// unknown.
func (i *Image) WaitTime() time.Duration {
	if i.QueuedAt.IsZero() || i.StartedAt.Before(i.QueuedAt) {
		return 0
	}
	return i.StartedAt.Sub(i.QueuedAt)
}
