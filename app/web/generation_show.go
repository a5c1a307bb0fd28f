package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

func (s *Server) showGeneration(c echo.Context) error {
	u := currentUser(c).User
	ctx := c.Request().Context()
	g, err := s.queue.Get(ctx, u.ID, c.Param("id"))
	if err != nil {
		return err
	}
	ids, err := s.db.ImageIDsForGeneration(ctx, u.ID, g.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toGenerationJSON(g, s.queue.Position(u.ID, g.ID), ids))
}

// listGenerations pages newest first: ?before=<id>&limit=N (max 100).
func (s *Server) listGenerations(c echo.Context) error {
	u := currentUser(c).User
	limit, err := queryLimit(c, 50, 100)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	gens, err := s.queue.List(ctx, u.ID, c.QueryParam("before"), limit)
	if err != nil {
		return err
	}
	images, err := s.db.ImageIDsForGenerations(ctx, u.ID, generationIDs(gens))
	if err != nil {
		return err
	}
	out := make([]generationJSON, 0, len(gens))
	for _, g := range gens {
		out = append(out, toGenerationJSON(g, s.queue.Position(u.ID, g.ID), images[g.ID]))
	}
	next := ""
	if len(gens) == limit {
		next = gens[len(gens)-1].ID
	}
	return c.JSON(http.StatusOK, map[string]any{"generations": out, "next_before": next})
}

func generationIDs(gens []app.Generation) []string {
	ids := make([]string, len(gens))
	for i, g := range gens {
		ids[i] = g.ID
	}
	return ids
}

func (s *Server) cancelGeneration(c echo.Context) error {
	u := currentUser(c).User
	g, err := s.queue.Cancel(c.Request().Context(), u.ID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toGenerationJSON(g, 0, nil))
}

// queryLimit reads ?limit=, refusing what is not a number in range.
func queryLimit(c echo.Context, def, max int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, &app.Error{Code: app.EINVALID, Message: "limit must be a whole number from 1 to " + strconv.Itoa(max) + ".", Fields: map[string]string{"limit": "must be 1–" + strconv.Itoa(max)}}
	}
	return n, nil
}
