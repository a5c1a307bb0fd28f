package web

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// handleAdminAudit pages through the audit log: ?after=SEQ, ?subject=ID,
// ?limit= (default 100, at most 1000).
func (s *Server) handleAdminAudit(c echo.Context) error {
	after, _ := strconv.ParseInt(c.QueryParam("after"), 10, 64)
	limit, _ := strconv.Atoi(c.QueryParam("limit"))
	entries, err := s.auth.Audit(c.Request().Context(), after, c.QueryParam("subject"), limit)
	if err != nil {
		return err
	}
	out := make([]auditJSON, len(entries))
	for i, e := range entries {
		out[i] = auditJSON{Seq: e.Seq, At: e.At, ActorID: e.ActorID, SubjectID: e.SubjectID, Action: e.Action, Detail: json.RawMessage(e.Detail)}
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": out})
}
