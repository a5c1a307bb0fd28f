package web

import (
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/media"
)

// imageFile serves ?format=png|webp&size=full|thumb of the person's image.
// Files are private: no shared caches, but the browser may keep a copy.
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
	rc, ctype, n, err := s.media.Open(c.Request().Context(), u.ID, c.Param("id"), format, size)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := c.Response().Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "private, max-age=86400")
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

func extFor(ctype string) string {
	switch ctype {
	case "image/webp":
		return ".webp"
	case "image/jpeg":
		return ".jpg"
	}
	return ".png"
}
