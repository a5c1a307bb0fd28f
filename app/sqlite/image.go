package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"zimage/app"
)

// migrateImages creates the images table. generation_id is a plain indexed
// column, not a foreign key: images outlive their generation rows, and the
// two tables are created by migrations that may land in either order.
// Prompts are sealed by the caller (aad images/<id>/prompt and
// images/<id>/negative_prompt), so images can be searched and shown without
// the generations table.
func migrateImages(tx *sql.Tx) error {
	return execAll(tx, `CREATE TABLE images (
		id                  TEXT PRIMARY KEY,
		user_id             TEXT NOT NULL,
		generation_id       TEXT NOT NULL,
		idx                 INTEGER NOT NULL,
		width               INTEGER NOT NULL,
		height              INTEGER NOT NULL,
		seed                INTEGER NOT NULL,
		content_type        TEXT NOT NULL,
		bytes               INTEGER NOT NULL,
		webp_bytes          INTEGER NOT NULL DEFAULT 0,
		thumb_bytes         INTEGER NOT NULL DEFAULT 0,
		has_webp            INTEGER NOT NULL DEFAULT 0 CHECK (has_webp IN (0, 1)),
		has_thumb           INTEGER NOT NULL DEFAULT 0 CHECK (has_thumb IN (0, 1)),
		parameters_embedded INTEGER NOT NULL DEFAULT 0 CHECK (parameters_embedded IN (0, 1)),
		favourite           INTEGER NOT NULL DEFAULT 0 CHECK (favourite IN (0, 1)),
		prompt              BLOB NOT NULL, -- sealed
		negative_prompt     BLOB NOT NULL, -- sealed
		steps               INTEGER NOT NULL,
		guidance            REAL NOT NULL,
		backend             TEXT NOT NULL,
		model               TEXT NOT NULL,
		queued_at           INTEGER, -- NULL when unknown
		started_at          INTEGER,
		finished_at         INTEGER,
		created_at          INTEGER NOT NULL,
		expires_at          INTEGER NOT NULL
	) STRICT`,
		// Gallery pages, newest first; the id column spares SQLite a
		// temp B-tree sort for the tie-break.
		`CREATE INDEX images_user_created ON images (user_id, created_at DESC, id DESC)`,
		`CREATE INDEX images_expires ON images (expires_at, id)`,
		// One set of images per generation: a job re-run after a crash
		// must not add a second copy of its pictures.
		`CREATE UNIQUE INDEX images_generation ON images (generation_id, idx)`,
		// Crash recovery looks for images still waiting for derivatives;
		// the partial index stays as small as that backlog.
		`CREATE INDEX images_pending ON images (id) WHERE has_webp = 0 OR has_thumb = 0`)
}

// migrateImagesLifetimeIndex indexes how long each image was promised to
// be kept (expires_at - created_at), so that when an admin shortens
// retention.images the images kept longer than the new window are found
// without reading the whole table (ShortenImageExpiries, CountExpiredImages).
func migrateImagesLifetimeIndex(tx *sql.Tx) error {
	return execAll(tx, `CREATE INDEX images_lifetime ON images (expires_at - created_at, created_at)`)
}

// ImageRow is an images row as stored: the domain image (whose plaintext
// prompts the store ignores) and the prompts sealed by the caller.
type ImageRow struct {
	app.Image
	SealedPrompt         []byte
	SealedNegativePrompt []byte
}

// ImageKey names one image and its owner, for work that visits many
// images (derivatives, retention, purge).
type ImageKey struct {
	ID     string
	UserID string
}

// ImageCursor is a position in a gallery, newest first.
type ImageCursor struct {
	CreatedAt time.Time
	ID        string
}

const imageColumns = `id, user_id, generation_id, idx, width, height, seed, content_type,
	bytes, webp_bytes, thumb_bytes, has_webp, has_thumb, parameters_embedded, favourite,
	prompt, negative_prompt, steps, guidance, backend, model,
	queued_at, started_at, finished_at, created_at, expires_at, api_key_id`

func imageMillisOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func imageTimeOrZero(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return time.UnixMilli(ms.Int64).UTC()
}

type imageRowScanner interface{ Scan(...any) error }

func scanImage(s imageRowScanner) (ImageRow, error) {
	var r ImageRow
	var queued, started, finished sql.NullInt64
	var created, expires int64
	err := s.Scan(&r.ID, &r.UserID, &r.GenerationID, &r.Index, &r.Width, &r.Height, &r.Seed, &r.ContentType,
		&r.Bytes, &r.WebPBytes, &r.ThumbBytes, &r.HasWebP, &r.HasThumb, &r.ParametersEmbedded, &r.Favourite,
		&r.SealedPrompt, &r.SealedNegativePrompt, &r.Steps, &r.Guidance, &r.Backend, &r.Model,
		&queued, &started, &finished, &created, &expires, &r.APIKeyID)
	if err != nil {
		return r, err
	}
	r.QueuedAt, r.StartedAt, r.FinishedAt = imageTimeOrZero(queued), imageTimeOrZero(started), imageTimeOrZero(finished)
	r.CreatedAt = time.UnixMilli(created).UTC()
	r.ExpiresAt = time.UnixMilli(expires).UTC()
	return r, nil
}

// InsertImages stores rows in one transaction. A second set of images for
// the same generation and index is refused with ECONFLICT.
func (db *DB) InsertImages(ctx context.Context, rows []ImageRow) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO images (`+imageColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range rows {
			_, err := stmt.ExecContext(ctx, r.ID, r.UserID, r.GenerationID, r.Index, r.Width, r.Height, r.Seed, r.ContentType,
				r.Bytes, r.WebPBytes, r.ThumbBytes, r.HasWebP, r.HasThumb, r.ParametersEmbedded, r.Favourite,
				r.SealedPrompt, r.SealedNegativePrompt, r.Steps, r.Guidance, r.Backend, r.Model,
				imageMillisOrNull(r.QueuedAt), imageMillisOrNull(r.StartedAt), imageMillisOrNull(r.FinishedAt), r.CreatedAt.UnixMilli(), r.ExpiresAt.UnixMilli(), r.APIKeyID)
			if err != nil {
				if strings.Contains(err.Error(), "UNIQUE constraint failed: images.generation_id") {
					return &app.Error{Code: app.ECONFLICT, Message: fmt.Sprintf("The images of generation %s were already saved.", r.GenerationID), Err: err}
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: insert images: %w", err)
	}
	return nil
}

func errImageNotFound(id string) error {
	return app.Errorf(app.ENOTFOUND, "There is no image %s in your gallery: it may have been deleted or have expired.", id)
}

// Image returns userID's image id; another user's image is ENOTFOUND.
func (db *DB) Image(ctx context.Context, userID, id string) (ImageRow, error) {
	r, err := scanImage(db.readRow(ctx, `SELECT `+imageColumns+` FROM images WHERE id = ? AND user_id = ?`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errImageNotFound(id)
	} else if err != nil {
		return r, fmt.Errorf("sqlite: find image: %w", err)
	}
	return r, nil
}

// imagePageColumns are what a gallery page shows: not the owner (the
// caller knows it) nor the derivatives' sizes, which only serving a file
// needs.
const imagePageColumns = `id, generation_id, idx, width, height, seed, content_type,
	bytes, has_webp, parameters_embedded, favourite,
	prompt, negative_prompt, steps, guidance, backend, model,
	queued_at, started_at, finished_at, created_at, expires_at, api_key_id`

// Both page queries stay single range scans of images_user_created; the
// row-value comparison is what keeps the cursor page one.
const (
	imagesFirstPageQuery = `SELECT ` + imagePageColumns + ` FROM images WHERE user_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`
	imagesAfterQuery = `SELECT ` + imagePageColumns + ` FROM images WHERE user_id = ?
		AND (created_at, id) < (?, ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`
)

// ImagesPage calls fn with up to limit of userID's images, newest first,
// after the cursor (nil: from the newest). The row fn gets, and its sealed
// prompts, are valid only until fn returns: the prompts are SQLite's own
// buffer, not copies, since a page only opens them. WebPBytes, ThumbBytes
// and HasThumb are not loaded. An error from fn ends the page and is
// returned as is.
func (db *DB) ImagesPage(ctx context.Context, userID string, after *ImageCursor, limit int, fn func(*ImageRow) error) error {
	var rows *sql.Rows
	var err error
	if after == nil {
		rows, err = db.read(ctx, imagesFirstPageQuery, userID, limit)
	} else {
		rows, err = db.read(ctx, imagesAfterQuery, userID, after.CreatedAt.UnixMilli(), after.ID, limit)
	}
	if err != nil {
		return fmt.Errorf("sqlite: list images: %w", err)
	}
	defer rows.Close()
	// One row and one destination list serve every row of the page.
	var r ImageRow
	var prompt, negative sql.RawBytes
	var queued, started, finished sql.NullInt64
	var created, expires int64
	dest := []any{&r.ID, &r.GenerationID, &r.Index, &r.Width, &r.Height, &r.Seed, &r.ContentType,
		&r.Bytes, &r.HasWebP, &r.ParametersEmbedded, &r.Favourite,
		&prompt, &negative, &r.Steps, &r.Guidance, &r.Backend, &r.Model,
		&queued, &started, &finished, &created, &expires, &r.APIKeyID}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("sqlite: list images: %w", err)
		}
		r.UserID = userID
		r.SealedPrompt, r.SealedNegativePrompt = prompt, negative
		r.QueuedAt, r.StartedAt, r.FinishedAt = imageTimeOrZero(queued), imageTimeOrZero(started), imageTimeOrZero(finished)
		r.CreatedAt = time.UnixMilli(created).UTC()
		r.ExpiresAt = time.UnixMilli(expires).UTC()
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: list images: %w", err)
	}
	return nil
}

// SetImageWebP records that the WebP copy of image id exists. It reports
// whether the image still exists, so a worker that raced a delete can
// remove the file it just wrote.
func (db *DB) SetImageWebP(ctx context.Context, id string, size int64) (bool, error) {
	return db.setDerivative(ctx, `UPDATE images SET has_webp = 1, webp_bytes = ? WHERE id = ?`, id, size)
}

// SetImageThumb records that the thumbnail of image id exists; see
// SetImageWebP.
func (db *DB) SetImageThumb(ctx context.Context, id string, size int64) (bool, error) {
	return db.setDerivative(ctx, `UPDATE images SET has_thumb = 1, thumb_bytes = ? WHERE id = ?`, id, size)
}

func (db *DB) setDerivative(ctx context.Context, query, id string, size int64) (bool, error) {
	res, err := db.w.ExecContext(ctx, query, size, id)
	if err != nil {
		return false, fmt.Errorf("sqlite: update image %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: update image %s: %w", id, err)
	}
	return n > 0, nil
}

// ImagesMissingDerivatives returns up to limit images, in id order after
// afterID, that lack their WebP copy or thumbnail.
func (db *DB) ImagesMissingDerivatives(ctx context.Context, afterID string, limit int) ([]ImageKey, error) {
	return db.imageKeys(ctx, "images missing derivatives", `SELECT id, user_id FROM images
		WHERE (has_webp = 0 OR has_thumb = 0) AND id > ? ORDER BY id LIMIT ?`, afterID, limit)
}

// ExpiredImages returns up to limit images whose expires_at is at or
// before now, oldest expiry first. Run ShortenImageExpiries first when the
// window may have shrunk.
func (db *DB) ExpiredImages(ctx context.Context, now time.Time, limit int) ([]ImageKey, error) {
	return db.imageKeys(ctx, "expired images", `SELECT id, user_id FROM images
		WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?`, now.UnixMilli(), limit)
}

// ShortenImageExpiries brings every image's expiry within window of its
// creation: expires_at = min(expires_at, created_at + window). A shortened
// retention.images thus applies to images already stored, and the
// countdown people see is the real one; a longer window never moves an
// expiry later than people were told. It changes shortenBatch rows a
// transaction, so the writer is never held for long, checks ctx between
// batches, and returns how many it changed.
func (db *DB) ShortenImageExpiries(ctx context.Context, window time.Duration) (int, error) {
	w := window.Milliseconds()
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		// Changed rows leave the lifetime range, so each batch finds the next.
		res, err := db.w.ExecContext(ctx, `UPDATE images SET expires_at = created_at + ?
			WHERE rowid IN (SELECT rowid FROM images WHERE expires_at - created_at > ? LIMIT ?)`, w, w, shortenBatch)
		if err != nil {
			return total, fmt.Errorf("sqlite: shorten image expiries: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sqlite: shorten image expiries: %w", err)
		}
		total += int(n)
		if n < shortenBatch {
			return total, nil
		}
	}
}

const shortenBatch = 1000

// CountExpiredImages counts the images due as of now under window: those
// whose expiry has passed, and those whose expiry ShortenImageExpiries
// would bring to now or before. It changes nothing (dry runs).
func (db *DB) CountExpiredImages(ctx context.Context, now time.Time, window time.Duration) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM images WHERE expires_at <= ?
		OR (expires_at - created_at > ? AND created_at <= ?)`,
		now.UnixMilli(), window.Milliseconds(), now.Add(-window).UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count expired images: %w", err)
	}
	return n, nil
}

// ImageIDsForUser returns the ids of all of userID's images.
func (db *DB) ImageIDsForUser(ctx context.Context, userID string) ([]string, error) {
	keys, err := db.imageKeys(ctx, "image ids of user", `SELECT id, user_id FROM images WHERE user_id = ?`, userID)
	return keyIDs(keys), err
}

// ImageIDsForGeneration returns the ids of the images of userID's
// generation, in their order within it.
func (db *DB) ImageIDsForGeneration(ctx context.Context, userID, generationID string) ([]string, error) {
	keys, err := db.imageKeys(ctx, "image ids of generation", `SELECT id, user_id FROM images
		WHERE user_id = ? AND generation_id = ? ORDER BY idx`, userID, generationID)
	return keyIDs(keys), err
}

// ImageIDsForGenerations returns the image ids of each of userID's
// generations named in generationIDs, keyed by generation id and in their
// order within it, in one query: a page of generations costs one read
// however long it is. Generations without images have no key.
func (db *DB) ImageIDsForGenerations(ctx context.Context, userID string, generationIDs []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(generationIDs) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(generationIDs)+1)
	args = append(args, userID)
	for _, id := range generationIDs {
		args = append(args, id)
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(generationIDs)), ",")
	rows, err := db.r.QueryContext(ctx, `SELECT generation_id, id FROM images
		WHERE user_id = ? AND generation_id IN (`+in+`) ORDER BY generation_id, idx`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: image ids of generations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var gen, id string
		if err := rows.Scan(&gen, &id); err != nil {
			return nil, fmt.Errorf("sqlite: image ids of generations: %w", err)
		}
		out[gen] = append(out[gen], id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: image ids of generations: %w", err)
	}
	return out, nil
}

func keyIDs(keys []ImageKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func (db *DB) imageKeys(ctx context.Context, what, query string, args ...any) ([]ImageKey, error) {
	rows, err := db.read(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []ImageKey
	for rows.Next() {
		var k ImageKey
		if err := rows.Scan(&k.ID, &k.UserID); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// SetImageFavourite marks or unmarks userID's image id.
func (db *DB) SetImageFavourite(ctx context.Context, userID, id string, favourite bool) error {
	res, err := db.w.ExecContext(ctx, `UPDATE images SET favourite = ? WHERE id = ? AND user_id = ?`, favourite, id, userID)
	if err != nil {
		return fmt.Errorf("sqlite: set image favourite: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: set image favourite: %w", err)
	} else if n == 0 {
		return errImageNotFound(id)
	}
	return nil
}

// DeleteImage removes userID's image row id.
func (db *DB) DeleteImage(ctx context.Context, userID, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM images WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return fmt.Errorf("sqlite: delete image: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: delete image: %w", err)
	} else if n == 0 {
		return errImageNotFound(id)
	}
	return nil
}

// DeleteImages removes the rows of keys in one short transaction and
// returns how many existed. Each row is matched on id and owner.
func (db *DB) DeleteImages(ctx context.Context, keys []ImageKey) (int, error) {
	var n int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `DELETE FROM images WHERE id = ? AND user_id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, k := range keys {
			res, err := stmt.ExecContext(ctx, k.ID, k.UserID)
			if err != nil {
				return err
			}
			c, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(c)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete images: %w", err)
	}
	return n, nil
}

// DeleteImagesForUser removes up to limit of userID's image rows and
// returns how many it removed; callers repeat until 0 so that a large
// account never holds the writer for long.
func (db *DB) DeleteImagesForUser(ctx context.Context, userID string, limit int) (int, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM images WHERE id IN
		(SELECT id FROM images WHERE user_id = ? LIMIT ?)`, userID, limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete images of user: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete images of user: %w", err)
	}
	return int(n), nil
}
