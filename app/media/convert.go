package media

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"

	"zimage/app"
)

// Output formats Encode makes, as OpenAI's images API names them.
const (
	OutputPNG  = "png"
	OutputWebP = "webp"
	OutputJPEG = "jpeg"
)

// Encode returns userID's image in format at quality (1–100; WebP and
// JPEG only) and its content type, for answers that name their format
// (the OpenAI API's output_format). PNG is the stored original as it is;
// WebP and JPEG are encoded from its pixels on the spot and marked like
// every other derivative, so whatever is served says it was generated and
// carries no parameters the person did not choose to embed.
func (s *Store) Encode(ctx context.Context, userID, imageID, format string, quality int) ([]byte, string, error) {
	rc, ct, _, err := s.Open(ctx, userID, imageID, FormatPNG, SizeFull)
	if err != nil {
		return nil, "", err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, "", fmt.Errorf("media: read image %s: %w", imageID, err)
	}
	if format == OutputPNG && ct == "image/png" || format == "" {
		return data, ct, nil
	}
	row, err := s.db.Image(ctx, userID, imageID)
	if err != nil {
		return nil, "", err
	}
	m, err := decode(data)
	if err != nil {
		return nil, "", app.Wrap(err, "media: decode image %s", imageID)
	}
	quality = min(max(quality, 1), 100)
	var out []byte
	switch format {
	case OutputWebP:
		out, err = encodeWebP(m, float32(quality))
		ct = "image/webp"
	case OutputJPEG:
		var b bytes.Buffer
		err = jpeg.Encode(&b, m, &jpeg.Options{Quality: quality})
		out, ct = b.Bytes(), "image/jpeg"
	case OutputPNG:
		// A backend sent something else (JPEG): re-encode as asked.
		var b bytes.Buffer
		err = png.Encode(&b, m)
		out, ct = b.Bytes(), "image/png"
	default:
		return nil, "", app.Errorf(app.EINVALID, "There is no image format %q: choose png, webp or jpeg.", format)
	}
	if err != nil {
		return nil, "", app.Wrap(err, "media: encode image %s as %s", imageID, format)
	}
	if out, err = s.markDerivative(row.Model)(out); err != nil {
		return nil, "", app.Wrap(err, "media: mark image %s", imageID)
	}
	return out, ct, nil
}
