package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleMeAPIKeys lists the caller's API keys (never the keys themselves).
func (s *Server) handleMeAPIKeys(c echo.Context) error {
	keys, err := s.auth.ListAPIKeys(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	out := make([]apiKeyJSON, len(keys))
	for i, k := range keys {
		out[i] = toAPIKeyJSON(k)
	}
	return c.JSON(http.StatusOK, map[string]any{"api_keys": out})
}

type apiKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// handleMeAPIKeyCreate makes a key and returns it this once.
func (s *Server) handleMeAPIKeyCreate(c echo.Context) error {
	var req apiKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	k, token, err := s.auth.CreateAPIKey(c.Request().Context(), currentUser(c), req.Name, req.Scopes)
	if err != nil {
		return err
	}
	out := toAPIKeyJSON(k)
	out.Key = token
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, out)
}

// handleMeAPIKeyDelete revokes one of the caller's keys.
func (s *Server) handleMeAPIKeyDelete(c echo.Context) error {
	if err := s.auth.RevokeAPIKey(c.Request().Context(), currentUser(c).User.ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
