package backend

import (
	"fmt"
	"strings"

	"zimage/app"
)

// Kinds lists the backend kinds New accepts, in the order docs show them.
var Kinds = []string{KindComfyUI, KindA1111, KindOpenAI, KindBuiltin}

// New returns the adapter for o.Kind.
func New(o Options) (Backend, error) {
	switch o.Kind {
	case KindComfyUI:
		return NewComfyUI(o)
	case KindA1111:
		return NewA1111(o)
	case KindOpenAI:
		return NewOpenAI(o)
	case KindBuiltin:
		return NewBuiltin(o)
	}
	msg := fmt.Sprintf("Backend %q has kind %q, which is not one Z Image speaks. Set kind to one of: %s.", o.Name, o.Kind, strings.Join(Kinds, ", "))
	return nil, &app.Error{Code: app.EINVALID, Message: msg, Fields: map[string]string{"kind": msg}}
}
