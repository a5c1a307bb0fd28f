package privacy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"zimage/app"
)

// TrainingRecord is one line of dataset.jsonl. It carries no account id:
// the dataset is about pictures and prompts, not about who made them.
type TrainingRecord struct {
	Prompt         string `json:"prompt"`
	NegativePrompt string `json:"negative_prompt,omitempty"`
	Seed           int64  `json:"seed"`
	Width          int    `json:"width"`
	Height         int    `json:"height"`
	Steps          int    `json:"steps"`
	Model          string `json:"model"`
	File           string `json:"file"`
}

// TrainingExportResult counts what an export wrote.
type TrainingExportResult struct {
	People int `json:"people"`
	Images int `json:"images"`
}

// ExportTraining writes dir/dataset.jsonl and dir/images/<id>.<ext> (the
// decrypted originals) for the people whose latest training consent is
// granted at this moment, who are not deleted and have not restricted
// processing. dir must be new or empty. The run is audited with counts
// only. Consent is read once at the start: a withdrawal that lands during
// the run applies to the next one, as the ledger's timestamps show.
func (s *Controls) ExportTraining(ctx context.Context, images ImageSource, dir string) (TrainingExportResult, error) {
	var res TrainingExportResult
	if err := newEmptyDir(dir); err != nil {
		return res, err
	}
	users, err := s.db.UsersGranting(ctx, PurposeTraining)
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o700); err != nil {
		return res, app.Wrap(err, "Could not create %s.", filepath.Join(dir, "images"))
	}
	f, err := os.OpenFile(filepath.Join(dir, "dataset.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return res, app.Wrap(err, "Could not create the dataset file in %s.", dir)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, userID := range users {
		n, err := s.exportPerson(ctx, images, dir, userID, enc)
		if err != nil {
			return res, err
		}
		if n > 0 {
			res.People++
			res.Images += n
		}
	}
	if err := w.Flush(); err != nil {
		return res, err
	}
	if err := f.Sync(); err != nil {
		return res, err
	}
	err = s.db.AppendAudit(ctx, app.AuditEntry{Action: AuditTrainingExport, Detail: controlsDetail("people", res.People, "images", res.Images)})
	return res, err
}

func (s *Controls) exportPerson(ctx context.Context, images ImageSource, dir, userID string, enc *json.Encoder) (int, error) {
	n, cursor := 0, ""
	for {
		page, next, err := images.List(ctx, userID, cursor, 100, "")
		if err != nil {
			return n, err
		}
		for _, img := range page {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			name, err := writeOriginal(ctx, images, dir, img)
			if err != nil {
				return n, err
			}
			if name == "" {
				continue
			}
			rec := TrainingRecord{Prompt: img.Prompt, NegativePrompt: img.NegativePrompt, Seed: img.Seed,
				Width: img.Width, Height: img.Height, Steps: img.Steps, Model: img.Model, File: name}
			if err := enc.Encode(rec); err != nil {
				return n, err
			}
			n++
		}
		if next == "" {
			return n, nil
		}
		cursor = next
	}
}

// writeOriginal copies one image's original into dir/images; "" when the
// image vanished meanwhile (expired, or deleted by its owner).
func writeOriginal(ctx context.Context, images ImageSource, dir string, img app.Image) (string, error) {
	rc, contentType, _, err := images.Open(ctx, img.UserID, img.ID, "png", "full")
	if app.ErrorCode(err) == app.ENOTFOUND {
		return "", nil
	} else if err != nil {
		return "", err
	}
	defer rc.Close()
	ext := ".png"
	if strings.Contains(contentType, "jpeg") {
		ext = ".jpg"
	} else if strings.Contains(contentType, "webp") {
		ext = ".webp"
	}
	name := "images/" + img.ID + ext
	out, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(name)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return "", err
	}
	return name, out.Close()
}

func newEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return app.Errorf(app.EINVALID, "Cannot read %s (%v): choose a new or empty folder.", dir, err)
	case len(entries) > 0:
		return app.Errorf(app.EINVALID, "%s is not empty: choose a new folder, so no earlier dataset (perhaps with withdrawn consent) is mixed in.", dir)
	}
	return nil
}
