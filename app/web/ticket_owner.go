package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// listTickets lists the caller's own support tickets.
func (s *Server) listTickets(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	list, err := s.support.List(c.Request().Context(), currentUser(c).User.ID)
	if err != nil {
		return err
	}
	out := make([]ticketJSON, 0, len(list))
	for i := range list {
		out = append(out, toTicketJSON(&list[i], false))
	}
	return c.JSON(http.StatusOK, map[string]any{"tickets": out})
}

// createTicket opens a ticket with its first message.
func (s *Server) createTicket(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	var req ticketRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	t, err := s.support.Open(c.Request().Context(), currentUser(c).User.ID, req.Subject, req.Body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toTicketJSON(t, false))
}

// showTicket shows one of the caller's tickets with its messages; another
// person's id answers 404.
func (s *Server) showTicket(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	t, err := s.support.Get(c.Request().Context(), currentUser(c).User.ID, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTicketJSON(t, false))
}

// replyTicket adds the caller's message to their own ticket.
func (s *Server) replyTicket(c echo.Context) error {
	if s.support == nil {
		return unavailable("Support")
	}
	var req ticketMessageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	m, err := s.support.Reply(c.Request().Context(), currentUser(c).User.ID, c.Param("id"), req.Body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toTicketMessageJSON(m, false))
}
