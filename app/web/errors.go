package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

// statusOf maps a domain error code to its HTTP status. It is the only place
// that does.
var statusOf = map[string]int{
	app.EINVALID:      http.StatusBadRequest,
	app.EUNAUTHORIZED: http.StatusUnauthorized,
	app.EFORBIDDEN:    http.StatusForbidden,
	app.ENOTFOUND:     http.StatusNotFound,
	app.ECONFLICT:     http.StatusConflict,
	app.EGONE:         http.StatusGone,
	app.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	app.ERATELIMITED:  http.StatusTooManyRequests,
	app.EUNAVAILABLE:  http.StatusServiceUnavailable,
	app.EINTERNAL:     http.StatusInternalServerError,
}

// fromEcho turns Echo's own errors (no route, wrong method, …) into domain
// errors, so clients see one error shape whatever produced it.
func fromEcho(he *echo.HTTPError, r *http.Request) *app.Error {
	switch he.Code {
	case http.StatusNotFound:
		if isAPI(r.URL.Path) {
			return app.Errorf(app.ENOTFOUND, "There is nothing at %s. Check the address; the API is documented in the README and docs/.", r.URL.Path)
		}
		return app.Errorf(app.ENOTFOUND, "There is no page at %s. Check the address, or use the links below.", r.URL.Path)
	case http.StatusMethodNotAllowed:
		return app.Errorf(app.EINVALID, "%s is not allowed on %s.", r.Method, r.URL.Path)
	case http.StatusRequestEntityTooLarge:
		return app.Errorf(app.ETOOLARGE, "The request body is too large.")
	case http.StatusUnauthorized:
		return app.Errorf(app.EUNAUTHORIZED, "Sign in first.")
	case http.StatusForbidden:
		return app.Errorf(app.EFORBIDDEN, "You are not allowed to do that.")
	case http.StatusTooManyRequests:
		return app.Errorf(app.ERATELIMITED, "Too many requests; wait a moment and try again.")
	case http.StatusServiceUnavailable:
		return app.Errorf(app.EUNAVAILABLE, "The service is not ready; try again shortly.")
	}
	if he.Code >= 400 && he.Code < 500 {
		return app.Errorf(app.EINVALID, "%v", he.Message)
	}
	return app.Wrap(he, "echo error %d", he.Code)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string            `json:"code"`
	Message   string            `json:"message"`
	Fields    map[string]string `json:"fields,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

// isAPI tells which error shape a path gets: JSON for programs, a page for
// people.
func isAPI(path string) bool {
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/v1/") ||
		path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// handleError is Echo's HTTPErrorHandler.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *app.Error
	var he *echo.HTTPError
	status := 0
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		ae = fromEcho(he, c.Request())
		if he.Code == http.StatusMethodNotAllowed {
			status = he.Code // no domain code says this as precisely
		}
	case errors.Is(err, errBodyTooLarge):
		ae = app.Errorf(app.ETOOLARGE, "The request body is larger than the %s this server accepts. Send less data at once.", humanBytes(s.opts.MaxBodyBytes))
	case errors.Is(err, errBodyTooSlow):
		// 408 says the client may retry; the connection cannot be reused,
		// since the rest of the body is still on its way.
		ae, status = app.Errorf(app.EINVALID, "The request body arrived too slowly and the server stopped waiting. Check the connection and send the request again."), http.StatusRequestTimeout
		c.Response().Header().Set("Connection", "close")
	default:
		ae = app.Wrap(err, "unexpected")
	}
	if status == 0 {
		status = statusOf[ae.Code]
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	reqID := c.Response().Header().Get(echo.HeaderXRequestID)
	switch {
	case ae.Code == app.EUNAVAILABLE && ae.RetryAfterSeconds > 0:
		// Not ready yet, and the client is told when to ask again: a
		// normal moment of the job's life, not a fault to page anyone for.
		s.log.Debug("request answered: not ready yet", "request_id", reqID, "route", c.Path(), "retry_after_s", ae.RetryAfterSeconds, "err", err)
	case status >= 500:
		s.log.Error("request failed", "request_id", reqID, "route", c.Path(), "err", err)
	}
	if (ae.Code == app.ERATELIMITED || ae.Code == app.EUNAVAILABLE) && ae.RetryAfterSeconds > 0 {
		c.Response().Header().Set("Retry-After", itoa(ae.RetryAfterSeconds))
	}
	body := errorBody{Error: errorDetail{Code: ae.Code, Message: app.ErrorMessage(ae), Fields: ae.Fields, RequestID: reqID}}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else if isOpenAI(c.Request().URL.Path) {
		err = c.JSON(toOpenAIError(ae, status, body.Error.Message))
	} else if isAPI(c.Request().URL.Path) {
		err = c.JSON(status, body)
	} else {
		err = s.renderError(c, status, body.Error)
	}
	if err != nil {
		s.log.Error("writing error response", "request_id", reqID, "err", err)
	}
}
