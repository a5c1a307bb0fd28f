package media

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // backends may return JPEG (openai-compatible servers)
	_ "image/png"
	"strconv"
	"strings"

	"github.com/chai2010/webp" // also registers the WebP decoder
)

// Encoding choices. WebPQuality is visually lossless for generated
// pictures at a fraction of the PNG's size. A 256 px thumbnail at quality
// 70 is 4–5 KB for typical generated pictures, plus about 0.5 KB of
// AI-generated marks and 1.8 KB of signed Content Credentials (both
// counted in the cap); ThumbMaxBytes caps it so a
// gallery page of 100 stays under 1 MB with HTTP headers, whatever the
// picture: a very detailed one (pure noise is ~17 KB at q70) is encoded
// again at the next lower quality until it fits.
const (
	WebPQuality   = 90
	ThumbSide     = 256
	ThumbMaxBytes = 9500
)

var thumbQualities = []float32{70, 50, 30, 15}

// Limits on what is accepted from a backend: WebP cannot encode a side
// over 16383, and the pixel cap bounds the memory of one decode (RGBA,
// 4 bytes a pixel) against a hostile or broken server.
const (
	maxSide   = 16383
	maxPixels = 64 << 20
)

// sniff reads the image header: dimensions and MIME type, without a full
// decode.
func sniff(data []byte) (w, h int, contentType string, err error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, "", fmt.Errorf("not a PNG, JPEG or WebP image: %w", err)
	}
	switch format {
	case "png":
		contentType = "image/png"
	case "jpeg":
		contentType = "image/jpeg"
	case "webp":
		contentType = "image/webp"
	default:
		return 0, 0, "", fmt.Errorf("unsupported image format %q", format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > maxSide || cfg.Height > maxSide || cfg.Width*cfg.Height > maxPixels {
		return 0, 0, "", fmt.Errorf("image is %d×%d, outside what can be stored (at most %d px a side and %d Mpx)", cfg.Width, cfg.Height, maxSide, maxPixels>>20)
	}
	return cfg.Width, cfg.Height, contentType, nil
}

// decode decodes an original into premultiplied RGBA.
func decode(data []byte) (*image.RGBA, error) {
	if _, _, _, err := sniff(data); err != nil {
		return nil, err
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if m, ok := src.(*image.RGBA); ok && m.Rect.Min == (image.Point{}) {
		return m, nil
	}
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Rect, src, b.Min, draw.Src)
	return dst, nil
}

// encodeWebP encodes m lossy at quality. Opaque pictures (nearly all
// generated ones) go as RGB, which spares libwebp an alpha plane; others
// are handed over un-premultiplied, as libwebp expects.
func encodeWebP(m *image.RGBA, quality float32) ([]byte, error) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	if m.Opaque() {
		rgb := webp.NewRGBImage(image.Rect(0, 0, w, h))
		for y := range h {
			src := m.Pix[y*m.Stride : y*m.Stride+4*w]
			dst := rgb.XPix[y*rgb.XStride : y*rgb.XStride+3*w]
			for x := range w {
				dst[3*x], dst[3*x+1], dst[3*x+2] = src[4*x], src[4*x+1], src[4*x+2]
			}
		}
		return webp.EncodeRGB(rgb, quality)
	}
	n := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(n, n.Rect, m, m.Rect.Min, draw.Src)
	return webp.EncodeRGBA(&image.RGBA{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect}, quality)
}

// thumbSize scales w×h so its longest side is at most side.
func thumbSize(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, (h*side+w/2)/w)
	}
	return max(1, (w*side+h/2)/h), side
}

// downscale averages each destination pixel's box of source pixels. For
// shrinking by 4× or so (1024 → 256) a box filter is as good as anything
// fancier and costs one pass over the source.
func downscale(src *image.RGBA, dw, dh int) *image.RGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	x0s := make([]int, dw+1)
	for x := range x0s {
		x0s[x] = x * sw / dw
	}
	sum := make([]uint32, 4*dw)
	for y := range dh {
		y0, y1 := y*sh/dh, (y+1)*sh/dh
		if y1 == y0 {
			y1 = y0 + 1
		}
		clear(sum)
		for sy := y0; sy < y1; sy++ {
			row := src.Pix[sy*src.Stride:]
			for x := range dw {
				a, b := x0s[x], x0s[x+1]
				if b == a {
					b = a + 1
				}
				var r, g, bl, al uint32
				for sx := a; sx < b; sx++ {
					p := row[4*sx : 4*sx+4 : 4*sx+4]
					r += uint32(p[0])
					g += uint32(p[1])
					bl += uint32(p[2])
					al += uint32(p[3])
				}
				s := sum[4*x : 4*x+4 : 4*x+4]
				s[0] += r
				s[1] += g
				s[2] += bl
				s[3] += al
			}
		}
		out := dst.Pix[y*dst.Stride:]
		for x := range dw {
			a, b := x0s[x], x0s[x+1]
			if b == a {
				b = a + 1
			}
			n := uint32((b - a) * (y1 - y0))
			for c := range 4 {
				out[4*x+c] = uint8((sum[4*x+c] + n/2) / n)
			}
		}
	}
	return dst
}

// thumbnail makes the gallery thumbnail of m. finish (nil for none) adds
// the marks to each try, so the cap holds for the file as served.
func thumbnail(m *image.RGBA, finish func([]byte) ([]byte, error)) ([]byte, error) {
	w, h := thumbSize(m.Rect.Dx(), m.Rect.Dy(), ThumbSide)
	small := m
	if w != m.Rect.Dx() || h != m.Rect.Dy() {
		small = downscale(m, w, h)
	}
	var data []byte
	var err error
	for _, q := range thumbQualities {
		if data, err = encodeWebP(small, q); err != nil {
			break
		}
		if finish != nil {
			if data, err = finish(data); err != nil {
				break
			}
		}
		if len(data) <= ThumbMaxBytes {
			break
		}
	}
	return data, err
}

// parametersText writes the generation parameters the way AUTOMATIC1111
// does ("parameters" text chunk), which image viewers and other UIs
// already know how to read back.
func parametersText(g GenerationInfo, seed int64, w, h int, model string) string {
	var b strings.Builder
	b.WriteString(g.Prompt)
	if g.NegativePrompt != "" {
		b.WriteString("\nNegative prompt: ")
		b.WriteString(g.NegativePrompt)
	}
	b.WriteString("\n")
	fields := []struct{ k, v string }{
		{"Steps", strconv.Itoa(g.Steps)},
		{"CFG scale", strconv.FormatFloat(g.Guidance, 'g', -1, 64)},
		{"Seed", strconv.FormatInt(seed, 10)},
		{"Size", fmt.Sprintf("%dx%d", w, h)},
		{"Model", model},
		{"Backend", g.Backend},
		{"Generator", "Z Image"},
	}
	first := true
	for _, f := range fields {
		if f.v == "" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(f.k)
		b.WriteString(": ")
		// A1111 quotes values that would break its "k: v, k: v" syntax.
		if strings.ContainsAny(f.v, ",:\"\n") {
			b.WriteString(strconv.Quote(f.v))
		} else {
			b.WriteString(f.v)
		}
	}
	return b.String()
}
