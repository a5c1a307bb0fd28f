package web

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app/queue"
)

// streamEvents sends the signed-in person's generation events as
// Server-Sent Events until they disconnect. Only their own jobs: the hub is
// keyed by user id.
func (s *Server) streamEvents(c echo.Context) error {
	u := currentUser(c).User
	events, cancel := s.queue.Subscribe(u.ID)
	defer cancel()
	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	w.Flush()
	ping := time.NewTicker(25 * time.Second)
	defer ping.Stop()
	ctx := c.Request().Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ping.C:
			// A comment line keeps proxies from closing an idle stream.
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case e, ok := <-events:
			if !ok {
				return nil
			}
			data, _ := json.Marshal(toEventJSON(e))
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}

func toEventJSON(e queue.Event) eventJSON {
	j := eventJSON{Type: e.Type, GenerationID: e.GenerationID, Position: e.Position, Step: e.Step, Steps: e.Steps,
		ImageIDs: e.ImageIDs, Reason: e.Reason, Message: e.Message}
	if len(e.Preview) > 0 && e.PreviewType != "" {
		j.Preview = "data:" + e.PreviewType + ";base64," + base64.StdEncoding.EncodeToString(e.Preview)
	}
	return j
}
