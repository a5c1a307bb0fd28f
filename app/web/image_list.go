package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

// listImages pages the person's gallery newest first: ?cursor=&limit=&q=.
// A search may return a short page with a next cursor (prompts are sealed,
// so a page scans a bounded number of rows); keep going while next is set.
func (s *Server) listImages(c echo.Context) error {
	u := currentUser(c).User
	limit, err := queryLimit(c, 50, 100)
	if err != nil {
		return err
	}
	imgs, next, err := s.media.List(c.Request().Context(), u.ID, c.QueryParam("cursor"), limit, c.QueryParam("q"))
	if err != nil {
		return err
	}
	now := s.db.Now()
	bp := pageBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledPage {
			pageBufs.Put(bp)
		}
	}()
	page, ok := appendImagesPage((*bp)[:0], imgs, next, now)
	*bp = page
	if !ok {
		out := make([]imageJSON, 0, len(imgs))
		for _, i := range imgs {
			out = append(out, toImageJSON(i, now))
		}
		return c.JSON(http.StatusOK, map[string]any{"images": out, "next": next})
	}
	return c.JSONBlob(http.StatusOK, page)
}

func (s *Server) showImage(c echo.Context) error {
	u := currentUser(c).User
	img, err := s.media.Get(c.Request().Context(), u.ID, c.Param("id"))
	if err != nil {
		return err
	}
	j := toImageJSON(img, s.db.Now())
	j.APIKeyName = s.apiKeyName(c.Request().Context(), u.ID, img.APIKeyID)
	return c.JSON(http.StatusOK, j)
}

// apiKeyName is the name of userID's API key keyID (revoked keys too), or
// "" for none or one that no longer exists.
func (s *Server) apiKeyName(ctx context.Context, userID, keyID string) string {
	if keyID == "" {
		return ""
	}
	keys, err := s.auth.ListAPIKeys(ctx, userID)
	if err != nil {
		return ""
	}
	for _, k := range keys {
		if k.ID == keyID {
			return k.Name
		}
	}
	return ""
}
