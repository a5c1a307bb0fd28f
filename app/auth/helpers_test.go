package auth

import (
	"errors"
	"testing"

	"zimage/app"
)

// fieldReason returns the message err gives for field, failing the test
// unless err is an EINVALID *app.Error naming that field and nothing else.
func fieldReason(t *testing.T, err error, field string) string {
	t.Helper()
	var e *app.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *app.Error", err, err)
	}
	if e.Code != app.EINVALID {
		t.Fatalf("code = %q, want %q", e.Code, app.EINVALID)
	}
	if len(e.Fields) != 1 || e.Fields[field] == "" {
		t.Fatalf("fields = %v, want one message for %q", e.Fields, field)
	}
	if e.Message != e.Fields[field] {
		t.Errorf("message = %q, want the field's message %q", e.Message, e.Fields[field])
	}
	return e.Fields[field]
}
