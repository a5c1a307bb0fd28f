package c2pa

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// Labels of the boxes and assertions Z Image writes (C2PA 2.1).
const (
	labelStore      = "c2pa"
	labelAssertions = "c2pa.assertions"
	labelActions    = "c2pa.actions.v2"
	labelDataHash   = "c2pa.hash.data"
	labelClaim      = "c2pa.claim.v2"
	labelSignature  = "c2pa.signature"
	actionCreated   = "c2pa.created"
)

// Facts is what a manifest says about a picture: how it was made and by
// which software. Nothing about the person, the prompt or the host.
type Facts struct {
	// DigitalSourceType is the IPTC URI, the same as in the XMP marks.
	DigitalSourceType string
	// Software and Version name the software agent ("Z Image", "1.2.3").
	Software, Version string
	// Model, when not empty, is written as the action's parameter "model"
	// (only when the operator chose to disclose it).
	Model string
}

// Exclusion is the byte range of the file that holds the manifest store,
// left out of the hash (c2pa.hash.data exclusions).
type Exclusion struct {
	Start, Length int
}

type generatorInfo struct {
	Name    string `cbor:"name"`
	Version string `cbor:"version,omitempty"`
}

type action struct {
	Action            string         `cbor:"action"`
	SoftwareAgent     generatorInfo  `cbor:"softwareAgent"`
	DigitalSourceType string         `cbor:"digitalSourceType"`
	Parameters        map[string]any `cbor:"parameters,omitempty"`
}

type actions struct {
	Actions []action `cbor:"actions"`
}

type hashRange struct {
	Start  int `cbor:"start"`
	Length int `cbor:"length"`
}

type dataHash struct {
	Exclusions []hashRange `cbor:"exclusions"`
	Name       string      `cbor:"name"`
	Alg        string      `cbor:"alg"`
	Hash       []byte      `cbor:"hash"`
	Pad        []byte      `cbor:"pad"`
}

type hashedURI struct {
	URL  string `cbor:"url"`
	Hash []byte `cbor:"hash"`
}

type claimV2 struct {
	InstanceID        string        `cbor:"instanceID"`
	GeneratorInfo     generatorInfo `cbor:"claim_generator_info"`
	Signature         string        `cbor:"signature"`
	CreatedAssertions []hashedURI   `cbor:"created_assertions"`
	Alg               string        `cbor:"alg"`
}

// manifestIDs are the random names of one manifest: its label and the
// claim's instance id. Random, so they tie the file to nothing.
type manifestIDs struct{ label, instance string }

func newIDs() (manifestIDs, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return manifestIDs{}, err
	}
	return manifestIDs{label: "urn:c2pa:" + uuid4(b[:16]), instance: "xmp:iid:" + uuid4(b[16:])}, nil
}

func uuid4(b []byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// cborAssertion is an assertion's superbox and the hashed URI the claim
// holds for it: SHA-256 over the superbox's payload (description and
// content boxes, not the superbox header), as C2PA hashes assertions.
func cborAssertion(manifestLabel, label string, v any) (box []byte, ref hashedURI, err error) {
	data, err := encMode.Marshal(v)
	if err != nil {
		return nil, hashedURI{}, err
	}
	payload := superBoxPayload(uuidCBOR, label, boxCBOR(data))
	sum := sha256.Sum256(payload)
	url := "self#jumbf=/" + labelStore + "/" + manifestLabel + "/" + labelAssertions + "/" + label
	return boxJUMB(payload), hashedURI{URL: url, Hash: sum[:]}, nil
}

func boxCBOR(data []byte) []byte    { return box("cbor", data) }
func boxJUMB(payload []byte) []byte { return box("jumb", payload) }

// store builds the manifest store: one manifest with the actions and
// data-hash assertions, the claim, and its signature. A nil signer key
// (see sign1) gives the same layout with a zero signature.
func (s *Signer) store(ids manifestIDs, f Facts, hash []byte, ex Exclusion, sign bool) ([]byte, error) {
	act := action{
		Action:            actionCreated,
		SoftwareAgent:     generatorInfo{Name: f.Software, Version: f.Version},
		DigitalSourceType: f.DigitalSourceType,
	}
	if f.Model != "" {
		act.Parameters = map[string]any{"model": f.Model}
	}
	actionsBox, actionsRef, err := cborAssertion(ids.label, labelActions, actions{Actions: []action{act}})
	if err != nil {
		return nil, err
	}
	hashBox, hashRef, err := cborAssertion(ids.label, labelDataHash, dataHash{
		Exclusions: []hashRange{{Start: ex.Start, Length: ex.Length}},
		Name:       "jumbf manifest",
		Alg:        "sha256",
		Hash:       hash,
		Pad:        []byte{},
	})
	if err != nil {
		return nil, err
	}
	claim, err := encMode.Marshal(claimV2{
		InstanceID:        ids.instance,
		GeneratorInfo:     generatorInfo{Name: f.Software, Version: f.Version},
		Signature:         "self#jumbf=/" + labelStore + "/" + ids.label + "/" + labelSignature,
		CreatedAssertions: []hashedURI{actionsRef, hashRef},
		Alg:               "sha256",
	})
	if err != nil {
		return nil, err
	}
	key := s.key
	if !sign {
		key = nil
	}
	cose, err := sign1(key, s.chain, claim)
	if err != nil {
		return nil, err
	}
	manifest := superBox(uuidManifest, ids.label,
		superBox(uuidAssertionStore, labelAssertions, actionsBox, hashBox),
		superBox(uuidClaim, labelClaim, boxCBOR(claim)),
		superBox(uuidSignature, labelSignature, boxCBOR(cose)),
	)
	return superBox(uuidManifestStore, labelStore, manifest), nil
}

// Container is how a file format carries a manifest store: Exclusion
// says which byte range a store of n bytes will take (the hash leaves it
// out), Place returns the file with a chunk of that size at its place,
// and Fill writes the store into that chunk.
type Container interface {
	Exclusion(n int) Exclusion
	Place(n int) ([]byte, error)
	Fill(file []byte, ex Exclusion, store []byte) error
}

// Embed signs a manifest about f and embeds it with c. The store's size
// depends only on the numbers written into it (the exclusion), so a few
// rounds settle it; the file is then laid out once with a store of that
// size, hashed without the excluded range, and the signed store written
// into place.
func (s *Signer) Embed(c Container, f Facts) ([]byte, error) {
	ids, err := newIDs()
	if err != nil {
		return nil, err
	}
	zero := make([]byte, sha256.Size)
	size := 0
	for range 4 {
		store, err := s.store(ids, f, zero, c.Exclusion(size), false)
		if err != nil {
			return nil, err
		}
		if len(store) == size {
			break
		}
		size = len(store)
	}
	ex := c.Exclusion(size)
	file, err := c.Place(size)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(file[:ex.Start])
	h.Write(file[ex.Start+ex.Length:])
	store, err := s.store(ids, f, h.Sum(nil), ex, true)
	if err != nil {
		return nil, err
	}
	if len(store) != size {
		return nil, fmt.Errorf("c2pa: manifest store is %d bytes, laid out for %d", len(store), size)
	}
	if err := c.Fill(file, ex, store); err != nil {
		return nil, err
	}
	return file, nil
}
