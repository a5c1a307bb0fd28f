// Package ui holds the web interface: HTML templates and static files,
// compiled into the binary. It depends on nothing else of ours.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed templates static
var files embed.FS

// Templates holds the HTML templates (*.html).
var Templates = mustSub("templates")

// Static holds the files served under /static/.
var Static = mustSub("static")

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
