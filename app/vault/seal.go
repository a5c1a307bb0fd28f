package vault

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Sealed value layout:
//
//	format (1 byte) | key version (4, big-endian) | nonce (12) | AES-256-GCM ciphertext and tag
//
// The associated data covers the user id, the caller's aad (the record's
// place, e.g. "images/<id>/prompt") and the header, so a value moved to
// another row or user, or given another key version, fails to open.
const (
	formatSealed   byte = 1
	formatStream   byte = 2
	nonceSize           = 12
	tagSize             = 16
	sealHeaderSize      = 1 + 4 + nonceSize
	// SealOverhead is how many bytes Seal adds to a plaintext.
	SealOverhead = sealHeaderSize + tagSize
)

// Seal encrypts plaintext for userID. aad names where the value will be
// stored; Open must be given the same aad. The user must have a key
// (EnsureUserKey).
func (v *Vault) Seal(userID string, aad, plaintext []byte) ([]byte, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	keys, err := v.keysFor(userID)
	if err != nil {
		return nil, fmt.Errorf("vault: seal %q: %w", aad, err)
	}
	out := make([]byte, sealHeaderSize, SealOverhead+len(plaintext))
	out[0] = formatSealed
	binary.BigEndian.PutUint32(out[1:5], keys.current)
	rand.Read(out[5:sealHeaderSize])
	k := keys.versions[keys.current]
	ad := getAD(userID, aad, out[:sealHeaderSize])
	defer putAD(ad)
	return k.aead.Seal(out, out[5:sealHeaderSize], plaintext, *ad), nil
}

// Open decrypts a value sealed by Seal for the same userID and aad. Damaged,
// moved or foreign values give an error wrapping ErrTampered; values of a
// shredded user give ErrKeyDestroyed.
func (v *Vault) Open(userID string, aad, sealed []byte) ([]byte, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if len(sealed) < SealOverhead {
		return nil, fmt.Errorf("vault: open %q: %d bytes is shorter than any sealed value: %w", aad, len(sealed), ErrTampered)
	}
	k, err := v.keyForHeader(userID, sealed, formatSealed)
	if err != nil {
		return nil, fmt.Errorf("vault: open %q: %w", aad, err)
	}
	ad := getAD(userID, aad, sealed[:sealHeaderSize])
	defer putAD(ad)
	plaintext, err := k.aead.Open(nil, sealed[5:sealHeaderSize], sealed[sealHeaderSize:], *ad)
	if err != nil {
		return nil, fmt.Errorf("vault: open %q: %w", aad, ErrTampered)
	}
	return plaintext, nil
}

// keyForHeader checks a sealed value's or stream's header (format byte,
// then key version) and returns the key it names.
func (v *Vault) keyForHeader(userID string, header []byte, format byte) (dataKey, error) {
	if header[0] != format {
		return dataKey{}, fmt.Errorf("unknown format %d: %w", header[0], ErrTampered)
	}
	keys, err := v.keysFor(userID)
	if err != nil {
		return dataKey{}, err
	}
	version := binary.BigEndian.Uint32(header[1:5])
	k, ok := keys.versions[version]
	if !ok {
		return dataKey{}, fmt.Errorf("no key version %d for this user: %w", version, ErrTampered)
	}
	return k, nil
}

// adBufs hold associated data while one Seal or Open runs: a gallery page
// opens a hundred prompts, and AES-GCM keeps none of it.
var adBufs = sync.Pool{New: func() any { b := make([]byte, 0, 160); return &b }}

// getAD returns the associated data of a sealed value in a pooled buffer;
// give it back with putAD once the AEAD call returns.
func getAD(userID string, aad, header []byte) *[]byte {
	bp := adBufs.Get().(*[]byte)
	*bp = appendSealAD((*bp)[:0], userID, aad, header)
	return bp
}

func putAD(bp *[]byte) { adBufs.Put(bp) }

func appendSealAD(dst []byte, userID string, aad, header []byte) []byte {
	dst = append(dst, "zimage/vault/seal/v1"...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(userID)))
	dst = append(dst, userID...)
	dst = appendField(dst, aad)
	return append(dst, header...)
}

// IsTampered reports whether err means sealed bytes did not authenticate.
func IsTampered(err error) bool { return errors.Is(err, ErrTampered) }
