package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

type exportJSON struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Bytes       int64      `json:"bytes"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Expired     bool       `json:"expired"`
	DownloadURL string     `json:"download_url,omitempty"`
}

func toExportJSON(e app.Export, now time.Time) exportJSON {
	out := exportJSON{ID: e.ID, Status: e.Status, Bytes: e.Bytes, Error: e.Error, CreatedAt: e.CreatedAt, DoneAt: optTime(e.DoneAt), ExpiresAt: optTime(e.ExpiresAt)}
	out.Expired = e.Status == app.ExportReady && !now.Before(e.ExpiresAt)
	if e.Status == app.ExportReady && !out.Expired {
		out.DownloadURL = "/api/v1/me/exports/" + e.ID + "/download"
	}
	return out
}

// createExport asks for an archive of everything held on the caller. It
// is built in the background: 202 with its id, then poll its status.
func (s *Server) createExport(c echo.Context) error {
	if s.exports == nil {
		return unavailable("Data export")
	}
	e, err := s.exports.Request(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/me/exports/"+e.ID)
	return c.JSON(http.StatusAccepted, toExportJSON(e, s.db.Now()))
}

// listExports lists the caller's exports, newest first.
func (s *Server) listExports(c echo.Context) error {
	if s.exports == nil {
		return unavailable("Data export")
	}
	list, err := s.exports.List(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	now := s.db.Now()
	out := make([]exportJSON, 0, len(list))
	for _, e := range list {
		out = append(out, toExportJSON(e, now))
	}
	return c.JSON(http.StatusOK, map[string]any{"exports": out})
}

// showExport shows one of the caller's exports.
func (s *Server) showExport(c echo.Context) error {
	if s.exports == nil {
		return unavailable("Data export")
	}
	e, err := s.exports.Get(c.Request().Context(), currentUser(c).User.ID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toExportJSON(e, s.db.Now()))
}

// downloadExport streams the decrypted ZIP; 410 once it has expired.
func (s *Server) downloadExport(c echo.Context) error {
	if s.exports == nil {
		return unavailable("Data export")
	}
	rc, e, err := s.exports.Open(c.Request().Context(), currentUser(c).User.ID, c.Param("id"))
	if err != nil {
		return err
	}
	defer rc.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/zip")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="zimage-export-%s.zip"`, e.CreatedAt.Format("2006-01-02")))
	h.Set(echo.HeaderContentLength, strconv.FormatInt(e.Bytes, 10))
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	if _, err := io.Copy(c.Response(), rc); err != nil {
		// Headers are gone: all that is left is to cut the download short,
		// which the client sees as an incomplete file.
		s.log.Error("export download interrupted", "export", e.ID, "err", err)
	}
	return nil
}
