package media

import (
	"context"
	"fmt"
	"strconv"

	"zimage/app"
)

// fileChoice fills in the defaults of Open's format and size ("" picks png
// for full; a thumbnail is always WebP) and refuses unknown values.
func fileChoice(format, size string) (string, string, error) {
	switch size {
	case "", SizeFull:
		size = SizeFull
		if format == "" {
			format = FormatPNG
		}
	case SizeThumb:
		// Thumbnails exist only as WebP: size=thumb serves that one
		// whatever format asks (png or webp), and the content type says
		// what it is. An unknown format is still refused below.
		if format == "" || format == FormatPNG {
			format = FormatWebP
		}
	default:
		return "", "", &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("Unknown size %q: use full or thumb.", size), Fields: map[string]string{"size": "must be full or thumb"}}
	}
	if format != FormatPNG && format != FormatWebP {
		return "", "", &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("Unknown format %q: use png or webp.", format), Fields: map[string]string{"format": "must be png or webp"}}
	}
	return format, size, nil
}

// ETag returns a strong validator for the file Open would return, read
// from the image's row alone, so a browser's revisit is answered without
// opening the sealed file. A file is written once and never changes (an
// image is deleted, not edited; ids are never reused), so the image id,
// the variant and its size name its content. It is "" while the file does
// not exist yet (a WebP copy or thumbnail still to be made). Errors are
// Open's: ENOTFOUND for another person's or a deleted image.
func (s *Store) ETag(ctx context.Context, userID, imageID, format, size string) (string, error) {
	format, size, err := fileChoice(format, size)
	if err != nil {
		return "", err
	}
	r, err := s.db.Image(ctx, userID, imageID)
	if err != nil {
		return "", err
	}
	variant, n, made := variantOrig, r.Bytes, true
	switch {
	case size == SizeThumb:
		variant, n, made = variantThumb, r.ThumbBytes, r.HasThumb
	case format == FormatWebP:
		variant, n, made = variantWebP, r.WebPBytes, r.HasWebP
	}
	if !made || n <= 0 {
		return "", nil
	}
	return `"` + imageID + "-" + variant + "-" + strconv.FormatInt(n, 10) + `"`, nil
}
