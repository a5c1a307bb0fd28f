// Package embed holds files compiled into the binary that are not UI: the
// default ComfyUI workflow, the privacy-policy template and mail templates.
// Import it under an alias; it shares its name with the standard package.
package embed

import "embed"

// FS holds every file under this folder.
//
//go:embed comfyui policy mail
var FS embed.FS
