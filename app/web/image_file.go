package web

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/media"
)

// imageFile serves ?format=png|webp&size=full|thumb of the person's image.
// Files are private (no shared cache) and revalidated on every use
// (no-cache): a browser keeps its copy, but shows it only after the server
// has said, with a 304 for the ETag, that the image still exists and still
// belongs to whoever is signed in — so nothing is shown from the cache
// after sign-out or deletion, and a revisit costs no download.
func (s *Server) imageFile(c echo.Context) error {
	u := currentUser(c).User
	format, size := c.QueryParam("format"), c.QueryParam("size")
	fields := app.FieldErrors{}
	if format != "" && format != media.FormatPNG && format != media.FormatWebP {
		fields.Add("format", "must be png or webp")
	}
	if size != "" && size != media.SizeFull && size != media.SizeThumb {
		fields.Add("size", "must be full or thumb")
	}
	if err := fields.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	etag, err := s.media.ETag(ctx, u.ID, c.Param("id"), format, size)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "private, no-cache")
	if etag != "" {
		h.Set("ETag", etag)
		if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
			return c.NoContent(http.StatusNotModified)
		}
	}
	rc, ctype, n, err := s.media.Open(ctx, u.ID, c.Param("id"), format, size)
	if err != nil {
		return err
	}
	defer rc.Close()
	if etag == "" {
		// Open has just made the missing file (a thumbnail): tag it now,
		// so the next visit can revalidate.
		if etag, _ = s.media.ETag(ctx, u.ID, c.Param("id"), format, size); etag != "" {
			h.Set("ETag", etag)
		}
	}
	h.Set("Content-Type", ctype)
	if n > 0 {
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	if c.QueryParam("download") != "" {
		h.Set("Content-Disposition", `attachment; filename="zimage-`+c.Param("id")+extFor(ctype)+`"`)
	}
	c.Response().WriteHeader(http.StatusOK)
	_, err = io.Copy(c.Response(), rc)
	return err
}

// etagMatches reports whether an If-None-Match header names etag (or is
// "*"). Weak tags match too: If-None-Match uses the weak comparison.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

func extFor(ctype string) string {
	switch ctype {
	case "image/webp":
		return ".webp"
	case "image/jpeg":
		return ".jpg"
	}
	return ".png"
}
