package backendfake

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"zimage/app/provenance/provenancetest"
)

// A1111's API writes the infotext into every image it returns
// (processing.py puts it in image.info, encode_pil_to_base64 writes it):
// a "parameters" text chunk in PNG, EXIF UserComment in JPEG and WebP.
// exiftool reads it back as it would from the real server's files.
func TestA1111ImagesCarryParameters(t *testing.T) {
	const infotext = "a fox in snow\nNegative prompt: blurry\nSteps: 2, Sampler: Euler, Schedule type: Automatic, CFG scale: 1, Seed: 77, Size: 64x32"
	tests := []struct {
		format, tag, fileType string
	}{
		{"", "PNG:Parameters", "PNG"},
		{"jpg", "ExifIFD:UserComment", "JPEG"},
		{"webp", "ExifIFD:UserComment", "Extended WEBP"},
	}
	for _, tt := range tests {
		t.Run("samples_format "+tt.format, func(t *testing.T) {
			f := NewA1111(t, A1111Config{SamplesFormat: tt.format})
			body := `{"prompt":"a fox in snow","negative_prompt":"blurry","seed":77,"steps":2,"cfg_scale":1,"width":64,"height":32,"sampler_name":"Euler"}`
			resp, err := http.Post(f.URL+"/sdapi/v1/txt2img", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct{ Images []string }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Images) != 1 {
				t.Fatalf("txt2img: %v, %d images", err, len(out.Images))
			}
			data, _ := base64.StdEncoding.DecodeString(out.Images[0])
			tags := provenancetest.Exiftool(t, data)
			if got, _ := tags[tt.tag].(string); !strings.HasPrefix(got, infotext) || tags["File:FileType"] != tt.fileType {
				t.Errorf("exiftool %s = %q (file type %v), want the infotext %q in a %s", tt.tag, got, tags["File:FileType"], infotext, tt.fileType)
			}
		})
	}
}
