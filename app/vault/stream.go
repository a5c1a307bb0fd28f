package vault

import (
	"bufio"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// Stream layout, for files too large to seal in one piece:
//
//	format (1) | key version (4) | salt (16) | nonce prefix (7) | chunk 0 | chunk 1 | … | last chunk
//
// Each chunk is ChunkSize bytes of plaintext (the last one may be shorter,
// or empty for an empty file) sealed with AES-256-GCM under a key derived
// from the user's key and the random salt, so nonces never repeat across
// files. A chunk's nonce is prefix || counter (4) || last flag (1): moving,
// dropping or duplicating a chunk changes its counter, and cutting the file
// after any chunk leaves a last chunk that was sealed as "not last", so
// every such edit fails to open. The associated data of every chunk covers
// the user id, the caller's aad and the header, as for Seal.
const (
	ChunkSize        = 64 << 10
	streamSaltSize   = 16
	streamPrefixSize = 7
	streamHeaderSize = 1 + 4 + streamSaltSize + streamPrefixSize
)

// SealWriter returns a writer that seals everything written to it into w
// for userID. Close must be called to write the last chunk; it does not
// close w. A stream without its last chunk does not open.
func (v *Vault) SealWriter(userID string, aad []byte, w io.Writer) (io.WriteCloser, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	keys, err := v.keysFor(userID)
	if err != nil {
		return nil, fmt.Errorf("vault: seal stream %q: %w", aad, err)
	}
	header := make([]byte, streamHeaderSize)
	header[0] = formatStream
	binary.BigEndian.PutUint32(header[1:5], keys.current)
	rand.Read(header[5:])
	aead, err := streamAEAD(keys.versions[keys.current].raw, header)
	if err != nil {
		return nil, fmt.Errorf("vault: seal stream %q: %w", aad, err)
	}
	if _, err := w.Write(header); err != nil {
		return nil, fmt.Errorf("vault: seal stream %q: write header: %w", aad, err)
	}
	sw := &sealWriter{w: w, aead: aead, ad: streamAD(userID, aad, header), buf: make([]byte, 0, ChunkSize), out: make([]byte, 0, ChunkSize+tagSize)}
	copy(sw.nonce[:], header[streamHeaderSize-streamPrefixSize:])
	return sw, nil
}

type sealWriter struct {
	w       io.Writer
	aead    cipher.AEAD
	ad      []byte
	nonce   [nonceSize]byte
	counter uint32
	buf     []byte // plaintext of the chunk being filled
	out     []byte
	err     error // sticky: after a failure nothing more reaches w
}

func (s *sealWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	written := 0
	for len(p) > 0 {
		// A full chunk is held back until more data arrives, because only
		// then is it known not to be the last one.
		if len(s.buf) == ChunkSize {
			if err := s.flush(false); err != nil {
				return written, err
			}
		}
		n := copy(s.buf[len(s.buf):ChunkSize], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
		written += n
	}
	return written, nil
}

func (s *sealWriter) Close() error {
	if s.err != nil {
		if errors.Is(s.err, errWriterClosed) {
			return nil
		}
		return s.err
	}
	if err := s.flush(true); err != nil {
		return err
	}
	s.err = errWriterClosed
	return nil
}

var errWriterClosed = errors.New("vault: write to a closed seal writer")

func (s *sealWriter) flush(last bool) error {
	if !last && s.counter == math.MaxUint32 {
		s.err = errors.New("vault: seal stream: too large (over 2^32 chunks)")
		return s.err
	}
	nonce := chunkNonce(s.nonce, s.counter, last)
	s.out = s.aead.Seal(s.out[:0], nonce[:], s.buf, s.ad)
	if _, err := s.w.Write(s.out); err != nil {
		s.err = fmt.Errorf("vault: seal stream: write chunk %d: %w", s.counter, err)
		return s.err
	}
	s.counter++
	s.buf = s.buf[:0]
	return nil
}

// OpenReader returns a reader of the plaintext of a stream made by
// SealWriter for the same userID and aad. Each chunk is checked before any
// of it is returned; a damaged, cut or reordered stream gives an error
// wrapping ErrTampered at the first bad chunk. Bytes of earlier chunks
// have been returned by then, so callers that must not act on part of a
// file read it to the end before using it.
func (v *Vault) OpenReader(userID string, aad []byte, r io.Reader) (io.Reader, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	header := make([]byte, streamHeaderSize)
	if _, err := io.ReadFull(r, header); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("vault: open stream %q: shorter than a stream header: %w", aad, ErrTampered)
		}
		return nil, fmt.Errorf("vault: open stream %q: read header: %w", aad, err)
	}
	k, err := v.keyForHeader(userID, header, formatStream)
	if err != nil {
		return nil, fmt.Errorf("vault: open stream %q: %w", aad, err)
	}
	aead, err := streamAEAD(k.raw, header)
	if err != nil {
		return nil, fmt.Errorf("vault: open stream %q: %w", aad, err)
	}
	in := chunkBufs.Get().(*[]byte)
	or := &openReader{r: bufio.NewReader(r), aead: aead, ad: streamAD(userID, aad, header), aad: aad, inBuf: in, in: *in}
	copy(or.nonce[:], header[streamHeaderSize-streamPrefixSize:])
	return or, nil
}

type openReader struct {
	r       *bufio.Reader
	aead    cipher.AEAD
	ad, aad []byte
	nonce   [nonceSize]byte
	counter uint32
	in      []byte
	inBuf   *[]byte // in's pool entry, given back once the stream ends
	plain   []byte  // authenticated plaintext not yet returned
	done    bool    // the last chunk has been opened
	err     error
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.err != nil {
			o.release()
			return 0, o.err
		}
		if o.done {
			o.release()
			return 0, io.EOF
		}
		o.err = o.next()
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

// chunkBufs hold the chunk a stream is opening: every image download and
// derivative opens a stream, and 64 KiB apiece adds up.
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, ChunkSize+tagSize); return &b }}

// release gives the chunk buffer back once the stream has ended (EOF or an
// error), when nothing refers to it any more; a stream left unread keeps
// it until it is collected.
func (o *openReader) release() {
	if o.inBuf != nil {
		chunkBufs.Put(o.inBuf)
		o.inBuf, o.in = nil, nil
	}
}

// next opens one chunk. The last chunk is the one the input ends after;
// whether it was sealed as last is what the tag then checks.
func (o *openReader) next() error {
	n, err := io.ReadFull(o.r, o.in)
	last := false
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("vault: open stream %q: ends after %d chunks, before its last one: %w", o.aad, o.counter, ErrTampered)
	case errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	case err != nil:
		return fmt.Errorf("vault: open stream %q: read chunk %d: %w", o.aad, o.counter, err)
	default:
		if _, err := o.r.Peek(1); errors.Is(err, io.EOF) {
			last = true
		} else if err != nil {
			return fmt.Errorf("vault: open stream %q: read chunk %d: %w", o.aad, o.counter+1, err)
		}
	}
	if !last && o.counter == math.MaxUint32 {
		return fmt.Errorf("vault: open stream %q: more than 2^32 chunks: %w", o.aad, ErrTampered)
	}
	nonce := chunkNonce(o.nonce, o.counter, last)
	plain, err := o.aead.Open(o.in[:0], nonce[:], o.in[:n], o.ad)
	if err != nil {
		return fmt.Errorf("vault: open stream %q: chunk %d: %w", o.aad, o.counter, ErrTampered)
	}
	o.plain = plain
	o.counter++
	o.done = last
	return nil
}

func chunkNonce(prefix [nonceSize]byte, counter uint32, last bool) [nonceSize]byte {
	n := prefix
	binary.BigEndian.PutUint32(n[streamPrefixSize:], counter)
	n[nonceSize-1] = 0
	if last {
		n[nonceSize-1] = 1
	}
	return n
}

func streamAEAD(userKey, header []byte) (cipher.AEAD, error) {
	salt := header[5 : 5+streamSaltSize]
	key, err := hkdf.Key(sha256.New, userKey, salt, "zimage/vault/stream-key/v1", KeySize)
	if err != nil {
		return nil, err
	}
	return newGCM(key)
}

func streamAD(userID string, aad, header []byte) []byte {
	ad := append([]byte(nil), "zimage/vault/stream/v1"...)
	ad = appendField(ad, []byte(userID))
	ad = appendField(ad, aad)
	return append(ad, header...)
}
