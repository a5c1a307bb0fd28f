package cli

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"zimage/app"
	"zimage/app/auth"
	"zimage/app/backend"
	"zimage/app/media"
	"zimage/app/privacy"
	"zimage/app/sqlite"
	"zimage/app/vault"
)

const seedPassword = "correct horse battery staple"

// seededFolder is a data folder as a server leaves it: two accounts, each
// with images (original, WebP copy and thumbnail on disk) and a finished
// export archive; "leaver" has deleted their account, and waits for the
// purge.
type seededFolder struct {
	dir                string
	leaverID, stayerID string
	leaverImages       int
	leaverExports      int
}

// seedDataFolder fills dir through the real stores (no server running when
// it returns: every handle is closed).
func seedDataFolder(t *testing.T, dir string) seededFolder {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "zimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := vault.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	m, err := media.New(dir, db, keys, media.Options{ImagesRetention: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.Start(runCtx)
	defer m.Stop()
	hasher := auth.NewHasher(auth.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	accounts := auth.New(db, keys, auth.Options{Signup: app.SignupOpen, Hasher: hasher})

	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	img.Set(0, 0, color.RGBA{1, 2, 3, 255})
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}

	f := seededFolder{dir: dir, leaverImages: 3, leaverExports: 1}
	for _, name := range []string{"stayer", "leaver"} {
		u, err := accounts.SignUp(ctx, auth.SignUpInput{Email: name + "@example.com", Username: name, Password: seedPassword, AgeConfirmed: true})
		if err != nil {
			t.Fatal(err)
		}
		n := 1
		if name == "leaver" {
			f.leaverID, n = u.ID, f.leaverImages
		} else {
			f.stayerID = u.ID
		}
		for range n {
			ids, err := m.Save(ctx, media.GenerationInfo{ID: ulid.Make().String(), UserID: u.ID, Prompt: "a lighthouse", Steps: 1, Backend: "builtin", Count: 1},
				backend.Result{Images: []backend.Image{{Data: buf.Bytes()}}}, media.SaveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			waitDerivatives(t, m, u.ID, ids[0])
		}
		// A finished export: its row and its sealed archive.
		e := app.Export{ID: ulid.Make().String(), UserID: u.ID}
		if err := db.CreateExport(ctx, &e); err != nil {
			t.Fatal(err)
		}
		if _, err := db.FinishExport(ctx, e.ID, 10, "", 7*24*time.Hour, nil, ""); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "exports", u.ID), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "exports", u.ID, e.ID+".zip.sealed"), []byte("sealed archive"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctl := privacy.NewControls(privacy.ControlsDeps{DB: db, Vault: keys, Hasher: hasher})
	if err := ctl.DeleteAccount(ctx, f.leaverID, seedPassword, ""); err != nil {
		t.Fatal(err)
	}
	return f
}

// waitDerivatives waits for the WebP copy and thumbnail, so no file is
// written after the stores close.
func waitDerivatives(t *testing.T, m *media.Store, userID, imageID string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		img, err := m.Get(context.Background(), userID, imageID)
		if err != nil {
			t.Fatal(err)
		}
		if img.HasWebP && img.HasThumb {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("image %s has no WebP copy and thumbnail after 30 s", imageID)
}
