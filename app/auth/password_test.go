package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// cheapParams keep tests fast; the format and logic are the same.
var cheapParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashPasswordFormat(t *testing.T) {
	encoded, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=65536,t=2,p=2$"; !strings.HasPrefix(encoded, want) {
		t.Errorf("encoded = %q, want prefix %q", encoded, want)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || len(parts[4]) != 22 || len(parts[5]) != 43 {
		t.Errorf("encoded = %q, want 16-byte salt and 32-byte hash in unpadded base64", encoded)
	}
	ok, rehash, err := CheckPassword(encoded, "correct horse battery staple")
	if err != nil || !ok || rehash {
		t.Errorf("CheckPassword = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestHasherRoundTrip(t *testing.T) {
	h := NewHasher(cheapParams, 2)
	const pw = "Tr0ub4dor&3 is not great"
	encoded, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := h.Hash(pw)
	if again == encoded {
		t.Error("two hashes of one password are equal; the salt is not random")
	}
	tests := []struct {
		name   string
		pw     string
		wantOK bool
	}{
		{"same password", pw, true},
		{"wrong password", "Tr0ub4dor&3 is not grea", false},
		{"different case", strings.ToUpper(pw), false},
		{"empty", "", false},
		{"too long", strings.Repeat("a", MaxPasswordBytes+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Check(encoded, tt.pw)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK || rehash {
				t.Errorf("Check = %v, %v; want %v, false", ok, rehash, tt.wantOK)
			}
		})
	}
}

func TestHashPasswordNFC(t *testing.T) {
	h := NewHasher(cheapParams, 1)
	composed := "caf\u00e9 au lait, s'il vous plaît"
	decomposed := "cafe\u0301 au lait, s'il vous plaît"
	encoded, err := h.Hash(composed)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := h.Check(encoded, decomposed); err != nil || !ok {
		t.Errorf("decomposed form of the same password: ok=%v err=%v, want true", ok, err)
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	h := NewHasher(cheapParams, 1)
	tests := []struct {
		name, pw, want string
	}{
		{"too long", strings.Repeat("x", MaxPasswordBytes+1), "longer than 1024 bytes"},
		{"empty", "", "enter a password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Hash(tt.pw)
			if reason := fieldReason(t, err, "password"); !strings.Contains(reason, tt.want) {
				t.Errorf("reason = %q, want it to mention %q", reason, tt.want)
			}
		})
	}
	if _, err := h.Hash(strings.Repeat("x", MaxPasswordBytes)); err != nil {
		t.Errorf("exactly %d bytes: %v, want accepted", MaxPasswordBytes, err)
	}
}

func TestCheckPasswordNeedsRehash(t *testing.T) {
	old := NewHasher(cheapParams, 1)
	encoded, err := old.Hash("a fine long password")
	if err != nil {
		t.Fatal(err)
	}
	stronger := cheapParams
	stronger.Time = 2
	longer := cheapParams
	longer.KeyLen = 48
	tests := []struct {
		name       string
		current    Params
		wantRehash bool
	}{
		{"same params", cheapParams, false},
		{"more passes", stronger, true},
		{"longer key", longer, true},
		{"more memory", Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"more lanes", Params{Memory: 64, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := NewHasher(tt.current, 1).Check(encoded, "a fine long password")
			if err != nil || !ok || rehash != tt.wantRehash {
				t.Errorf("Check = %v, %v, %v; want true, %v, nil", ok, rehash, err, tt.wantRehash)
			}
			// A wrong password never asks for a rehash: there is nothing to rehash.
			if ok, rehash, _ := NewHasher(tt.current, 1).Check(encoded, "wrong"); ok || rehash {
				t.Errorf("wrong password: Check = %v, %v; want false, false", ok, rehash)
			}
		})
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	h := NewHasher(cheapParams, 1)
	good, err := h.Hash("a fine long password")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	with := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"garbage", "not a hash"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"old version", strings.Replace(good, "v=19", "v=16", 1)},
		{"no leading $", strings.TrimPrefix(good, "$")},
		{"extra field", good + "$x"},
		{"missing hash", strings.Join(parts[:5], "$")},
		{"params out of order", with("t=1,m=64,p=1")},
		{"missing param", with("m=64,t=1")},
		{"non-numeric", with("m=sixty,t=1,p=1")},
		{"negative", with("m=-64,t=1,p=1")},
		{"zero lanes", with("m=64,t=0,p=0")},
		{"zero passes", with("m=64,t=0,p=1")},
		{"too little memory for lanes", with("m=8,t=1,p=4")},
		{"4 GiB memory", with("m=4194304,t=1,p=1")},
		{"overflowing memory", with("m=99999999999,t=1,p=1")},
		{"256 lanes", with("m=4096,t=1,p=256")},
		{"too many passes", with("m=64,t=1000,p=1")},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$!!!$" + key},
		{"hash not base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$???"},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$YWJj$" + key},
		{"short hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$YWJj"},
		{"padded base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Check(tt.encoded, "a fine long password")
			if !errors.Is(err, ErrMalformedHash) {
				t.Errorf("err = %v, want ErrMalformedHash", err)
			}
			if ok || rehash {
				t.Errorf("ok, rehash = %v, %v; want false, false", ok, rehash)
			}
		})
	}
}

func TestCheckPasswordTamperedHash(t *testing.T) {
	h := NewHasher(cheapParams, 1)
	good, err := h.Hash("a fine long password")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	for i, field := range []int{4, 5} {
		p := append([]string(nil), parts...)
		b := []byte(p[field])
		// Change one character, keeping it valid base64, and keep the last
		// character (whose low bits base64 may ignore) as it was.
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		p[field] = string(b)
		ok, _, err := h.Check(strings.Join(p, "$"), "a fine long password")
		if err != nil || ok {
			t.Errorf("case %d: tampered field %d: ok=%v err=%v, want false, nil", i, field, ok, err)
		}
	}
}

func TestHasherLimitsConcurrency(t *testing.T) {
	h := NewHasher(cheapParams, 2)
	// Take both slots, as two slow logins would.
	h.sem <- struct{}{}
	h.sem <- struct{}{}
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash("a fine long password")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Hash finished (err %v) while both slots were taken", err)
	case <-time.After(100 * time.Millisecond):
	}
	<-h.sem // one login finishes
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := NewHasher(cheapParams, 0); cap(n.sem) != 1 {
		t.Errorf("NewHasher(…, 0) allows %d at once, want 1", cap(n.sem))
	}
}
