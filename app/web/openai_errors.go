package web

import (
	"net/http"
	"sort"
	"strings"

	"zimage/app"
)

// isOpenAI tells the routes of the OpenAI-compatible API, whose clients
// (the official SDKs, Open WebUI) read errors only in OpenAI's shape.
func isOpenAI(path string) bool { return path == "/v1" || strings.HasPrefix(path, "/v1/") }

// openAIErrorBody is OpenAI's error shape: {"error":{"message","type",
// "param","code"}}, param and code null when there is nothing to say.
type openAIErrorBody struct {
	Error openAIErrorDetail `json:"error"`
}

type openAIErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// openAIParams names, for a field of Z Image's own validation, the
// request parameter an OpenAI client sent it as.
var openAIParams = map[string]string{"count": "n", "width": "size", "height": "size", "steps": "quality"}

// toOpenAIError maps a domain error, already given its native status, to
// the status and body OpenAI would answer. It is the /v1 half of
// handleError, so every error there — auth, body limits, malformed JSON,
// rate limits, the handlers' own — comes in the one shape.
func toOpenAIError(ae *app.Error, status int, message string) (int, openAIErrorBody) {
	var param *string
	if len(ae.Fields) > 0 {
		keys := make([]string, 0, len(ae.Fields))
		for k := range ae.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p := keys[0]
		if q, ok := openAIParams[p]; ok {
			p = q
		}
		param = &p
	}
	typ, code := "invalid_request_error", ""
	switch {
	case ae.Code == app.EUNAUTHORIZED:
		code = "invalid_api_key"
	case ae.Code == app.EFORBIDDEN:
		code = "insufficient_permissions"
	case ae.Code == app.ENOTFOUND && param != nil && *param == "model":
		code = "model_not_found"
	case ae.Code == app.ENOTFOUND:
		code = "not_found"
	case ae.Code == app.ETOOLARGE:
		code = "request_too_large"
	case ae.Code == app.ERATELIMITED, ae.Code == app.ECONFLICT && status == http.StatusConflict:
		// A full personal queue is, to an OpenAI client, a rate limit:
		// it backs off and retries, which is what it should do.
		typ, code, status = "requests", "rate_limit_exceeded", http.StatusTooManyRequests
	case ae.Code == app.EUNAVAILABLE:
		typ, code = "server_error", "service_unavailable"
	case status >= 500:
		typ, code = "server_error", "server_error"
	case status == http.StatusMethodNotAllowed, status == http.StatusRequestTimeout:
	case ae.Code == app.EINVALID && param != nil:
		code = "invalid_value"
	}
	d := openAIErrorDetail{Message: message, Type: typ, Param: param}
	if code != "" {
		d.Code = &code
	}
	return status, openAIErrorBody{Error: d}
}
