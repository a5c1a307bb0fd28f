package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits shared by the HTTP adapters.
const (
	// httpMaxBody bounds any answer we read into memory. A batch of large
	// base64 PNGs is tens of MiB; anything past this is a broken or hostile
	// server, not an image.
	httpMaxBody = 256 << 20
	// httpMaxImage bounds one image downloaded from a URL the server gave.
	httpMaxImage = 64 << 20
	// httpQuickTimeout bounds calls that must answer at once (health, model
	// lists, progress polls, interrupts), whatever the job's timeout is.
	httpQuickTimeout = 10 * time.Second
)

// httpErrJobTimeout is the cause set on a job context when Options.Timeout
// runs out, so it can be told apart from a cancel by the caller.
var httpErrJobTimeout = errors.New("job timeout")

// httpDefaultClient returns the client used when Options.HTTPClient is nil.
// It bounds connecting and the TLS handshake but not the whole request nor
// the wait for response headers: the synchronous image APIs (sdapi, OpenAI)
// send their headers only when the image is done, minutes later. Jobs are
// bounded by Options.Timeout through the context; quick calls by
// httpQuickTimeout.
func httpDefaultClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
		},
		// A model server has no business redirecting us elsewhere; following
		// a redirect could leak the bearer token to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// httpPeer identifies one configured server in errors written for people.
type httpPeer struct {
	Name string // the backend's configured name
	Kind string
	URL  string
}

// who names the backend the way every message starts.
func (p httpPeer) who() string {
	return fmt.Sprintf("The %s backend %q (%s)", p.Kind, p.Name, p.URL)
}

// errorf builds an *Error whose message starts with the backend's name.
func (p httpPeer) errorf(reason string, cause error, format string, args ...any) *Error {
	return &Error{Backend: p.Name, Reason: reason, Message: p.who() + " " + fmt.Sprintf(format, args...), Err: cause}
}

// httpPeerFromOptions validates o.URL and returns the peer and base URL.
func httpPeerFromOptions(o Options, kind string) (httpPeer, *url.URL, error) {
	name := o.Name
	if name == "" {
		name = kind
	}
	u, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return httpPeer{}, nil, &Error{Backend: name, Reason: ReasonRejected, Err: err,
			Message: fmt.Sprintf("Backend %q (%s) has url %q, which is not an http:// or https:// address. Set url in its [[backends]] table, e.g. http://127.0.0.1:7860.", name, kind, o.URL)}
	}
	return httpPeer{Name: name, Kind: kind, URL: u.String()}, u, nil
}

// httpJobContext applies Options.Timeout to one job.
func httpJobContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, timeout, httpErrJobTimeout)
}

// httpStopped returns the error for a job whose context ended: our own
// timeout (or the caller's deadline) is ReasonTimeout, anything else is a
// cancel. It returns nil while ctx is live.
func (p httpPeer) httpStopped(ctx context.Context, timeout time.Duration) *Error {
	if ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, httpErrJobTimeout) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		limit := "its deadline"
		if timeout > 0 {
			limit = timeout.String()
		}
		return p.errorf(ReasonTimeout, cause, "did not finish the image within %s. Try a smaller size or fewer steps, or raise timeout in its [[backends]] table.", limit)
	}
	return p.errorf(ReasonCanceled, cause, "stopped the job because it was canceled.")
}

// httpTransportError classifies an error from http.Client.Do or from reading
// a body into an *Error with the right Reason. ctx is the request's context,
// so a cancel or timeout is reported as such rather than as a broken
// connection.
func (p httpPeer) httpTransportError(ctx context.Context, timeout time.Duration, err error) *Error {
	if e := p.httpStopped(ctx, timeout); e != nil {
		return e
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return p.errorf(ReasonUnavailable, err, "refused the connection. Check that the server is running and listening at that address.")
	case errors.As(err, &dnsErr):
		return p.errorf(ReasonUnavailable, err, "could not be found: its host name does not resolve. Check the url in its [[backends]] table.")
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return p.errorf(ReasonUnavailable, err, "presented a TLS certificate we do not trust. Fix the server's certificate or use its plain http:// address on a private network.")
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return p.errorf(ReasonUnavailable, err, "closed the connection in the middle of the job; it may have crashed or restarted. Check its log; the job can be retried.")
	case errors.As(err, &netErr) && netErr.Timeout():
		return p.errorf(ReasonTimeout, err, "did not answer in time. Check that the server is running and not overloaded.")
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return p.errorf(ReasonUnavailable, err, "cannot be reached over the network. Check the url and that the machine is up.")
	}
	return p.errorf(ReasonUnavailable, err, "could not be reached. Check that the server is running and the url in its [[backends]] table is right.")
}

// httpReadBody reads at most limit bytes of r. A longer body is refused with
// ReasonBadResponse; a broken connection is classified like a failed request.
func (p httpPeer) httpReadBody(ctx context.Context, timeout time.Duration, r io.Reader, limit int64) ([]byte, *Error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, p.httpTransportError(ctx, timeout, err)
	}
	if int64(len(b)) > limit {
		return nil, p.errorf(ReasonBadResponse, nil, "sent an answer larger than %d MiB, which cannot be an image. Check that the url points at the model server itself.", limit>>20)
	}
	return b, nil
}

// httpDo sends one request and reads the whole answer (bounded). A transport
// failure is returned as *Error; any HTTP status is returned to the caller,
// which knows its server's error shapes.
func (p httpPeer) httpDo(ctx context.Context, timeout time.Duration, c *http.Client, req *http.Request, limit int64) (*http.Response, []byte, *Error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, p.httpTransportError(ctx, timeout, err)
	}
	defer resp.Body.Close()
	body, e := p.httpReadBody(ctx, timeout, resp.Body, limit)
	if e != nil {
		return resp, nil, e
	}
	return resp, body, nil
}

// httpServerError is what could be read out of an error answer. Model
// servers disagree on the shape, so one parser knows them all:
//
//	A1111/Forge  {"error":"OutOfMemoryError","detail":"","body":"","errors":"CUDA out of memory…"}
//	OpenAI       {"error":{"message":"…","type":"invalid_request_error","param":"size","code":null}}
//	LocalAI      {"error":{"code":500,"message":"…","type":""}}
//	sd-server    {"error":"prompt required"} or {"error":"server_error","message":"…"}
//	FastAPI      {"detail":"…"} or {"detail":[{"loc":["body","steps"],"msg":"…","type":"…"}]}
//	anything else: plain text, an HTML page, or nothing.
type httpServerError struct {
	Message string   // the most useful text, trimmed and bounded
	Type    string   // exception class, OpenAI type or code, when given
	Fields  []string // offending request fields, when given
}

func httpParseError(body []byte) httpServerError {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return httpServerError{Message: httpPlainText(body)}
	}
	var se httpServerError
	str := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
		return ""
	}
	if raw, ok := top["error"]; ok {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			se.Message = str(obj["message"])
			se.Type = str(obj["type"])
			if se.Type == "" {
				se.Type = str(obj["code"])
			} else if code := str(obj["code"]); code != "" {
				se.Type += " " + code
			}
			if param := str(obj["param"]); param != "" {
				se.Fields = []string{param}
			}
		} else {
			name := str(raw)
			parts := []string{}
			for _, k := range []string{"message", "detail", "errors"} {
				if s := str(top[k]); s != "" {
					parts = append(parts, s)
				}
			}
			if len(parts) == 0 {
				se.Message = name // sd-server: the text is the error itself
			} else {
				se.Type = name
				se.Message = strings.Join(parts, ": ")
			}
		}
	} else if raw, ok := top["detail"]; ok {
		var items []struct {
			Loc []any  `json:"loc"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal(raw, &items) == nil {
			var msgs []string
			for _, it := range items {
				var path []string
				for _, l := range it.Loc {
					if s := fmt.Sprint(l); s != "body" {
						path = append(path, s)
					}
				}
				field := strings.Join(path, ".")
				se.Fields = append(se.Fields, field)
				msgs = append(msgs, field+": "+it.Msg)
			}
			se.Message = strings.Join(msgs, "; ")
		} else {
			se.Message = str(raw)
		}
	} else if s := str(top["message"]); s != "" {
		se.Message = s // older vLLM: {"object":"error","message":…}
		se.Type = str(top["type"])
	}
	se.Message = httpPlainText([]byte(se.Message))
	return se
}

// httpPlainText turns an arbitrary body into one short line fit for a
// message: HTML pages say nothing useful, long traces are cut, and runs of
// base64 (an image the server began to send) are left out.
func httpPlainText(b []byte) string {
	s := strings.Join(strings.Fields(httpPrintable(b)), " ")
	if strings.HasPrefix(s, "<") {
		return ""
	}
	return httpCut(httpBase64Run.ReplaceAllString(s, "…"), 300)
}

// httpQuote quotes at most 80 printable characters of an answer Z Image
// could not read, for a message that says what came instead.
func httpQuote(b []byte) string {
	s := strings.Join(strings.Fields(httpPrintable(b)), " ")
	switch {
	case s == "":
		return "an empty answer"
	case strings.HasPrefix(s, "<"):
		return "an HTML page"
	}
	s = httpCut(httpBase64Run.ReplaceAllString(s, "…"), 80)
	return "“" + s + "”"
}

// httpBase64Run matches a stretch of base64 too long to be words.
var httpBase64Run = regexp.MustCompile(`[A-Za-z0-9+/=]{40,}`)

// httpPrintable drops what is not printable text (invalid UTF-8, control
// characters), keeping spaces so words stay apart.
func httpPrintable(b []byte) string {
	if len(b) > 4096 {
		b = b[:4096] // a message needs the start, not 256 MiB of it
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError:
			return -1
		case unicode.IsSpace(r):
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, string(b))
}

// httpCut shortens s to at most n characters (not bytes, so no character
// is split), marking the cut, and closes any parenthesis the cut left open
// so the message around it still reads.
func httpCut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	if open := strings.Count(s, "(") - strings.Count(s, ")"); open > 0 {
		s += strings.Repeat(")", open)
	}
	return s
}

// httpStatusError maps a non-2xx answer to an *Error. hint404 says what to
// do when the route itself is missing (the server does not speak this API).
func (p httpPeer) httpStatusError(status int, body []byte, hint404 string) *Error {
	se := httpParseError(body)
	text := strings.ToLower(se.Message + " " + se.Type)
	detail := se.Message
	if detail == "" {
		detail = http.StatusText(status)
	}
	cause := fmt.Errorf("HTTP %d: %s", status, detail)
	switch {
	case strings.Contains(text, "out of memory") || strings.Contains(text, "outofmemory"):
		return p.errorf(ReasonOutOfMemory, cause, "ran out of GPU memory (%s). Try a smaller size or fewer images at once.", detail)
	case strings.Contains(text, "returned no results") || strings.Contains(text, "returned empty results"):
		// stable-diffusion.cpp's only answer when generate_image gives up,
		// through its OpenAI and sdapi routes alike; running out of memory
		// is by far the usual cause.
		return p.errorf(ReasonOutOfMemory, cause, "could not make the image (%s); with stable-diffusion.cpp this almost always means it ran out of memory. Try a smaller size or fewer images at once, and check its log if it keeps happening.", detail)
	case httpLooksLikeMissingModel(status, text):
		return p.errorf(ReasonModelMissing, cause, "does not have the requested model (%s). Install it on the server, or choose one of the models it lists.", detail)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return p.errorf(ReasonRejected, cause, "refused our credentials (%s). Check api_key in its [[backends]] table.", detail)
	case status == http.StatusTooManyRequests:
		return p.errorf(ReasonBusy, cause, "is busy (%s). The job will be tried again later.", detail)
	case status == http.StatusNotFound && (se.Message == "" || strings.EqualFold(se.Message, "not found")):
		return p.errorf(ReasonUnavailable, cause, "does not serve this API (HTTP 404). %s", hint404)
	case status >= 400 && status < 500:
		what := detail
		if len(se.Fields) > 0 {
			what = "field " + strings.Join(se.Fields, ", ") + ": " + detail
		}
		return p.errorf(ReasonRejected, cause, "refused the request (%s). Change that setting and try again.", what)
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return p.errorf(ReasonUnavailable, cause, "is not ready (%s); it may still be loading its model. The job will be tried again.", detail)
	}
	return p.errorf(ReasonFailed, cause, "failed while making the image (%s). Check the server's log; trying again may help.", detail)
}

func httpLooksLikeMissingModel(status int, text string) bool {
	if strings.Contains(text, "model_not_found") || strings.Contains(text, "failed to load model") ||
		strings.Contains(text, "could not load model") || strings.Contains(text, "backend not found") {
		return true
	}
	if !strings.Contains(text, "model") && !strings.Contains(text, "checkpoint") {
		return false
	}
	return strings.Contains(text, "not found") || strings.Contains(text, "does not exist") || strings.Contains(text, "not installed") ||
		(status == http.StatusNotFound && strings.Contains(text, "model"))
}

// httpDecodeImage decodes one base64 image as the servers send it (plain, or
// as a data: URL) and checks that it is an image.
func (p httpPeer) httpDecodeImage(s string) ([]byte, string, *Error) {
	if strings.HasPrefix(s, "data:") {
		if i := strings.Index(s, ","); i >= 0 {
			s = s[i+1:]
		}
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		// Some servers drop the padding.
		var err2 error
		if data, err2 = base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(s), "=")); err2 != nil {
			return nil, "", p.errorf(ReasonBadResponse, err, "sent an image that is not valid base64. Check that the url points at a supported server and that it is up to date.")
		}
	}
	ctype, ok := httpImageType(data)
	if !ok {
		return nil, "", p.errorf(ReasonBadResponse, nil, "sent something that is not an image (%s). Check that the url points at a supported server and that it is up to date.", ctype)
	}
	return data, ctype, nil
}

// httpImageType sniffs the MIME type of image bytes.
func httpImageType(data []byte) (string, bool) {
	ctype := http.DetectContentType(data)
	return ctype, strings.HasPrefix(ctype, "image/")
}
