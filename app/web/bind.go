package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"zimage/app"
)

// decodeJSON reads one JSON object into v, refusing unknown fields, trailing
// data and wrong content types, with messages that point at the problem.
func decodeJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if mt, _, _ := mime.ParseMediaType(ct); mt != echo.MIMEApplicationJSON {
		return app.Errorf(app.EINVALID, "Send the request body as JSON with the header Content-Type: application/json (got %q).", ct)
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, errBodyTooLarge), errors.Is(err, errBodyTooSlow):
		return err
	case errors.Is(err, io.EOF):
		return app.Errorf(app.EINVALID, "The request body is empty; send a JSON object.")
	case errors.As(err, &syn):
		return app.Errorf(app.EINVALID, "The request body is not valid JSON (error at byte %d). Check quotes, commas and braces.", syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		// The body itself is a list, string or number, not an object.
		return app.Errorf(app.EINVALID, "The request body is a JSON %s; send a JSON object ({…}) with the fields in the API documentation.", typ.Value)
	case errors.As(err, &typ):
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("%s must be %s.", typ.Field, jsonTypeName(typ.Type.Kind().String())), Fields: map[string]string{typ.Field: "must be " + jsonTypeName(typ.Type.Kind().String())}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if field == "" {
			// {"": …} has no name to point at.
			return app.Errorf(app.EINVALID, "The request body has a field with an empty name; check the field names in the API documentation.")
		}
		return &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("Unknown field %q; check the field names in the API documentation.", field), Fields: map[string]string{field: "unknown field"}}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return app.Errorf(app.EINVALID, "The request body ends in the middle of the JSON; send the whole object.")
	default:
		return app.Errorf(app.EINVALID, "The request body could not be read as one JSON object: %s.", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return "a " + kind
}

func itoa(n int) string { return strconv.Itoa(n) }

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
