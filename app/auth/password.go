package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"zimage/app"
)

// MaxPasswordBytes bounds what we hash. Argon2 itself is cheap in password
// length, but the request body, the NFC pass and the strength checks are not,
// and no person types a kilobyte; a limit also keeps the rule stateable.
const MaxPasswordBytes = 1024

// Params are argon2id's cost parameters, stored in every encoded hash so
// they can be raised later without invalidating existing passwords.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // lanes; also the number of cores one hash keeps busy
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams follow RFC 9106's second recommended option (64 MiB) rather
// than its first (2 GiB), because a small team's VM or a home GPU box must
// keep memory for the model server. Time and Threads were picked by
// measurement on a 2-core machine (BenchmarkArgon2Cost, idle): t=1,p=2 took
// ~35 ms, t=2,p=2 ~50 ms, t=3,p=2 over 100 ms. t=2 sits inside the 30–60 ms a
// login can spend unnoticed while an attacker pays 64 MiB and twice the
// passes per guess; with the cores busy (load 3) it rose to ~90 ms, still
// fine for a login. p=2 matches the cores we expect; more lanes than cores
// only add scheduling. Raise Time first if hardware gets faster: stored
// hashes report needsRehash and are upgraded at the next login.
var DefaultParams = Params{Memory: 64 * 1024, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read back from a stored hash. The stored string is
// data, and a corrupted or hostile one must give an error, not a 4 GiB
// allocation or a panic inside argon2.
const (
	maxParseMemory  = 1 << 20 // KiB, 1 GiB
	maxParseTime    = 64
	minParseSaltLen = 8
	maxParseSaltLen = 64
	minParseKeyLen  = 16
	maxParseKeyLen  = 64
)

// DefaultMaxConcurrentHashes is how many argon2 computations the default
// Hasher runs at once. Each holds Params.Memory (64 MiB), so a flood of
// logins costs at most 128 MiB of hashing memory; further logins wait their
// turn instead of taking the process down. Two matches the cores: with p=2,
// more in parallel would only make every login slower.
const DefaultMaxConcurrentHashes = 2

// Hasher hashes and checks passwords with fixed Params and a bound on
// concurrent hashes. Its methods are safe for concurrent use.
type Hasher struct {
	params Params
	sem    chan struct{}
}

// NewHasher returns a Hasher using p and running at most maxConcurrent
// hashes at a time (at least 1).
func NewHasher(p Params, maxConcurrent int) *Hasher {
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	return &Hasher{params: p, sem: make(chan struct{}, maxConcurrent)}
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

var defaultHasher = NewHasher(DefaultParams, DefaultMaxConcurrentHashes)

// HashPassword hashes pw with DefaultParams; see Hasher.Hash.
func HashPassword(pw string) (string, error) { return defaultHasher.Hash(pw) }

// CheckPassword checks pw against an encoded hash, reporting needsRehash
// against DefaultParams; see Hasher.Check.
func CheckPassword(encoded, pw string) (ok, needsRehash bool, err error) {
	return defaultHasher.Check(encoded, pw)
}

// ErrMalformedHash is wrapped by Check when the stored string cannot be a
// hash we wrote: the store is corrupt, so it is our fault, not the person's.
var ErrMalformedHash = errors.New("malformed password hash")

// Hash returns pw's argon2id hash in the PHC string format
// $argon2id$v=19$m=65536,t=2,p=2$<salt>$<hash> (unpadded standard base64),
// the format libsodium, passlib and the reference implementation share.
// The password is NFC-normalized first, so the same password typed on
// systems that compose accents differently still matches.
func (h *Hasher) Hash(pw string) (string, error) {
	if err := checkPasswordLength(pw); err != nil {
		return "", err
	}
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt) // never returns an error since Go 1.24; it crashes instead
	key := h.derive(norm.NFC.String(pw), salt, h.params)
	return encodeHash(h.params, salt, key), nil
}

// Check reports whether pw matches encoded, comparing in constant time.
// Parameters are read from encoded, so hashes made with older parameters keep
// working; needsRehash is true when they differ from the Hasher's, and the
// caller should then store Hash(pw) once ok is true. A malformed encoded
// string gives an error wrapping ErrMalformedHash. A password over
// MaxPasswordBytes is simply wrong: it can never have been set.
func (h *Hasher) Check(encoded, pw string) (ok, needsRehash bool, err error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxPasswordBytes {
		return false, false, nil
	}
	got := h.derive(norm.NFC.String(pw), salt, p)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params, nil
}

func (h *Hasher) derive(pw string, salt []byte, p Params) []byte {
	h.sem <- struct{}{}
	defer func() { <-h.sem }()
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

func checkPasswordLength(pw string) error {
	if len(pw) > MaxPasswordBytes {
		return app.FieldErrors{"password": fmt.Sprintf("Your password is longer than %d bytes. Please choose a shorter one; a few unrelated words are plenty.", MaxPasswordBytes)}.Err()
	}
	if pw == "" {
		return app.FieldErrors{"password": "Please enter a password."}.Err()
	}
	return nil
}

var b64 = base64.RawStdEncoding

func encodeHash(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decodeHash(encoded string) (p Params, salt, key []byte, err error) {
	fail := func(format string, args ...any) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("auth: %w: "+format, append([]any{ErrMalformedHash}, args...)...)
	}
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("want 5 $-separated fields")
	}
	if parts[1] != "argon2id" {
		return fail("algorithm %q is not argon2id", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return fail("version %q is not v=%d", parts[2], argon2.Version)
	}
	var m, t, threads uint64
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return fail("want m, t and p parameters")
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return fail("parameter %d is not %s=", i+1, name)
		}
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil {
			return fail("parameter %s: %v", name, perr)
		}
		switch name {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			threads = n
		}
	}
	switch {
	case threads < 1 || threads > 255:
		return fail("p=%d is outside 1–255", threads)
	case t < 1 || t > maxParseTime:
		return fail("t=%d is outside 1–%d", t, maxParseTime)
	case m < 8*threads || m > maxParseMemory: // argon2 needs 8 KiB per lane
		return fail("m=%d is outside %d–%d", m, 8*threads, maxParseMemory)
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return fail("salt: %v", err)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return fail("hash: %v", err)
	}
	if len(salt) < minParseSaltLen || len(salt) > maxParseSaltLen {
		return fail("salt is %d bytes, want %d–%d", len(salt), minParseSaltLen, maxParseSaltLen)
	}
	if len(key) < minParseKeyLen || len(key) > maxParseKeyLen {
		return fail("hash is %d bytes, want %d–%d", len(key), minParseKeyLen, maxParseKeyLen)
	}
	p = Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(threads), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}
