package cli

import (
	"github.com/prometheus/client_golang/prometheus"

	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"zimage/app"
	"zimage/app/backend"
	"zimage/app/config"
	"zimage/app/media"
	"zimage/app/provenance"
	"zimage/app/queue"
	"zimage/app/sqlite"
	"zimage/app/vault"
	"zimage/app/web"
)

// pipeline is the generation path: backends in a pool, the queue, and the
// media store the queue saves results into.
type pipeline struct {
	pool   *backend.Pool
	queue  *queue.Queue
	media  *media.Store
	cancel context.CancelFunc
	// signing says whether stored files get signed Content Credentials.
	signing web.Signing
}

// startPipeline builds the backends from [[backends]] and starts pool,
// media workers and queue (which re-queues jobs a crash left running).
func startPipeline(ctx context.Context, cfg config.Config, db *sqlite.DB, keys *vault.Vault, log *slog.Logger) (*pipeline, error) {
	bs, slots, err := buildBackends(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := backend.NewPool(bs, slots, backend.PoolOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	mo := mediaOptions(cfg, log)
	creds, signingState := signing(cfg, time.Now(), true)
	logSigning(log, signingState)
	mo.Credentials = creds
	m, err := media.New(cfg.Server.DataDir, db, keys, mo)
	if err != nil {
		return nil, err
	}
	// A shortened retention.images applies to stored images from this
	// start: the countdown people see must be the one the sweep keeps.
	if n, err := m.ShortenExpiries(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("images expire sooner under the shortened retention.images", "images", n, "window", cfg.Retention.Images.String())
	}
	// Each person chooses whether new PNGs carry their parameters.
	q := queue.New(db, pool, keys, media.Sink{Media: m, Options: media.PersonPreferences(db)}, queue.Options{
		MaxQueuedPerUser:  cfg.Queue.MaxQueuedPerUser,
		MaxRunningPerUser: cfg.Queue.MaxRunningPerUser,
		JobTimeout:        cfg.Queue.JobTimeout.D(),
		WaitForBackend:    cfg.Queue.WaitForBackend.D(),
		Limits:            generationLimits(cfg),
		Logger:            log,
	})
	// The pipeline outlives the request context's cancellation at shutdown:
	// stop() ends it after the HTTP servers have drained.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pool.Start(pctx)
	m.Start(pctx)
	if err := q.Start(pctx); err != nil {
		m.Stop()
		cancel()
		return nil, err
	}
	for _, b := range bs {
		log.Info("backend configured", "name", b.Name(), "kind", b.Kind(), "no_ai_model", b.Kind() == backend.KindBuiltin)
	}
	return &pipeline{pool: pool, queue: q, media: m, cancel: cancel, signing: signingState}, nil
}

// stop lets running jobs end (bounded), finishes pending thumbnails, then
// stops health checks.
func (p *pipeline) stop() {
	p.queue.Stop()
	p.media.Stop()
	p.cancel()
}

func buildBackends(cfg config.Config) ([]backend.Backend, map[string]int, error) {
	var bs []backend.Backend
	slots := map[string]int{}
	for i, bc := range cfg.Backends {
		o := backend.Options{Name: bc.Name, Kind: bc.Kind, URL: bc.URL, Slots: bc.Slots, Timeout: bc.Timeout.D(),
			StallTimeout: cfg.Queue.StallTimeout.D(),
			Model:        bc.Model, Models: bc.Models, APIKey: bc.APIKey, WorkflowMap: bc.WorkflowMap}
		if bc.Workflow != "" {
			data, err := os.ReadFile(bc.Workflow)
			if err != nil {
				return nil, nil, &config.Error{Key: fmt.Sprintf("backends[%d].workflow", i), Value: bc.Workflow, Allowed: "cannot read the workflow file: " + unwrapPathErr(err).Error()}
			}
			o.Workflow = data
		}
		b, err := backend.New(o)
		if err != nil {
			return nil, nil, &config.Error{Key: fmt.Sprintf("backends[%d]", i), Value: bc.Name, Allowed: errMessage(err)}
		}
		bs = append(bs, b)
		slots[bc.Name] = bc.Slots
	}
	return bs, slots, nil
}

// mediaOptions configures the media store the same way for the server and
// the commands that read images.
func mediaOptions(cfg config.Config, log *slog.Logger) media.Options {
	return media.Options{ImagesRetention: cfg.Retention.Images.D(), Logger: log,
		Marks: provenance.Marker{Version: Version(), Off: !cfg.Provenance.Marks}}
}

func generationLimits(cfg config.Config) app.GenerationLimits {
	g := cfg.Generation
	return app.GenerationLimits{MaxSide: g.MaxSide, MaxPixels: g.MaxPixels, MaxSteps: g.MaxSteps, MaxCount: g.MaxCount, MaxPromptLength: g.MaxPromptLength}
}

// registerMetrics exposes the queue and the backends on /metrics.
func (p *pipeline) registerMetrics(reg prometheus.Registerer) {
	stat := func(pick func(queue.Stats) int) func() float64 {
		return func() float64 { return float64(pick(p.queue.Stats())) }
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zimage_queue_jobs_queued", Help: "Generations waiting for a backend."}, stat(func(s queue.Stats) int { return s.Queued })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zimage_queue_jobs_running", Help: "Generations running on a backend."}, stat(func(s queue.Stats) int { return s.Running })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zimage_queue_users", Help: "People with generations queued or running."}, stat(func(s queue.Stats) int { return s.Users })),
		backendCollector{p.pool},
	)
}

// backendCollector reports each backend's health and load at scrape time.
type backendCollector struct{ pool *backend.Pool }

var (
	backendUpDesc    = prometheus.NewDesc("zimage_backend_up", "1 if the backend passed its last health check.", []string{"backend", "kind"}, nil)
	backendBusyDesc  = prometheus.NewDesc("zimage_backend_busy_slots", "Jobs running on the backend.", []string{"backend", "kind"}, nil)
	backendSlotsDesc = prometheus.NewDesc("zimage_backend_slots", "Jobs the backend may run at once.", []string{"backend", "kind"}, nil)
)

func (c backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backendUpDesc
	ch <- backendBusyDesc
	ch <- backendSlotsDesc
}

func (c backendCollector) Collect(ch chan<- prometheus.Metric) {
	for _, b := range c.pool.Status() {
		up := 0.0
		if b.Healthy {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(backendUpDesc, prometheus.GaugeValue, up, b.Name, b.Kind)
		ch <- prometheus.MustNewConstMetric(backendBusyDesc, prometheus.GaugeValue, float64(b.Busy), b.Name, b.Kind)
		ch <- prometheus.MustNewConstMetric(backendSlotsDesc, prometheus.GaugeValue, float64(b.Slots), b.Name, b.Kind)
	}
}
