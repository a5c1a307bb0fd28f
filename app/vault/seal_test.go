package vault

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestSealOpenRoundTrip(t *testing.T) {
	v := mustOpen(t, t.TempDir())
	mustUser(t, v, "u1")
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{0}},
		{"text", []byte("a red fox in the snow, 35mm")},
		{"1 MiB", randomBytes(t, 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed := mustSeal(t, v, "u1", "images/1/prompt", tt.plaintext)
			if got, want := len(sealed), len(tt.plaintext)+SealOverhead; got != want {
				t.Errorf("sealed length = %d, want %d", got, want)
			}
			if len(tt.plaintext) > 8 && bytes.Contains(sealed, tt.plaintext[:8]) {
				t.Error("sealed value contains plaintext")
			}
			got, err := v.Open("u1", []byte("images/1/prompt"), sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Error("Open did not return the sealed plaintext")
			}
			// Random nonces: sealing twice never gives the same bytes.
			if again := mustSeal(t, v, "u1", "images/1/prompt", tt.plaintext); bytes.Equal(again, sealed) {
				t.Error("two seals of the same value are identical")
			}
		})
	}
}

// TestOpenRejects feeds Open everything that is not exactly what Seal
// produced for this user and place.
func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	v := mustOpen(t, dir)
	mustUser(t, v, "u1")
	mustUser(t, v, "u2")
	other := mustOpen(t, t.TempDir())
	mustUser(t, other, "u1")

	const aad = "images/01J/prompt"
	sealed := mustSeal(t, v, "u1", aad, []byte("a lighthouse at dusk"))
	flip := func(i int) []byte { return flipBit(sealed, i) }
	tests := []struct {
		name    string
		userID  string
		aad     string
		sealed  []byte
		wantErr error
	}{
		{"other user", "u2", aad, sealed, ErrTampered},
		{"other place", "u1", "images/01K/prompt", sealed, ErrTampered},
		{"no aad", "u1", "", sealed, ErrTampered},
		{"user without key", "nobody", aad, sealed, ErrNoKey},
		{"format byte flipped", "u1", aad, flip(0), ErrTampered},
		{"key version flipped", "u1", aad, flip(4), ErrTampered},
		{"nonce flipped", "u1", aad, flip(6), ErrTampered},
		{"ciphertext flipped", "u1", aad, flip(sealHeaderSize + 1), ErrTampered},
		{"tag flipped", "u1", aad, flip(len(sealed) - 1), ErrTampered},
		{"last byte cut", "u1", aad, sealed[:len(sealed)-1], ErrTampered},
		{"cut to header", "u1", aad, sealed[:sealHeaderSize], ErrTampered},
		{"extra byte", "u1", aad, append(bytes.Clone(sealed), 0), ErrTampered},
		{"empty", "u1", aad, []byte{}, ErrTampered},
		{"nil", "u1", aad, nil, ErrTampered},
		{"garbage", "u1", aad, randomBytes(t, 64), ErrTampered},
		{"garbage with our format byte", "u1", aad, append([]byte{formatSealed, 0, 0, 0, 1}, randomBytes(t, 60)...), ErrTampered},
		{"sealed by another installation", "u1", aad, mustSeal(t, other, "u1", aad, []byte("a lighthouse at dusk")), ErrTampered},
		{"a stream given to Open", "u1", aad, sealStream(t, v, "u1", aad, []byte("x"), 1), ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Open(tt.userID, []byte(tt.aad), tt.sealed)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open err = %v, want %v", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("Open returned %d bytes along with the error", len(got))
			}
		})
	}
	// The untouched value still opens: the failures above are not a broken key.
	if _, err := v.Open("u1", []byte(aad), sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Open("", []byte(aad), sealed); err == nil {
		t.Error("Open with an empty user id succeeded")
	}
}

// flipBit returns a copy of b with one bit of byte i changed.
func flipBit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

// sealStream seals data through SealWriter in writes of writeSize bytes.
func sealStream(tb testing.TB, v *Vault, userID, aad string, data []byte, writeSize int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := v.SealWriter(userID, []byte(aad), &buf)
	if err != nil {
		tb.Fatal(err)
	}
	for rest := data; len(rest) > 0; {
		n := min(writeSize, len(rest))
		if _, err := w.Write(rest[:n]); err != nil {
			tb.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func openStream(v *Vault, userID, aad string, r io.Reader) ([]byte, error) {
	or, err := v.OpenReader(userID, []byte(aad), r)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(or)
}

func TestStreamRoundTrip(t *testing.T) {
	v := mustOpen(t, t.TempDir())
	mustUser(t, v, "u1")
	tests := []struct {
		name       string
		size       int
		writeSize  int
		wantChunks int
	}{
		{"0 B", 0, 1, 1},
		{"1 B", 1, 1, 1},
		{"one chunk less a byte", ChunkSize - 1, 4096, 1},
		{"exactly one chunk", ChunkSize, ChunkSize, 1},
		{"exactly one chunk in one-byte writes", ChunkSize, 1, 1},
		{"one chunk and a byte", ChunkSize + 1, 7000, 2},
		{"many chunks", 5*ChunkSize + 123, 100_000, 6},
		{"1 MiB in one write", 1 << 20, 1 << 20, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(t, tt.size)
			sealed := sealStream(t, v, "u1", "media/u1/img.png", data, tt.writeSize)
			if got, want := len(sealed), streamHeaderSize+tt.size+tt.wantChunks*tagSize; got != want {
				t.Errorf("sealed length = %d, want %d (%d chunks)", got, want, tt.wantChunks)
			}
			got, err := openStream(v, "u1", "media/u1/img.png", bytes.NewReader(sealed))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("stream did not round-trip")
			}
			// Readers that return one byte at a time must work too.
			got, err = openStream(v, "u1", "media/u1/img.png", iotest.OneByteReader(bytes.NewReader(sealed)))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("one-byte reader: %v", err)
			}
		})
	}
}

// TestStreamRejects cuts, reorders and alters a four-chunk stream.
func TestStreamRejects(t *testing.T) {
	v := mustOpen(t, t.TempDir())
	mustUser(t, v, "u1")
	mustUser(t, v, "u2")
	const aad = "media/u1/img.png"
	data := randomBytes(t, 3*ChunkSize+500)
	sealed := sealStream(t, v, "u1", aad, data, 10_000)
	oneChunk := sealStream(t, v, "u1", aad, data[:ChunkSize], ChunkSize)

	const c = ChunkSize + tagSize
	h := streamHeaderSize
	chunk := func(i int) []byte { return sealed[h+i*c : min(h+(i+1)*c, len(sealed))] }
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	header := sealed[:h]
	flip := flipBit
	tests := []struct {
		name   string
		userID string
		aad    string
		sealed []byte
		// wantPlain is what may be returned before the error: whole
		// chunks that authenticated, never a byte of a bad one.
		wantPlain []byte
	}{
		{"last chunk dropped", "u1", aad, sealed[:h+3*c], data[:2*ChunkSize]},
		{"cut inside the last chunk", "u1", aad, sealed[:len(sealed)-1], data[:3*ChunkSize]},
		{"cut inside a middle chunk", "u1", aad, sealed[:h+c+100], data[:ChunkSize]},
		{"cut after the header", "u1", aad, header, nil},
		{"cut inside the header", "u1", aad, header[:h-1], nil},
		{"empty", "u1", aad, nil, nil},
		{"middle chunk dropped", "u1", aad, join(header, chunk(0), chunk(2), chunk(3)), data[:ChunkSize]},
		{"chunks swapped", "u1", aad, join(header, chunk(1), chunk(0), chunk(2), chunk(3)), nil},
		{"chunk repeated", "u1", aad, join(header, chunk(0), chunk(0), chunk(1), chunk(2), chunk(3)), data[:ChunkSize]},
		{"bytes appended", "u1", aad, join(sealed, []byte{0}), data[:3*ChunkSize]},
		{"bit flipped in chunk 2", "u1", aad, flip(sealed, h+2*c+9), data[:2*ChunkSize]},
		{"bit flipped in the header salt", "u1", aad, flip(sealed, 7), nil},
		{"bit flipped in the header nonce", "u1", aad, flip(sealed, h-1), nil},
		{"format byte changed", "u1", aad, flip(sealed, 0), nil},
		{"one-chunk stream cut to its header", "u1", aad, oneChunk[:h], nil},
		{"one-chunk stream with its tag cut", "u1", aad, oneChunk[:len(oneChunk)-tagSize], nil},
		{"other user", "u2", aad, sealed, nil},
		{"other place", "u1", "media/u1/other.png", sealed, nil},
		{"a sealed value given to OpenReader", "u1", aad, mustSeal(t, v, "u1", aad, data[:100]), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openStream(v, tt.userID, tt.aad, bytes.NewReader(tt.sealed))
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("err = %v, want ErrTampered", err)
			}
			if !bytes.Equal(got, tt.wantPlain) {
				t.Errorf("returned %d bytes before the error, want %d", len(got), len(tt.wantPlain))
			}
		})
	}
	if got, err := openStream(v, "u1", aad, bytes.NewReader(sealed)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("untouched stream: %v", err)
	}
}

func TestSealWriterAfterClose(t *testing.T) {
	v := mustOpen(t, t.TempDir())
	mustUser(t, v, "u1")
	var buf bytes.Buffer
	w, err := v.SealWriter("u1", nil, &buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abc"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if buf.Len() != n {
		t.Error("bytes reached the underlying writer after Close")
	}
	if _, err := v.SealWriter("nobody", nil, &buf); !errors.Is(err, ErrNoKey) {
		t.Errorf("SealWriter for a user without a key: %v, want ErrNoKey", err)
	}
}
