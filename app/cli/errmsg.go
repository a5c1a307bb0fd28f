package cli

import (
	"errors"

	"zimage/app"
)

// errMessage is the one-line text of err for a person at a terminal.
func errMessage(err error) string {
	var ae *app.Error
	if errors.As(err, &ae) && ae.Code != app.EINTERNAL {
		return ae.Message
	}
	return err.Error()
}
