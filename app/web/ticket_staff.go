package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// supportQueue lists tickets for staff: ?status=open|answered|closed,
// default open and answered, the longest waiting first.
func (s *Server) supportQueue(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	list, err := s.support.Queue(c.Request().Context(), c.QueryParam("status"), limit)
	if err != nil {
		return err
	}
	out := make([]ticketJSON, 0, len(list))
	for i := range list {
		out = append(out, toTicketJSON(&list[i], true))
	}
	return c.JSON(http.StatusOK, map[string]any{"tickets": out})
}

// supportShowTicket shows any ticket to staff; the read is audited.
func (s *Server) supportShowTicket(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	t, err := s.support.StaffGet(c.Request().Context(), currentUser(c).User.ID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTicketJSON(t, true))
}

// supportReply answers a ticket as staff.
func (s *Server) supportReply(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	var req ticketMessageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	m, err := s.support.StaffReply(c.Request().Context(), currentUser(c).User, c.Param("id"), req.Body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toTicketMessageJSON(m, true))
}

// supportClose closes a ticket.
func (s *Server) supportClose(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	if err := s.support.Close(c.Request().Context(), currentUser(c).User.ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
