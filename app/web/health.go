package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

// handleHealthz answers while the process serves requests at all.
func (s *Server) handleHealthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "version": s.opts.Version})
}

// handleReadyz answers 200 only when the database is writable and its
// schema current: a load balancer should not send traffic before that.
func (s *Server) handleReadyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		return &app.Error{Code: app.EUNAVAILABLE, Message: "The database is not writable or its schema is not current; see the server log and run zimage doctor.", Err: err}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleHome(c echo.Context) error {
	if signedIn(c) {
		return c.Redirect(http.StatusSeeOther, "/generate")
	}
	return s.render(c, http.StatusOK, "home", s.newPage(c, "home", map[string]string{"ImagesRetention": s.opts.ImagesRetention}))
}
