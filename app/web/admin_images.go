package web

import (
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"zimage/app/media"
)

// adminUserImages lists a person's images for an admin who holds an access
// grant for them (a reason the person sees in their access history).
func (s *Server) adminUserImages(c echo.Context) error {
	limit, err := queryLimit(c, 50, 100)
	if err != nil {
		return err
	}
	imgs, next, err := s.media.List(c.Request().Context(), c.Param("id"), c.QueryParam("cursor"), limit, c.QueryParam("q"))
	if err != nil {
		return err
	}
	now := s.db.Now()
	out := make([]imageJSON, 0, len(imgs))
	for _, i := range imgs {
		j := toImageJSON(i, now)
		// The person's own URLs would not work for the admin.
		base := "/api/v1/admin/users/" + i.UserID + "/images/" + i.ID + "/file"
		j.URLs = imageURLs{Original: base + "?format=png", WebP: base + "?format=webp", Thumb: base + "?size=thumb"}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, map[string]any{"images": out, "next": next})
}

// adminUserImageFile serves one of the person's image files under the same
// grant. Another person's image id answers 404.
func (s *Server) adminUserImageFile(c echo.Context) error {
	format, size := c.QueryParam("format"), c.QueryParam("size")
	if format == "" && size == "" {
		format = media.FormatPNG
	}
	rc, ctype, n, err := s.media.Open(c.Request().Context(), c.Param("id"), c.Param("image"), format, size)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := c.Response().Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-store")
	if n > 0 {
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	c.Response().WriteHeader(http.StatusOK)
	_, err = io.Copy(c.Response(), rc)
	return err
}
