package web

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

var errBodyTooSlow = errors.New("request body too slow")

// bodyDeadline bounds how long a request body may take to arrive: BodyTimeout,
// plus one second for every BodyMinRate bytes received, so a large upload on a
// slow line keeps going while a client trickling a byte now and then (holding
// a connection and a goroutine for free) is cut off. The deadline is the
// connection's read deadline, set through http.ResponseController: a read
// past it fails, the handler answers 408 and the connection is closed.
//
// Only requests with a body get a deadline, and it is lifted once the body
// has been read, so long responses (the event stream, large downloads) are
// not limited: after the body, the server reads the connection only to
// notice the client leaving, and a deadline there would end the response.
func (s *Server) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	if s.opts.BodyTimeout <= 0 {
		return next
	}
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			return next(c)
		}
		rc := http.NewResponseController(c.Response())
		start := time.Now()
		if err := rc.SetReadDeadline(start.Add(s.opts.BodyTimeout)); err != nil {
			return next(c) // a writer without deadlines (a test recorder)
		}
		body := &deadlineBody{r: r.Body, rc: rc, start: start, base: s.opts.BodyTimeout, rate: s.opts.BodyMinRate}
		r.Body = body
		err := next(c)
		if body.timedOut && !c.Response().Committed {
			// Whatever the handler made of a cut-off body (a form parser
			// swallows read errors), the answer is the 408; and the
			// canceled context must not pass for a client hang-up.
			return errBodyTooSlow
		}
		return err
	}
}

type deadlineBody struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	base  time.Duration
	rate  int64 // bytes per second that earn one more second; 0: none
	n     int64
	done  bool
	// timedOut is set when a read hit the deadline.
	timedOut bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut = true
		return n, errBodyTooSlow
	case err != nil:
		if !b.done {
			b.done = true
			b.rc.SetReadDeadline(time.Time{})
		}
	case n > 0 && b.rate > 0:
		earned := time.Duration(float64(b.n) / float64(b.rate) * float64(time.Second))
		b.rc.SetReadDeadline(b.start.Add(b.base + earned))
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.r.Close() }
