// Package media keeps the image files of Z Image: the original each backend
// returned, a WebP copy and a thumbnail, each sealed with its owner's key
// and written atomically under <dataDir>/media/<userID>/<imageID>.<variant>;
// and the images rows that describe them.
//
// The original is stored as returned, at once, so a person sees their
// picture without waiting for any re-encoding; WebP and thumbnail are made
// afterwards by a small worker pool (WebP encoding a 1024² picture takes
// about 100 ms of CPU). The database is the durable record of what is
// still to do, so a crash or a full queue only delays derivatives.
//
// Crash safety rests on one order, used everywhere: files before rows when
// creating, files before rows when deleting. A crash then leaves either a
// file without a row (which Sweep removes) or a row whose files are partly
// gone (which a repeated delete, or the retention job, finishes) — never
// a file that nothing can find.
package media

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/provenance"
	"zimage/app/sqlite"
	"zimage/app/vault"

	"github.com/oklog/ulid/v2"
)

// Sealer is what the store needs of the vault; *vault.Vault implements it.
type Sealer interface {
	Seal(userID string, aad, plaintext []byte) ([]byte, error)
	Open(userID string, aad, sealed []byte) ([]byte, error)
	SealWriter(userID string, aad []byte, w io.Writer) (io.WriteCloser, error)
	OpenReader(userID string, aad []byte, r io.Reader) (io.Reader, error)
}

var _ Sealer = (*vault.Vault)(nil)

// Options configure a Store. Zero values take the defaults noted.
type Options struct {
	// ImagesRetention is how long an image is kept after its creation
	// (default 90 days).
	ImagesRetention time.Duration
	Logger          *slog.Logger
	// Workers is how many derivative encoders run at once (default 1:
	// encoding is CPU-bound and the machine is shared with the web server,
	// and often with the model server).
	Workers int
	// QueueSize bounds the derivative queue in memory (default 256); work
	// that does not fit is found again in the database when the queue
	// empties.
	QueueSize int
	// SweepGrace is how old a leftover file must be before Sweep removes
	// it (default 10 minutes), so writes in flight are never taken for
	// crash leftovers.
	SweepGrace time.Duration
	// SearchScanLimit bounds how many rows one List call with a query
	// reads (default 5000); see List.
	SearchScanLimit int
	// Marks writes the AI-generated marks into every stored file (the zero
	// value marks them; see provenance.Marker).
	Marks provenance.Marker
	// Credentials signs every stored file after the marks (the
	// zero value signs nothing; see provenance.Credentials).
	Credentials provenance.Credentials
}

// SaveOptions are the owner's preferences that shape a saved file.
type SaveOptions struct {
	// EmbedParameters writes the prompt and parameters into the original
	// PNG as an AUTOMATIC1111-style "parameters" text chunk, so other tools
	// can read them back. It is off unless the person turns it on: the
	// downloaded file is what people share, and a shared picture should not
	// carry their prompt (which can be personal) without their choice. The
	// gallery shows the parameters either way. JPEG and WebP originals are
	// stored without it. Whatever the backend wrote into the file is
	// removed either way, and the AI-generated marks are written either
	// way: this choice is about the prompt only.
	EmbedParameters bool
}

// GenerationInfo is what Save needs to know of the generation that made a
// result. The queue fills it from its own record, so media does not depend
// on the queue.
type GenerationInfo struct {
	ID             string // generation id; images are unique per (ID, index)
	UserID         string
	Prompt         string
	NegativePrompt string
	Steps          int
	Guidance       float64
	Backend        string // name of the backend that ran it
	Model          string // model asked for; Result.Model wins when set
	// Seed is the first seed; an image the backend returned without its own
	// seed (0) is recorded as Seed+index.
	Seed int64
	// Count is how many images were asked for; a result with a different
	// number is saved as it is, and logged.
	Count int
	// QueuedAt is when the generation was asked for. StartedAt and
	// FinishedAt come from Result.Submitted and Result.Finished.
	QueuedAt time.Time
	// APIKeyID is the API key that asked for the images ("" from the pages).
	APIKeyID string
}

// Store keeps image files and rows. It is safe for concurrent use.
type Store struct {
	root       string
	db         *sqlite.DB
	sealer     Sealer
	retention  time.Duration
	log        *slog.Logger
	workers    int
	sweepGrace time.Duration
	scanLimit  int
	marks      provenance.Marker
	creds      provenance.Credentials

	// locks serialise work on one image (derivative writes, deletes):
	// striped, so memory stays fixed however many images exist.
	locks [64]sync.Mutex

	jobs      chan sqlite.ImageKey
	rescan    atomic.Bool   // the database may hold work the queue lost
	wake      chan struct{} // nudges an idle worker to look at rescan
	quit      chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once
	wg        sync.WaitGroup
}

// DefaultImagesRetention is the images retention window when none is
// configured.
const DefaultImagesRetention = 90 * 24 * time.Hour

// New opens the media folder in dataDir (creating it mode 0700) and sweeps
// what a crash left there (see Sweep). Call Start to run the derivative
// workers.
func New(dataDir string, db *sqlite.DB, sealer Sealer, o Options) (*Store, error) {
	if dataDir == "" || db == nil || sealer == nil {
		return nil, errors.New("media: New needs a data directory, a database and a sealer")
	}
	s := &Store{
		root:       filepath.Join(dataDir, "media"),
		db:         db,
		sealer:     sealer,
		retention:  orDefault(o.ImagesRetention, DefaultImagesRetention),
		log:        o.Logger,
		workers:    orDefault(o.Workers, 1),
		sweepGrace: orDefault(o.SweepGrace, 10*time.Minute),
		scanLimit:  orDefault(o.SearchScanLimit, 5000),
		marks:      o.Marks,
		creds:      o.Credentials,
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
	}
	s.jobs = make(chan sqlite.ImageKey, orDefault(o.QueueSize, 256))
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return nil, app.Wrap(err, "Could not create the media folder %s: check that the account running Z Image may write there.", s.root)
	}
	if n, err := s.Sweep(context.Background()); err != nil {
		return nil, app.Wrap(err, "Could not clean up the media folder %s: check its permissions.", s.root)
	} else if n > 0 {
		s.log.Info("media: swept leftovers of an earlier crash", "files", n)
	}
	return s, nil
}

// orDefault returns v, or def when v is zero or negative.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func (s *Store) stripe(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(len(s.locks)))
}

func (s *Store) lock(id string) (unlock func()) {
	m := &s.locks[s.stripe(id)]
	m.Lock()
	return m.Unlock
}

// lockAll takes the stripes of all ids in one order, so two batches can
// never deadlock.
func (s *Store) lockAll(keys []sqlite.ImageKey) (unlock func()) {
	var stripes []int
	for _, k := range keys {
		stripes = append(stripes, s.stripe(k.ID))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.locks[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			s.locks[i].Unlock()
		}
	}
}

func promptAAD(id string) []byte   { return appendPromptAAD(nil, id) }
func negativeAAD(id string) []byte { return appendNegativeAAD(nil, id) }

func appendPromptAAD(dst []byte, id string) []byte {
	return append(append(append(dst, "images/"...), id...), "/prompt"...)
}

func appendNegativeAAD(dst []byte, id string) []byte {
	return append(append(append(dst, "images/"...), id...), "/negative_prompt"...)
}

// Save stores every image of res for g's owner and returns their ids in
// order. Each original is cleaned of the backend's metadata, given the
// person's parameters if they chose so and the AI-generated marks (see
// finishOriginal), then sealed and renamed into place; then all
// rows are inserted in one transaction, with expires_at = now + the images
// retention window; then WebP and thumbnail work is queued. A result the
// store cannot read is refused with EUNAVAILABLE (the model server's
// fault, said in words the person can act on), as is a data folder it
// cannot write; a second Save for the same generation with ECONFLICT.
// Every error is an *app.Error or internal: the queue shows only
// app.ErrorMessage, so another package's error type would reach the person
// as "something went wrong".
func (s *Store) Save(ctx context.Context, g GenerationInfo, res backend.Result, opts SaveOptions) ([]string, error) {
	switch {
	case !validName(g.UserID):
		return nil, app.Errorf(app.EINVALID, "The generation has no valid owner id (got %q), so its images cannot be saved.", g.UserID)
	case g.ID == "":
		return nil, app.Errorf(app.EINVALID, "The generation has no id, so its images cannot be saved.")
	case len(res.Images) == 0:
		return nil, app.Errorf(app.EINVALID, "The model server returned no images for generation %s: try again.", g.ID)
	}
	if g.Count > 0 && g.Count != len(res.Images) {
		s.log.Warn("media: backend returned a different number of images than asked for", "generation_id", g.ID, "asked", g.Count, "got", len(res.Images))
	}
	model := res.Model
	if model == "" {
		model = g.Model
	}
	// What the server did not use, the record must not say it did: no
	// negative prompt, and guidance 0 (no guidance) when it took none.
	if slices.Contains(res.NotApplied, "negative_prompt") {
		g.NegativePrompt = ""
	}
	if slices.Contains(res.NotApplied, "guidance") {
		g.Guidance = 0
	}
	now := s.db.Now()
	rows := make([]sqlite.ImageRow, 0, len(res.Images))
	ids := make([]string, 0, len(res.Images))
	cleanup := func() {
		for _, id := range ids {
			s.removeVariants(g.UserID, id)
		}
	}
	for i, img := range res.Images {
		w, h, ct, err := sniff(img.Data)
		if err != nil {
			cleanup()
			return nil, &app.Error{Code: app.EUNAVAILABLE, Err: err,
				Message: fmt.Sprintf("The model server returned image %d of %d in a form Z Image cannot store: try again, or check the model server's output format (PNG, JPEG or WebP).", i+1, len(res.Images))}
		}
		seed := img.Seed
		if seed == 0 {
			seed = g.Seed + int64(i)
		}
		data, embedded, err := s.finishOriginal(img.Data, ct, model, opts, func() string { return parametersText(g, seed, w, h, model) })
		if err != nil {
			cleanup()
			return nil, &app.Error{Code: app.EUNAVAILABLE, Err: err,
				Message: fmt.Sprintf("The model server returned image %d of %d as a file Z Image cannot store: try again, or check the model server's output format (PNG, JPEG or WebP).", i+1, len(res.Images))}
		}
		id := ulid.Make().String()
		sp, err := s.sealer.Seal(g.UserID, promptAAD(id), []byte(g.Prompt))
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("media: seal prompt: %w", err)
		}
		sn, err := s.sealer.Seal(g.UserID, negativeAAD(id), []byte(g.NegativePrompt))
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("media: seal negative prompt: %w", err)
		}
		ids = append(ids, id)
		if err := s.writeSealed(g.UserID, id, variantOrig, data); err != nil {
			cleanup()
			return nil, storageError(err, "Could not store the new image: check free space and permissions of the data folder.")
		}
		rows = append(rows, sqlite.ImageRow{
			Image: app.Image{
				ID: id, UserID: g.UserID, GenerationID: g.ID, Index: i, Width: w, Height: h, Seed: seed,
				ContentType: ct, Bytes: int64(len(data)), ParametersEmbedded: embedded,
				CreatedAt: now, ExpiresAt: now.Add(s.retention),
				Steps: g.Steps, Guidance: g.Guidance, Backend: g.Backend, Model: model,
				QueuedAt: g.QueuedAt, StartedAt: res.Submitted, FinishedAt: res.Finished, APIKeyID: g.APIKeyID,
			},
			SealedPrompt: sp, SealedNegativePrompt: sn,
		})
	}
	// One sync per folder makes all the renames durable before any row
	// says the files exist.
	synced := map[string]bool{}
	for _, r := range rows {
		dir := s.imageDir(g.UserID, r.ID)
		if synced[dir] {
			continue
		}
		synced[dir] = true
		if err := syncDir(dir); err != nil {
			cleanup()
			return nil, storageError(err, "Could not store the new image: the data folder could not be synced to disk.")
		}
	}
	if err := s.db.InsertImages(ctx, rows); err != nil {
		cleanup()
		return nil, err
	}
	for _, id := range ids {
		s.enqueue(sqlite.ImageKey{ID: id, UserID: g.UserID})
	}
	return ids, nil
}

// storageError keeps the careful message diskError chose (full disk,
// read-only folder); any other failure of the data folder becomes msg with
// EUNAVAILABLE, not EINTERNAL: the disk is a dependency the administrator
// can fix, and an internal code would hide msg from the person.
func storageError(err error, msg string) error {
	var ae *app.Error
	if errors.As(err, &ae) && ae.Code != app.EINTERNAL {
		return err
	}
	return &app.Error{Code: app.EUNAVAILABLE, Message: msg, Err: err}
}

// aadBufs hold the associated data of the prompts a gallery page opens:
// two per image, a hundred per page, none of which outlives the Open.
var aadBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// toImage opens the sealed prompts of r.
func (s *Store) toImage(r *sqlite.ImageRow) (app.Image, error) {
	img := r.Image
	bp := aadBufs.Get().(*[]byte)
	defer aadBufs.Put(bp)
	aad := appendPromptAAD((*bp)[:0], r.ID)
	p, err := s.sealer.Open(r.UserID, aad, r.SealedPrompt)
	if err != nil {
		return img, err
	}
	aad = appendNegativeAAD(aad[:0], r.ID)
	n, err := s.sealer.Open(r.UserID, aad, r.SealedNegativePrompt)
	*bp = aad
	if err != nil {
		return img, err
	}
	img.Prompt, img.NegativePrompt = string(p), string(n)
	return img, nil
}

// sealedError turns a failure to open sealed data into what the caller
// may show: a destroyed key stays "not found"; anything else (damaged,
// altered or missing data) is logged and becomes EINTERNAL.
func (s *Store) sealedError(userID, imageID, what string, err error) error {
	var ae *app.Error
	if errors.As(err, &ae) && ae.Code != app.EINTERNAL {
		return err
	}
	reason := "could not be read"
	if vault.IsTampered(err) {
		reason = "is damaged or was altered"
	} else if errors.Is(err, os.ErrNotExist) {
		reason = "is missing"
	}
	s.log.Error("media: stored data "+reason, "user_id", userID, "image_id", imageID, "what", what, "err", err)
	return &app.Error{Code: app.EINTERNAL, Message: fmt.Sprintf("The stored %s of image %s %s, so it cannot be shown. Restore the media folder from a backup, or delete the image.", what, imageID, reason), Err: err}
}

// Get returns userID's image id with its prompts; another user's image is
// ENOTFOUND.
func (s *Store) Get(ctx context.Context, userID, id string) (app.Image, error) {
	r, err := s.db.Image(ctx, userID, id)
	if err != nil {
		return app.Image{}, err
	}
	img, err := s.toImage(&r)
	if err != nil {
		return app.Image{}, s.sealedError(userID, id, "prompt", err)
	}
	return img, nil
}

// Cursors are opaque to clients: base64 of "<created_at ms>.<id>".
func encodeCursor(c sqlite.ImageCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMilli(), 10) + "." + c.ID))
}

func decodeCursor(c string) (*sqlite.ImageCursor, error) {
	if c == "" {
		return nil, nil
	}
	bad := &app.Error{Code: app.EINVALID, Message: "The cursor is not one Z Image gave out: start again from the first page, without a cursor.", Fields: map[string]string{"cursor": "not a valid cursor"}}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad
	}
	ms, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || !validName(id) {
		return nil, bad
	}
	return &sqlite.ImageCursor{CreatedAt: time.UnixMilli(n), ID: id}, nil
}

// Page sizes of List.
const (
	DefaultListLimit = 50
	MaxListLimit     = 100
	searchBatch      = 200
)

// List returns a page of userID's images, newest first, after cursor ("" for
// the first page), and the cursor of the next page ("" when there is none).
// limit is clamped to 1…MaxListLimit (0 means DefaultListLimit).
//
// query, when not blank, keeps only images whose prompt contains it,
// ignoring case. Prompts are sealed, so SQL cannot search them: rows are
// read newest first in batches and each prompt is opened and compared in
// memory. That costs about a microsecond a row for the opening plus the
// row reads, so one call scans at most SearchScanLimit rows; when it stops
// there short of a full page, it returns what it found and a cursor to
// continue from. A search page may therefore be short, or even empty,
// with a next cursor: clients keep going while next is not "".
func (s *Store) List(ctx context.Context, userID, cursor string, limit int, query string) ([]app.Image, string, error) {
	after, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	query = strings.ToLower(strings.TrimSpace(query))

	if query == "" {
		// One extra row says whether a next page exists, so the last page
		// never comes with a cursor to an empty one.
		out := make([]app.Image, 0, limit)
		next := ""
		err := s.db.ImagesPage(ctx, userID, after, limit+1, func(r *sqlite.ImageRow) error {
			if len(out) == limit {
				last := out[limit-1]
				next = encodeCursor(sqlite.ImageCursor{CreatedAt: last.CreatedAt, ID: last.ID})
				return nil
			}
			out = append(out, s.listImage(r))
			return nil
		})
		if err != nil {
			return nil, "", err
		}
		return out, next, nil
	}

	out := make([]app.Image, 0, limit)
	scanned := 0
	for {
		// stopped: the page is full or the scan limit reached; more: a row
		// followed the one it stopped at.
		n, stopped, more := 0, false, false
		var last sqlite.ImageCursor
		err := s.db.ImagesPage(ctx, userID, after, searchBatch, func(r *sqlite.ImageRow) error {
			if stopped {
				more = true
				return errPageDone
			}
			n++
			scanned++
			last = sqlite.ImageCursor{CreatedAt: r.CreatedAt, ID: r.ID}
			img := s.listImage(r)
			if strings.Contains(strings.ToLower(img.Prompt), query) {
				out = append(out, img)
			}
			stopped = len(out) == limit || scanned >= s.scanLimit
			return nil
		})
		if err != nil && !errors.Is(err, errPageDone) {
			return nil, "", err
		}
		if stopped {
			if !more && n < searchBatch {
				return out, "", nil
			}
			return out, encodeCursor(last), nil
		}
		if n < searchBatch {
			return out, "", nil
		}
		after = &last
	}
}

// errPageDone ends a page read early: what follows is not needed.
var errPageDone = errors.New("media: page done")

// listImage opens r's prompts for a gallery page. One damaged row must
// not take the whole gallery down: it is logged and shown without its
// prompt.
func (s *Store) listImage(r *sqlite.ImageRow) app.Image {
	img, err := s.toImage(r)
	if err != nil {
		s.sealedError(r.UserID, r.ID, "prompt", err)
	}
	return img
}

// File formats and sizes Open serves.
const (
	FormatPNG  = "png"  // the original as the backend returned it (PNG usually; ContentType says)
	FormatWebP = "webp" // the WebP copy
	SizeFull   = "full"
	SizeThumb  = "thumb" // always WebP
)

// Open returns the plaintext of one file of userID's image: format png is
// the original (its content type is returned, as a backend may have sent
// JPEG), webp the WebP copy; size thumb the WebP thumbnail. "" picks png
// for full. The file is read and authenticated whole before Open returns,
// so a damaged file is a clean EINTERNAL error rather than a cut-off
// download.
//
// Thumbnails exist only as WebP, and size=thumb serves that one whatever
// format asks (png or webp): whoever asks for a thumbnail wants a small
// picture to show, and the returned content type says what it is. A
// refusal here once left every live thumbnail of the generate page broken.
//
// A full WebP not made yet is EUNAVAILABLE with RetryAfterSeconds set (it
// is seconds away); a missing thumbnail is made on the spot (a few tens of
// ms) and kept.
func (s *Store) Open(ctx context.Context, userID, imageID, format, size string) (io.ReadCloser, string, int64, error) {
	format, size, err := fileChoice(format, size)
	if err != nil {
		return nil, "", 0, err
	}
	r, err := s.db.Image(ctx, userID, imageID)
	if err != nil {
		return nil, "", 0, err
	}
	variant, ct, hint := variantOrig, r.ContentType, r.Bytes
	switch {
	case size == SizeThumb:
		variant, ct, hint = variantThumb, "image/webp", r.ThumbBytes
		if !r.HasThumb {
			thumb, err := s.makeDerivatives(ctx, userID, imageID, false)
			if err != nil {
				return nil, "", 0, err
			}
			if thumb != nil {
				return io.NopCloser(bytes.NewReader(thumb)), ct, int64(len(thumb)), nil
			}
		}
	case format == FormatWebP:
		if !r.HasWebP {
			return nil, "", 0, &app.Error{Code: app.EUNAVAILABLE, RetryAfterSeconds: 1,
				Message: fmt.Sprintf("The WebP copy of image %s is still being converted: try again in a moment, or ask for format=png.", imageID)}
		}
		variant, ct, hint = variantWebP, "image/webp", r.WebPBytes
	}
	buf := getFileBuf()
	if err := s.readSealedInto(buf, userID, imageID, variant, hint); err != nil {
		putFileBuf(buf)
		if errors.Is(err, os.ErrNotExist) {
			// Deleted between the row read and the file read.
			if _, gerr := s.db.Image(ctx, userID, imageID); app.ErrorCode(gerr) == app.ENOTFOUND {
				return nil, "", 0, gerr
			}
		}
		return nil, "", 0, s.sealedError(userID, imageID, variant+" file", err)
	}
	return newPooledFile(buf), ct, int64(buf.Len()), nil
}

// Delete removes userID's image: its files first, then its row, so a crash
// in between leaves a row that a repeated delete or the retention job
// still finds.
func (s *Store) Delete(ctx context.Context, userID, id string) error {
	defer s.lock(id)()
	if _, err := s.db.Image(ctx, userID, id); err != nil {
		return err
	}
	if err := s.removeVariants(userID, id); err != nil {
		return app.Wrap(err, "Could not delete the files of image %s: check the permissions of the media folder.", id)
	}
	if err := syncDir(s.imageDir(userID, id)); err != nil {
		return app.Wrap(err, "Could not delete image %s completely.", id)
	}
	return s.db.DeleteImage(ctx, userID, id)
}

// SetFavourite marks or unmarks userID's image id as a favourite.
func (s *Store) SetFavourite(ctx context.Context, userID, id string, favourite bool) error {
	return s.db.SetImageFavourite(ctx, userID, id, favourite)
}

// DefaultDeleteBatch is the batch size of DeleteExpired when none is given.
const DefaultDeleteBatch = 100

// CountExpired counts the images DeleteExpired(now, window) would remove
// (for dry runs of the retention job), changing nothing.
func (s *Store) CountExpired(ctx context.Context, now time.Time, window time.Duration) (int, error) {
	return s.db.CountExpiredImages(ctx, now, window)
}

// ShortenExpiries brings the expiry of every stored image within the
// store's images window of its creation (never later), so that a shortened
// retention.images shows at once in the countdown people see. serve calls
// it at start; DeleteExpired does it before each sweep.
func (s *Store) ShortenExpiries(ctx context.Context) (int, error) {
	return s.db.ShortenImageExpiries(ctx, s.retention)
}

// DeleteExpired removes every image due as of now under window: first it
// brings expiries set under a longer window down to created + window, then
// it removes those whose expires_at is at or before now, batch images at a
// time: files first, then the batch's rows in one short transaction, so
// the writer is never held for long. ctx is checked between batches. It
// returns how many images it removed.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, window time.Duration, batch int) (int, error) {
	batch = orDefault(batch, DefaultDeleteBatch)
	if window > 0 {
		if _, err := s.db.ShortenImageExpiries(ctx, window); err != nil {
			return 0, err
		}
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		keys, err := s.db.ExpiredImages(ctx, now, batch)
		if err != nil || len(keys) == 0 {
			return total, err
		}
		n, err := s.deleteBatch(ctx, keys)
		total += n
		if err != nil {
			return total, err
		}
		if len(keys) < batch {
			return total, nil
		}
	}
}

func (s *Store) deleteBatch(ctx context.Context, keys []sqlite.ImageKey) (int, error) {
	defer s.lockAll(keys)()
	dirs := map[string]bool{}
	for _, k := range keys {
		if err := s.removeVariants(k.UserID, k.ID); err != nil {
			return 0, err
		}
		dirs[s.imageDir(k.UserID, k.ID)] = true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	return s.db.DeleteImages(ctx, keys)
}

// DeleteAllForUser removes every image of userID, for the account purge:
// the user's folder first, then the rows in batches. It returns how many
// rows it removed and can be run again after an interruption.
func (s *Store) DeleteAllForUser(ctx context.Context, userID string) (int, error) {
	if !validName(userID) {
		return 0, app.Errorf(app.EINVALID, "%q is not a valid user id, so its images cannot be deleted.", userID)
	}
	if err := os.RemoveAll(s.userDir(userID)); err != nil {
		return 0, app.Wrap(err, "Could not delete the media folder of user %s: check its permissions, then run the purge again.", userID)
	}
	if err := syncDir(s.root); err != nil {
		return 0, err
	}
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := s.db.DeleteImagesForUser(ctx, userID, 500)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}
