package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/auth"
)

// handleAdminUsers lists accounts, without personal data, in pages of
// ?limit= (default 100) after the id ?after=.
func (s *Server) handleAdminUsers(c echo.Context) error {
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	users, err := s.auth.ListUsers(c.Request().Context(), c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	out := make([]userJSON, len(users))
	for i, u := range users {
		out[i] = toUserJSON(u)
	}
	return c.JSON(http.StatusOK, map[string]any{"users": out})
}

type adminCreateUserRequest struct {
	Email        string `json:"email"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	Role         string `json:"role"`
	AgeConfirmed bool   `json:"age_confirmed"`
}

type adminCreateUserResponse struct {
	User userJSON `json:"user"`
	// Password is set when the admin sent none: a generated one, shown once.
	Password string `json:"password,omitempty"`
}

// handleAdminUserCreate creates an account whatever the sign-up mode.
func (s *Server) handleAdminUserCreate(c echo.Context) error {
	var req adminCreateUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	generated := ""
	if req.Password == "" {
		generated = auth.GeneratePassword()
		req.Password = generated
	}
	u, err := s.auth.SignUp(c.Request().Context(), auth.SignUpInput{Email: req.Email, Username: req.Username, Password: req.Password,
		AgeConfirmed: req.AgeConfirmed, ByAdmin: true, ActorID: currentUser(c).User.ID, Role: req.Role})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, adminCreateUserResponse{User: toUserJSON(u), Password: generated})
}

type adminUpdateUserRequest struct {
	Role     *string `json:"role"`
	Disabled *bool   `json:"disabled"`
}

// handleAdminUserUpdate changes a user's role or disables them; either
// signs them out everywhere.
func (s *Server) handleAdminUserUpdate(c echo.Context) error {
	var req adminUpdateUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx, actor, id := c.Request().Context(), currentUser(c).User.ID, c.Param("id")
	if req.Role == nil && req.Disabled == nil {
		return app.Errorf(app.EINVALID, "Send role and/or disabled to change.")
	}
	if _, err := s.auth.User(ctx, id); err != nil {
		return err
	}
	if req.Role != nil {
		if err := s.auth.SetRole(ctx, actor, id, *req.Role); err != nil {
			return err
		}
	}
	if req.Disabled != nil {
		if err := s.auth.SetDisabled(ctx, actor, id, *req.Disabled); err != nil {
			return err
		}
	}
	u, err := s.auth.User(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserJSON(u))
}
