package app

import (
	"strconv"
	"strings"
)

// ParseSize reads an image size written "WIDTHxHEIGHT" ("1024x768"), the
// form the generate page's size menu and OpenAI's size field use. It only
// reads the numbers: GenerationParams.Validate checks them against the
// limits. A size that does not parse is an EINVALID error on field.
//
// Only plain digits are read: strconv.Atoi alone would also take "+64" and
// "064", so one size would have several spellings and a size chosen in the
// menu would not come back selected when the form is shown again.
func ParseSize(field, s string) (width, height int, err error) {
	w, h, ok := strings.Cut(s, "x")
	var e1, e2 error
	width, e1 = sizeNumber(w)
	height, e2 = sizeNumber(h)
	if !ok || e1 != nil || e2 != nil {
		return 0, 0, &Error{Code: EINVALID, Message: `The size must look like "1024x1024" (width x height in pixels).`,
			Fields: map[string]string{field: `Write the size as WIDTHxHEIGHT, for example "1024x1024".`}}
	}
	return width, height, nil
}

// FormatSize writes a size the way ParseSize reads it.
func FormatSize(width, height int) string {
	return strconv.Itoa(width) + "x" + strconv.Itoa(height)
}

func sizeNumber(s string) (int, error) {
	if s == "" || len(s) > 9 || (s[0] == '0' && len(s) > 1) || strings.Trim(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(s)
}
