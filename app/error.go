// Package app holds Z Image's domain vocabulary: the nouns every other
// package speaks, and one error type whose codes the HTTP layer maps to
// statuses in exactly one place.
package app

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Error codes. They are part of the API: clients see them in
// {"error":{"code":…}} and scripts may branch on them.
const (
	EINVALID      = "invalid"      // the request is malformed or a value is out of range
	EUNAUTHORIZED = "unauthorized" // no valid credentials
	EFORBIDDEN    = "forbidden"    // credentials are valid but not allowed to do this
	ENOTFOUND     = "not_found"    // no such thing, or not yours (never tell which)
	ECONFLICT     = "conflict"     // it already exists, or its state does not allow this
	EGONE         = "gone"         // it existed but has expired for good (an export past its window)
	ETOOLARGE     = "too_large"    // the body or a value is larger than allowed
	ERATELIMITED  = "rate_limited" // slow down; RetryAfter says for how long
	EUNAVAILABLE  = "unavailable"  // a dependency (model server, disk) is not ready
	EINTERNAL     = "internal"     // our fault; the cause is logged, never shown
)

// Error is the one error type that crosses package boundaries. Message is
// written for a person: what went wrong and what to do. Err is the cause,
// kept for logs only.
type Error struct {
	Code    string
	Message string
	// Fields holds one message per offending field for EINVALID errors,
	// keyed by the field's JSON name.
	Fields map[string]string
	// RetryAfterSeconds is set for ERATELIMITED, and for EUNAVAILABLE
	// when the thing asked for is merely not ready yet and will be on its
	// own within that time (a WebP copy still being made).
	RetryAfterSeconds int
	Err               error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	b.WriteString(": ")
	b.WriteString(e.Message)
	if len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "; %s: %s", k, e.Fields[k])
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an internal error that keeps err as its cause.
func Wrap(err error, format string, args ...any) *Error {
	return &Error{Code: EINTERNAL, Message: fmt.Sprintf(format, args...), Err: err}
}

// FieldErrors collects per-field validation messages; Err returns nil when
// nothing was added, so validators can be written as a list of checks.
type FieldErrors map[string]string

// Add records msg for field unless the field already has a message: the first
// problem with a field is the one worth telling.
func (f FieldErrors) Add(field, msg string) {
	if _, ok := f[field]; !ok {
		f[field] = msg
	}
}

// Err returns an EINVALID *Error listing the fields, or nil.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	msg := "Some fields need fixing: " + strings.Join(keys, ", ") + "."
	if len(keys) == 1 {
		msg = f[keys[0]]
	}
	return &Error{Code: EINVALID, Message: msg, Fields: map[string]string(f)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the person-facing message of err. Errors that are not
// *Error are internal: their text is never shown.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "Something went wrong on our side. It has been logged; please try again, and tell the administrator if it keeps happening."
}
