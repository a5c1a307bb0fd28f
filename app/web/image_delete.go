package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// deleteImage removes the image's files (original, WebP, thumbnail) and row.
func (s *Server) deleteImage(c echo.Context) error {
	u := currentUser(c).User
	if err := s.media.Delete(c.Request().Context(), u.ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type imagePatch struct {
	Favourite *bool `json:"favourite"`
}

// updateImage changes what a person may change about an image: favourite.
func (s *Server) updateImage(c echo.Context) error {
	u := currentUser(c).User
	var req imagePatch
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if req.Favourite != nil {
		if err := s.media.SetFavourite(ctx, u.ID, c.Param("id"), *req.Favourite); err != nil {
			return err
		}
	}
	img, err := s.media.Get(ctx, u.ID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toImageJSON(img, s.db.Now()))
}
