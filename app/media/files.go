package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"zimage/app"
)

// Variants of one image on disk.
const (
	variantOrig  = "orig"  // the bytes the backend returned
	variantWebP  = "webp"  // full-size WebP copy
	variantThumb = "thumb" // WebP, longest side ThumbSide
)

var variants = []string{variantOrig, variantWebP, variantThumb}

const tmpMarker = ".tmp-"

// validName keeps ids usable as path elements: no separators, no dot
// names, nothing a shell or another OS would trip on.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func (s *Store) userDir(userID string) string { return filepath.Join(s.root, userID) }

// Files are kept in <root>/<user>/<shard>/<image>.<variant>. The shard is
// the start of the image's ULID, which encodes its creation time: the first
// five characters change about every nine hours, so even a person who
// makes 100,000 images within the retention window has folders of a few
// thousand files. One flat folder of 300,000 files made every create and
// unlink about ten times slower on ext4 (scripts/bench/retention).
const shardLen = 5

func shard(imageID string) string {
	if len(imageID) < 2*shardLen {
		return "_"
	}
	return imageID[:shardLen]
}

func (s *Store) imageDir(userID, imageID string) string {
	return filepath.Join(s.root, userID, shard(imageID))
}

func (s *Store) path(userID, imageID, variant string) string {
	return FilePath(s.root, userID, imageID, variant)
}

// FilePath is where a variant file of an image lives under mediaRoot
// (<data_dir>/media), for tools that seed or inspect the folder.
func FilePath(mediaRoot, userID, imageID, variant string) string {
	return filepath.Join(mediaRoot, userID, shard(imageID), imageID+"."+variant)
}

func fileAAD(imageID, variant string) []byte { return []byte("media/" + imageID + "/" + variant) }

// ensureDir creates dir (mode 0700) and makes its entry durable in the
// parent, so a file renamed into it survives a power cut with its folder.
func ensureDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// writeSealed seals data for userID into the variant file of imageID. The
// file appears under its final name only complete: it is written to a
// unique temporary name (O_EXCL, so two writers never share one), synced,
// then renamed. The caller syncs the folder once for all files it wrote.
func (s *Store) writeSealed(userID, imageID, variant string, data []byte) error {
	for _, dir := range []string{s.userDir(userID), s.imageDir(userID, imageID)} {
		if err := ensureDir(dir); err != nil {
			return diskError(fmt.Errorf("media: create folder for %s: %w", userID, err))
		}
	}
	final := s.path(userID, imageID, variant)
	var suffix [6]byte
	rand.Read(suffix[:])
	tmp := final + tmpMarker + hex.EncodeToString(suffix[:])
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return diskError(fmt.Errorf("media: write %s: %w", variant, err))
	}
	err = func() error {
		w, err := s.sealer.SealWriter(userID, fileAAD(imageID, variant), f)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return diskError(fmt.Errorf("media: write %s of image %s: %w", variant, imageID, err))
	}
	return nil
}

// diskError turns a full disk or a read-only data folder into a message a
// person and an administrator can act on; other errors stay internal.
func diskError(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return &app.Error{Code: app.EUNAVAILABLE, Err: err,
			Message: "The server's disk is full, so the image could not be saved. Nothing else was lost; tell the administrator to free space in the data folder, then try again."}
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES):
		return &app.Error{Code: app.EUNAVAILABLE, Err: err,
			Message: "The server cannot write to its data folder, so the image could not be saved. Tell the administrator (zimage doctor shows what is wrong)."}
	}
	return err
}

// readSealed returns the plaintext of a variant file, authenticated to the
// end before any of it is used: a damaged file must give a clean error,
// not half a picture after the HTTP headers went out.
func (s *Store) readSealed(userID, imageID, variant string, sizeHint int64) ([]byte, error) {
	var buf bytes.Buffer
	err := s.readSealedInto(&buf, userID, imageID, variant, sizeHint)
	return buf.Bytes(), err
}

// readSealedInto reads and authenticates a whole sealed file into buf.
func (s *Store) readSealedInto(buf *bytes.Buffer, userID, imageID, variant string, sizeHint int64) error {
	f, err := os.Open(s.path(userID, imageID, variant))
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := s.sealer.OpenReader(userID, fileAAD(imageID, variant), f)
	if err != nil {
		return err
	}
	if sizeHint > 0 && sizeHint < 1<<30 {
		buf.Grow(int(sizeHint) + 1)
	}
	_, err = io.Copy(buf, r)
	return err
}

// fileBufs hold opened files while they are served: a download is
// authenticated whole before its first byte goes out, and a fresh buffer
// of a megabyte or more for every one would keep the collector busy.
var fileBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledFile is the largest buffer kept for the next download; rarer,
// larger ones go back to the collector.
const maxPooledFile = 16 << 20

// pooledFile is an opened file whose buffer goes back to fileBufs on
// Close; it must not be read after that.
type pooledFile struct {
	bytes.Reader
	buf *bytes.Buffer
}

func newPooledFile(buf *bytes.Buffer) *pooledFile {
	f := &pooledFile{buf: buf}
	f.Reset(buf.Bytes())
	return f
}

func (f *pooledFile) Close() error {
	if f.buf != nil {
		f.Reset(nil)
		putFileBuf(f.buf)
		f.buf = nil
	}
	return nil
}

func getFileBuf() *bytes.Buffer {
	b := fileBufs.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putFileBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledFile {
		fileBufs.Put(b)
	}
}

// removeVariants deletes every file of imageID; missing ones are fine, so
// a delete interrupted by a crash can simply run again.
func (s *Store) removeVariants(userID, imageID string) error {
	var errs []error
	for _, v := range variants {
		if err := os.Remove(s.path(userID, imageID, v)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("media: delete files of image %s: %w", imageID, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("media: sync folder: %w", err)
	}
	return nil
}

// Sweep removes what a crash can leave behind in the media folder:
// temporary files of interrupted writes, and files whose image row was
// never inserted (a crash between rename and insert) or whose row is gone
// (a crash in the middle of a delete of a whole account). Only files older
// than the sweep grace are touched, so writes in flight in this or another
// process (e.g. `zimage retention run` beside the server) are left alone.
// It reads every user folder and every user's image ids: New runs it once,
// and the images retention job may call it on its schedule.
func (s *Store) Sweep(ctx context.Context) (removed int, err error) {
	cutoff := time.Now().Add(-s.sweepGrace)
	users, err := os.ReadDir(s.root)
	if err != nil {
		return 0, fmt.Errorf("media: sweep: %w", err)
	}
	for _, u := range users {
		if ctx.Err() != nil {
			return removed, ctx.Err()
		}
		if !u.IsDir() || !validName(u.Name()) {
			continue
		}
		n, err := s.sweepUser(ctx, u.Name(), cutoff)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func (s *Store) sweepUser(ctx context.Context, userID string, cutoff time.Time) (int, error) {
	var known map[string]bool // loaded only when a final file needs checking
	return s.sweepDir(ctx, userID, s.userDir(userID), cutoff, &known, true)
}

// sweepDir sweeps one folder of userID's: the user folder (descending into
// its shard folders, and removing those left empty) or one shard folder.
func (s *Store) sweepDir(ctx context.Context, userID, dir string, cutoff time.Time, known *map[string]bool, top bool) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("media: sweep %s: %w", userID, err)
	}
	removed := 0
	for _, e := range entries {
		name := e.Name()
		info, err := e.Info()
		if err != nil {
			continue
		}
		if top && info.IsDir() && validName(name) {
			n, err := s.sweepDir(ctx, userID, filepath.Join(dir, name), cutoff, known, false)
			removed += n
			if err != nil {
				return removed, err
			}
			if info.ModTime().Before(cutoff) {
				os.Remove(filepath.Join(dir, name)) // only succeeds when empty
			}
			continue
		}
		if !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) {
			continue
		}
		if !strings.Contains(name, tmpMarker) {
			id, variant, ok := strings.Cut(name, ".")
			if !ok || !isVariant(variant) {
				continue
			}
			if *known == nil {
				ids, err := s.db.ImageIDsForUser(ctx, userID)
				if err != nil {
					return removed, err
				}
				*known = make(map[string]bool, len(ids))
				for _, id := range ids {
					(*known)[id] = true
				}
			}
			if (*known)[id] {
				continue
			}
			// Taken under the image's lock and checked again: the row may
			// have been inserted since the ids were read.
			unlock := s.lock(id)
			_, err := s.db.Image(ctx, userID, id)
			if app.ErrorCode(err) != app.ENOTFOUND {
				unlock()
				if err != nil {
					return removed, err
				}
				continue
			}
			err = os.Remove(filepath.Join(dir, name))
			unlock()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("media: sweep: %w", err)
			}
			s.log.Warn("media: removed a file with no image row (left by a crash or an interrupted delete)", "user_id", userID, "file", name)
			removed++
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("media: sweep: %w", err)
		}
		s.log.Info("media: removed an unfinished temporary file (left by a crash)", "user_id", userID, "file", name)
		removed++
	}
	return removed, nil
}

func isVariant(v string) bool {
	for _, x := range variants {
		if v == x {
			return true
		}
	}
	return false
}
