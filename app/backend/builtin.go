package backend

import (
	"bytes"
	"context"
	"hash/fnv"
	"image"
	"image/png"
	"math"
	"runtime"
	"sync"
	"time"
)

// BuiltinModel is the only "model" of the builtin backend. The name says
// plainly that no AI is involved, wherever it is shown.
const BuiltinModel = "builtin-procedural (no AI model)"

// Bounds of what the builtin renderer accepts, so a typo in a size cannot
// take the machine's memory.
const (
	builtinMaxSide   = 4096
	builtinMaxPixels = 64 << 20 // width × height × count
	builtinPreview   = 128      // longest side of preview images
)

// builtin draws deterministic abstract pictures on the CPU: flowing bands of
// a cosine palette over soft metaballs, all chosen by a hash of the prompt
// and the seed. It needs no GPU and no download, so it is the zero-setup
// default and the workhorse of tests and benchmarks. Each step adds one
// octave of detail, the way a sampler refines a picture.
type builtin struct {
	peer    httpPeer
	opts    Options
	perStep time.Duration
}

// NewBuiltin returns the builtin procedural renderer.
func NewBuiltin(o Options) (Backend, error) { return NewBuiltinWithDelay(o, 0) }

// NewBuiltinWithDelay is NewBuiltin with a pause after every step, so tests
// and benchmarks can stand in for a GPU that takes a known time per step.
func NewBuiltinWithDelay(o Options, perStep time.Duration) (Backend, error) {
	name := o.Name
	if name == "" {
		name = KindBuiltin
	}
	return &builtin{peer: httpPeer{Name: name, Kind: KindBuiltin, URL: "in-process, CPU"}, opts: o, perStep: perStep}, nil
}

func (b *builtin) Name() string                             { return b.peer.Name }
func (b *builtin) Kind() string                             { return KindBuiltin }
func (b *builtin) Health(context.Context) error             { return nil }
func (b *builtin) Models(context.Context) ([]string, error) { return []string{BuiltinModel}, nil }
func (b *builtin) stopped(ctx context.Context) *Error       { return b.peer.httpStopped(ctx, b.opts.Timeout) }
func (b *builtin) reject(format string, args ...any) *Error {
	return b.peer.errorf(ReasonRejected, nil, format, args...)
}
func (b *builtin) missing(model string) *Error {
	return b.peer.errorf(ReasonModelMissing, nil, "has no model %q: it draws procedural pictures without any AI model. Ask for %q, or send the job to a GPU backend.", model, BuiltinModel)
}

func (b *builtin) Generate(ctx context.Context, req Request, progress func(Progress)) (Result, error) {
	submitted := time.Now()
	if progress == nil {
		progress = func(Progress) {}
	}
	if req.Model != "" && req.Model != BuiltinModel {
		return Result{}, b.missing(req.Model)
	}
	w, h := req.Width, req.Height
	steps, count := max(req.Steps, 1), max(req.Count, 1)
	if w < 1 || h < 1 || w > builtinMaxSide || h > builtinMaxSide {
		return Result{}, b.reject("cannot draw %d×%d: each side must be between 1 and %d pixels. Choose another size.", w, h, builtinMaxSide)
	}
	if w*h*count > builtinMaxPixels {
		return Result{}, b.reject("cannot draw %d images of %d×%d at once: that is more than %d megapixels. Ask for fewer images or a smaller size.", count, w, h, builtinMaxPixels>>20)
	}
	ctx, cancel := httpJobContext(ctx, b.opts.Timeout)
	defer cancel()

	scenes := make([]*builtinScene, count)
	accs := make([][]float32, count)
	for i := range scenes {
		scenes[i] = newBuiltinScene(req.Prompt, req.Seed+int64(i), w, h, steps)
		accs[i] = make([]float32, w*h)
	}
	progress(Progress{Step: 0, Steps: steps})
	for k := range steps {
		if e := b.stopped(ctx); e != nil {
			return Result{}, e
		}
		for i, s := range scenes {
			s.addOctave(accs[i], k)
		}
		if b.perStep > 0 {
			t := time.NewTimer(b.perStep)
			select {
			case <-ctx.Done():
				t.Stop()
				return Result{}, b.stopped(ctx)
			case <-t.C:
			}
		}
		if k+1 < steps {
			progress(Progress{Step: k + 1, Steps: steps, Preview: scenes[0].preview(accs[0]), PreviewType: "image/png"})
		}
	}
	if e := b.stopped(ctx); e != nil {
		return Result{}, e
	}
	res := Result{Model: BuiltinModel, Submitted: submitted, Images: make([]Image, count)}
	var wg sync.WaitGroup
	for i, s := range scenes {
		wg.Go(func() {
			res.Images[i] = Image{Data: s.render(accs[i]), ContentType: "image/png", Seed: req.Seed + int64(i)}
		})
	}
	wg.Wait()
	for _, im := range res.Images {
		if im.Data == nil {
			return Result{}, b.peer.errorf(ReasonFailed, nil, "could not encode the picture as PNG. This is a bug; please report it.")
		}
	}
	progress(Progress{Step: steps, Steps: steps})
	res.Finished = time.Now()
	return res, nil
}

// builtinScene is everything drawn, chosen up front from the hash.
type builtinScene struct {
	w, h  int
	scale float64 // pixels → unit coordinates, the same on both axes
	lut   [1024][3]uint8
	waves [][2]builtinWave // two waves per step, from coarse to fine
	balls []builtinBall
	slope [2]float64 // direction and strength of the base gradient
	seed  uint64
}

type builtinWave struct{ a, b, phase, amp float64 }

type builtinBall struct{ x, y, r2 float64 }

// builtinRand is splitmix64: tiny, and its sequence never changes with the
// Go version, which the pixels' determinism depends on.
type builtinRand uint64

func (r *builtinRand) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float returns a number in [lo, hi).
func (r *builtinRand) float(lo, hi float64) float64 {
	return lo + (hi-lo)*float64(r.next()>>11)/(1<<53)
}

func newBuiltinScene(prompt string, seed int64, w, h, steps int) *builtinScene {
	f := fnv.New64a()
	f.Write([]byte(prompt))
	r := builtinRand(f.Sum64() ^ uint64(seed)*0x9e3779b97f4a7c15)
	s := &builtinScene{w: w, h: h, scale: 1 / float64(max(w, h)), seed: r.next()}

	// A cosine palette a + b·cos(2π(c·t + d)) (after Íñigo Quílez): with
	// whole-number c it wraps smoothly at t = 1, so bands can repeat.
	var a, bb, c, d [3]float64
	base := r.float(0, 1)
	for ch := range 3 {
		a[ch] = r.float(0.45, 0.6)
		bb[ch] = r.float(0.3, 0.5)
		c[ch] = float64(1 + r.next()%2)
		d[ch] = base + float64(ch)*r.float(0.1, 0.35)
	}
	for i := range s.lut {
		t := float64(i) / float64(len(s.lut))
		for ch := range 3 {
			v := a[ch] + bb[ch]*math.Cos(2*math.Pi*(c[ch]*t+d[ch]))
			s.lut[i][ch] = uint8(math.Round(255 * min(max(v, 0), 1)))
		}
	}
	angle := r.float(0, 2*math.Pi)
	s.slope = [2]float64{math.Cos(angle) * r.float(0.3, 0.8), math.Sin(angle) * r.float(0.3, 0.8)}
	for range 4 + r.next()%5 {
		rad := r.float(0.08, 0.22)
		s.balls = append(s.balls, builtinBall{x: r.float(0.1, 0.9) * float64(w) * s.scale, y: r.float(0.1, 0.9) * float64(h) * s.scale, r2: rad * rad})
	}
	freq, amp := r.float(0.6, 1.2), 0.28
	for range steps {
		var pair [2]builtinWave
		for j := range pair {
			th := r.float(0, 2*math.Pi)
			fr := 2 * math.Pi * freq * r.float(0.8, 1.25)
			pair[j] = builtinWave{a: fr * math.Cos(th), b: fr * math.Sin(th), phase: r.float(0, 2*math.Pi), amp: amp * r.float(0.6, 1)}
		}
		s.waves = append(s.waves, pair)
		freq *= 1.5
		amp *= 0.5
	}
	return s
}

// addOctave adds step k's waves to acc. A plane wave sin(a·u + b·v + φ) is
// sin(a·u)·cos(b·v+φ) + cos(a·u)·sin(b·v+φ), so per pixel it costs two
// multiplications over tables of one row and one column.
func (s *builtinScene) addOctave(acc []float32, k int) {
	for _, wv := range s.waves[k] {
		sx, cx := make([]float32, s.w), make([]float32, s.w)
		for x := range s.w {
			sin, cos := math.Sincos(wv.a * float64(x) * s.scale)
			sx[x], cx[x] = float32(sin*wv.amp), float32(cos*wv.amp)
		}
		builtinRows(s.h, func(y0, y1 int) {
			for y := y0; y < y1; y++ {
				sy, cy := math.Sincos(wv.b*float64(y)*s.scale + wv.phase)
				fs, fc := float32(sy), float32(cy)
				row := acc[y*s.w : (y+1)*s.w]
				for x := range row {
					row[x] += sx[x]*fc + cx[x]*fs
				}
			}
		})
	}
}

// shade turns unit coordinates and the accumulated waves into a colour.
func (s *builtinScene) shade(u, v float64, a float32, dither uint32) (uint8, uint8, uint8) {
	m := 0.0
	for _, bl := range s.balls {
		dx, dy := u-bl.x, v-bl.y
		m += bl.r2 / (dx*dx + dy*dy + bl.r2*0.08)
	}
	t := 0.5 + s.slope[0]*u + s.slope[1]*v + float64(a) + 0.5*m/(1+m)
	t -= math.Floor(t)
	col := s.lut[int(t*float64(len(s.lut)))&(len(s.lut)-1)]
	// Light the blobs' rims and darken the corners, like a lens would.
	rim := 0.0
	if e := m - 1.2; e > -1 && e < 1 {
		rim = 0.22 * (1 - e*e)
	}
	cu, cv := u-0.5*float64(s.w)*s.scale, v-0.5*float64(s.h)*s.scale
	light := (1 - 0.9*(cu*cu+cv*cv)) * (1 + rim)
	n := float64(dither&255)/255 - 0.5 // hides banding in smooth areas
	out := func(c uint8) uint8 {
		return uint8(min(max(float64(c)*light+40*rim+n, 0), 255))
	}
	return out(col[0]), out(col[1]), out(col[2])
}

// builtinDither is a cheap per-pixel hash, fixed for a scene.
func builtinDither(seed uint64, x, y int) uint32 {
	h := uint32(seed) ^ uint32(x)*0x27d4eb2d ^ uint32(y)*0x165667b1
	h ^= h >> 15
	h *= 0x85ebca6b
	return h ^ h>>13
}

// render shades the full picture and encodes it as PNG.
func (s *builtinScene) render(acc []float32) []byte {
	img := image.NewRGBA(image.Rect(0, 0, s.w, s.h))
	builtinRows(s.h, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			v := float64(y) * s.scale
			p := img.Pix[y*img.Stride:]
			for x := range s.w {
				r, g, b := s.shade(float64(x)*s.scale, v, acc[y*s.w+x], builtinDither(s.seed, x, y))
				p[4*x], p[4*x+1], p[4*x+2], p[4*x+3] = r, g, b, 255
			}
		}
	})
	return builtinPNG(img)
}

// preview shades a small copy from the waves accumulated so far.
func (s *builtinScene) preview(acc []float32) []byte {
	pw, ph := s.w, s.h
	if f := float64(builtinPreview) / float64(max(s.w, s.h)); f < 1 {
		pw, ph = max(1, int(float64(s.w)*f)), max(1, int(float64(s.h)*f))
	}
	img := image.NewRGBA(image.Rect(0, 0, pw, ph))
	for py := range ph {
		y := py * s.h / ph
		for px := range pw {
			x := px * s.w / pw
			r, g, b := s.shade(float64(x)*s.scale, float64(y)*s.scale, acc[y*s.w+x], builtinDither(s.seed, x, y))
			i := py*img.Stride + 4*px
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = r, g, b, 255
		}
	}
	return builtinPNG(img)
}

// builtinPNG encodes img. Speed beats size here: the pictures are smooth
// and compress well even at the fastest level. Encoding into memory fails
// only for an image with no pixels, which Generate never builds; nil then
// stands for "no preview".
func builtinPNG(img image.Image) []byte {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if enc.Encode(&buf, img) != nil {
		return nil
	}
	return buf.Bytes()
}

// builtinRows splits rows [0, h) into bands run on all cores. Each pixel
// depends only on its own coordinates, so the split never changes output.
func builtinRows(h int, fn func(y0, y1 int)) {
	n := min(runtime.GOMAXPROCS(0), max(1, h/32))
	if n <= 1 {
		fn(0, h)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i*h/n, (i+1)*h/n) })
	}
	wg.Wait()
}
