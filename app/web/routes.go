package web

import "github.com/labstack/echo/v4/middleware"

// routes is the one table of every route, grouped by audience; each group
// carries its middleware.
func (s *Server) routes() {
	e := s.e
	e.Pre(middleware.RemoveTrailingSlash())
	e.Use(requestID(), s.observe, middleware.Recover(), s.securityHeaders, s.bodyLimit(s.opts.MaxBodyBytes))

	// Ops.
	e.GET("/healthz", s.handleHealthz)
	e.GET("/readyz", s.handleReadyz)
	e.GET("/metrics", s.handleMetrics())

	// Public pages and files.
	e.GET("/", s.handleHome)
	e.GET("/static/*", s.handleStatic)
}
