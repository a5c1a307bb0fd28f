package media

import (
	"zimage/app/backend"
	"zimage/app/provenance"
)

// digitalSource says how a picture was made, for its marks: the builtin
// renderer draws with code and no trained model; everything else comes
// from a model server. It goes by the model recorded with the image, so
// derivatives made later (or after a restart) say the same as their
// original.
func digitalSource(model string) string {
	if model == backend.BuiltinModel {
		return provenance.AlgorithmicMedia
	}
	return provenance.TrainedAlgorithmicMedia
}

// finishOriginal makes the bytes stored for a backend's image: everything
// the backend wrote into the file goes (ComfyUI's workflow and prompt,
// A1111's parameters, EXIF, XMP, timestamps); then the person's
// parameters, only if they chose to embed them (PNG only); then Z Image's
// marks, and last the signed Content Credentials, whose hash binds every
// other byte of the file as served.
// parameters is called only when they are embedded.
func (s *Store) finishOriginal(data []byte, contentType, model string, opts SaveOptions, parameters func() string) (out []byte, embedded bool, err error) {
	if out, err = provenance.Strip(data); err != nil {
		return nil, false, err
	}
	if opts.EmbedParameters && contentType == "image/png" {
		if out, err = provenance.InsertPNGText(out, "parameters", parameters()); err != nil {
			return nil, false, err
		}
		embedded = true
	}
	if out, err = s.marks.Mark(out, digitalSource(model)); err != nil {
		return nil, false, err
	}
	if out, err = s.creds.Sign(out, digitalSource(model), model); err != nil {
		return nil, false, err
	}
	return out, embedded, nil
}

// markDerivative marks and signs a WebP copy or thumbnail the way its
// original was.
func (s *Store) markDerivative(model string) func([]byte) ([]byte, error) {
	return func(data []byte) ([]byte, error) {
		out, err := s.marks.Mark(data, digitalSource(model))
		if err != nil {
			return nil, err
		}
		return s.creds.Sign(out, digitalSource(model), model)
	}
}
