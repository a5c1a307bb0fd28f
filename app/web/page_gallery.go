package web

import (
	"archive/zip"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/media"
	"zimage/app/provenance"
)

type tileView struct {
	ID            string
	Width, Height int
	Favourite     bool
	Alt           string
	DaysLeft      int
	ExpiresDate   string
}

type galleryPage struct {
	Query     string
	Images    []tileView
	Next      string
	First     bool
	Retention string
}

// altText describes an image by its prompt, shortened for screen readers.
func altText(prompt string) string {
	const max = 120
	prompt = app.VisibleText(prompt)
	if utf8.RuneCountInString(prompt) <= max {
		return prompt
	}
	r := []rune(prompt)
	return string(r[:max]) + "…"
}

// galleryPageSize keeps a first page under 1 MB: 100 thumbnails of at most
// media.ThumbMaxBytes each, plus the HTML.
const galleryPageSize = 100

func (s *Server) galleryView(c echo.Context) error {
	u := currentUser(c).User
	q, cursor := c.QueryParam("q"), c.QueryParam("cursor")
	imgs, next, err := s.media.List(c.Request().Context(), u.ID, cursor, galleryPageSize, q)
	if err != nil {
		return err
	}
	now := s.db.Now()
	d := galleryPage{Query: q, Next: next, First: cursor == "", Retention: s.opts.ImagesRetention}
	for _, i := range imgs {
		d.Images = append(d.Images, tileView{ID: i.ID, Width: i.Width, Height: i.Height, Favourite: i.Favourite,
			Alt: altText(i.Prompt), DaysLeft: daysLeft(i.ExpiresAt, now), ExpiresDate: i.ExpiresAt.Format("2 Jan 2006")})
	}
	return s.render(c, http.StatusOK, "gallery", s.newPage(c, "gallery", d))
}

// galleryBulk deletes or zips the selected images.
func (s *Server) galleryBulk(c echo.Context) error {
	u := currentUser(c).User
	form, err := c.FormParams()
	if err != nil {
		return app.Errorf(app.EINVALID, "The form could not be read; reload the page and try again.")
	}
	ids := form["id"]
	if len(ids) == 0 {
		return app.Errorf(app.EINVALID, "Select at least one image first.")
	}
	if len(ids) > 500 {
		return app.Errorf(app.EINVALID, "Select at most 500 images at once.")
	}
	ctx := c.Request().Context()
	switch form.Get("action") {
	case "delete":
		for _, id := range ids {
			if err := s.media.Delete(ctx, u.ID, id); err != nil && app.ErrorCode(err) != app.ENOTFOUND {
				return err
			}
		}
		return c.Redirect(http.StatusSeeOther, "/gallery")
	case "zip":
		// Check every id first, so a wrong one gives a clean 404 rather
		// than a cut-off archive.
		imgs := make([]app.Image, 0, len(ids))
		for _, id := range ids {
			img, err := s.media.Get(ctx, u.ID, id)
			if err != nil {
				return err
			}
			imgs = append(imgs, img)
		}
		h := c.Response().Header()
		h.Set("Content-Type", "application/zip")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="zimage-%s.zip"`, time.Now().UTC().Format("20060102-150405")))
		c.Response().WriteHeader(http.StatusOK)
		zw := zip.NewWriter(c.Response())
		for _, img := range imgs {
			rc, ctype, _, err := s.media.Open(ctx, u.ID, img.ID, media.FormatPNG, media.SizeFull)
			if err != nil {
				s.log.Error("zip: open image", "err", err)
				break
			}
			// Already compressed: store, don't deflate again.
			w, err := zw.CreateHeader(&zip.FileHeader{Name: "zimage-" + img.ID + extFor(ctype), Method: zip.Store, Modified: img.CreatedAt})
			if err == nil {
				_, err = io.Copy(w, rc)
			}
			rc.Close()
			if err != nil {
				return nil // the client went away
			}
		}
		return zw.Close()
	}
	return app.Errorf(app.EINVALID, "Choose Delete or Download.")
}

type imagePage struct {
	Image                         app.Image
	Alt, Created, Render, Expires string
	DaysLeft                      int
	// Carries is what the stored PNG says about itself (the badge).
	Carries provenance.Carried
	// APIKey names the API key that asked for the image ("" from the pages).
	APIKey string
}

// carriesHead is how much of the stored PNG the badge reads: the marks and
// the manifest store sit right after IHDR.
const carriesHead = 64 << 10

// carries reads the start of an image's PNG for the badge; a file that
// cannot be read shows no badge rather than failing the page.
func (s *Server) carries(c echo.Context, userID, imageID string) provenance.Carried {
	rc, _, _, err := s.media.Open(c.Request().Context(), userID, imageID, media.FormatPNG, media.SizeFull)
	if err != nil {
		return provenance.Carried{}
	}
	defer rc.Close()
	head, _ := io.ReadAll(io.LimitReader(rc, carriesHead))
	return provenance.Carries(head)
}

func (s *Server) imageView(c echo.Context) error {
	u := currentUser(c).User
	img, err := s.media.Get(c.Request().Context(), u.ID, c.Param("id"))
	if err != nil {
		return err
	}
	d := imagePage{Image: img, Alt: altText(img.Prompt), Created: img.CreatedAt.Format("2 Jan 2006 15:04 MST"),
		Expires: img.ExpiresAt.Format("2 Jan 2006"), DaysLeft: daysLeft(img.ExpiresAt, s.db.Now()),
		APIKey: s.apiKeyName(c.Request().Context(), u.ID, img.APIKeyID)}
	if rt := img.RenderTime(); rt > 0 {
		d.Render = rt.Round(10 * time.Millisecond).String()
	}
	d.Carries = s.carries(c, u.ID, img.ID)
	return s.render(c, http.StatusOK, "image", s.newPage(c, "gallery", d))
}

func (s *Server) imageDeleteForm(c echo.Context) error {
	u := currentUser(c).User
	if err := s.media.Delete(c.Request().Context(), u.ID, c.Param("id")); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/gallery")
}

func (s *Server) imageFavouriteForm(c echo.Context) error {
	u := currentUser(c).User
	id := c.Param("id")
	if err := s.media.SetFavourite(c.Request().Context(), u.ID, id, c.FormValue("favourite") == "1"); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/images/"+id)
}
