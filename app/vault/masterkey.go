package vault

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"zimage/app"
)

// NewMasterKey returns a fresh random master key.
func NewMasterKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, app.Wrap(err, "Could not read random bytes for a new master key.")
	}
	return key, nil
}

// EncodeMasterKey returns key in the form ZIMAGE_MASTER_KEY expects.
func EncodeMasterKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// decodeMasterKey accepts standard or URL-safe base64, padded or not,
// because people paste keys from many tools.
func decodeMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes, want %d", len(key), KeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("not base64")
}

// readMasterKeyFile returns an error wrapping os.ErrNotExist when the file
// is missing, and an *app.Error for every other refusal. The file holds 32
// raw bytes; base64 text of 32 bytes is accepted too, so a key restored by
// pasting the ZIMAGE_MASTER_KEY form works.
func readMasterKeyFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, app.Wrap(err, "Could not read the master key file %s: check its owner and permissions.", path)
	}
	// Anyone who can read the key can read everything; anyone who can
	// write it can lock everyone out. Windows has no such mode bits.
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("The master key file %s can be read or written by other accounts (mode %#o). Run `chmod 600 %s`, check it was not copied, then start again.", path, perm, path)}
	}
	if !info.Mode().IsRegular() {
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("The master key path %s is not a regular file: restore master.key from your key backup.", path)}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, app.Wrap(err, "Could not read the master key file %s: check its owner and permissions.", path)
	}
	if len(raw) == KeySize {
		return raw, nil
	}
	if key, err := decodeMasterKey(string(bytes.TrimSpace(raw))); err == nil {
		return key, nil
	}
	return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("The master key file %s holds %d bytes; a master key is exactly 32 bytes (or their base64). The file is damaged: restore master.key from your key backup.", path, len(raw))}
}

// writeKeyFileAtomic writes key to path with mode 0600 such that path
// either does not exist or holds the whole key, even across a power cut.
func writeKeyFileAtomic(path string, key []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return app.Wrap(err, "Could not write a master key file in %s: check that the directory is writable.", dir)
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return app.Wrap(err, "Could not write the master key file %s: check free space and permissions.", path)
	}
	// CreateTemp already uses 0600; Chmod makes that independent of it.
	if err := tmp.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(key); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return app.Wrap(err, "Could not write the master key file %s.", path)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return app.Wrap(err, "Could not open %s to make a key file change durable.", dir)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && runtime.GOOS != "windows" {
		return app.Wrap(err, "Could not make a key file change in %s durable.", dir)
	}
	return nil
}
