package c2pa

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// COSE (RFC 9052) labels used by a C2PA claim signature.
const (
	coseHeaderAlg     = 1
	coseHeaderX5Chain = 33
	coseAlgES256      = -7
	coseSign1Tag      = 18
)

// signSize is the size of an ES256 signature in COSE: r and s, 32 bytes
// each, big-endian.
const signSize = 64

var encMode = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// protectedHeader names the algorithm and carries the certificate chain
// (x5chain, one bstr for a single certificate, else an array), in the
// protected header as C2PA 2.x requires.
func protectedHeader(chain [][]byte) ([]byte, error) {
	h := map[int]any{coseHeaderAlg: coseAlgES256}
	if len(chain) == 1 {
		h[coseHeaderX5Chain] = chain[0]
	} else {
		h[coseHeaderX5Chain] = chain
	}
	return encMode.Marshal(h)
}

// sign1 returns a tagged COSE_Sign1 over claim with a detached payload:
// the claim lives in its own box and the signature covers it through the
// Sig_structure. With key nil it returns a structure of the same size
// whose signature is zeros, for laying out the file before signing.
func sign1(key *ecdsa.PrivateKey, chain [][]byte, claim []byte) ([]byte, error) {
	protected, err := protectedHeader(chain)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, signSize)
	if key != nil {
		toBeSigned, err := encMode.Marshal([]any{"Signature1", protected, []byte{}, claim})
		if err != nil {
			return nil, err
		}
		digest := sha256.Sum256(toBeSigned)
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			return nil, fmt.Errorf("c2pa: sign: %w", err)
		}
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return encMode.Marshal(cbor.Tag{Number: coseSign1Tag, Content: []any{protected, map[any]any{}, nil, sig}})
}
