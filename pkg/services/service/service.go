// Package service is the runtime every SAGA service runs on: JSON logs with secrets masked,
// Prometheus metrics, the database, an idempotent Kafka producer, optional OpenTelemetry tracing,
// the HTTP server with /healthz, /readyz and /metrics, the SAGA topics created at startup, and a
// graceful shutdown that drains in-flight work and flushes the producer.
//
// A service builds a Runtime with New, registers its routes (Handle) and background workers (Go),
// then calls Run, which blocks until its context ends. Nothing here is global, so several
// services can run in one process — the end-to-end tests and `opsctl sandbox` do.
//
// Shutdown runs in stages: readiness turns false; the HTTP server stops accepting and finishes
// the requests in flight; StageIntake workers (consumers, sweepers) stop taking work and finish
// what they hold; then StagePublish workers (the outbox relay) make a last pass; then the producer
// is flushed and everything is closed. Work accepted before the shutdown therefore reaches the
// database and, if Kafka answers, Kafka.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/come2us/opsctl/pkg/buildinfo"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Options configures a Runtime. Name, Kafka.Brokers and DatabaseURL are required.
type Options struct {
	// Name is the service's name, e.g. "order-service": the metrics' service label, the logs'
	// service attribute, the trace resource and the Kafka client id.
	Name string
	// Version is stamped on logs and traces; the build's version when empty.
	Version string
	// Addr is the HTTP listen address (":8080"); "127.0.0.1:0" picks a free port.
	Addr string
	// DatabaseURL names the service's own database (see store.Open).
	DatabaseURL string
	// Kafka is how to reach the cluster.
	Kafka kafka.Config
	// KafkaOpts are extra client options appended to those built from Kafka (tests use them for
	// fast retries against kfake).
	KafkaOpts []kgo.Opt
	// DeliveryTimeout bounds one publish (default 30s); the outbox retries what times out.
	DeliveryTimeout time.Duration
	// OTLPEndpoint turns tracing on, exporting over OTLP/HTTP (e.g. http://otel-collector:4318).
	OTLPEndpoint string
	// LogLevel is the minimum level logged by the default logger.
	LogLevel slog.Level
	// Logger replaces the default JSON logger on stdout.
	Logger *slog.Logger
	// ShutdownTimeout bounds the graceful shutdown (default 25s, inside Kubernetes' 30s grace).
	ShutdownTimeout time.Duration
}

// Stage orders background workers at shutdown.
type Stage int

// Worker stages.
const (
	// StageIntake workers take in work (consumers, sweepers); they stop first, after HTTP.
	StageIntake Stage = iota
	// StagePublish workers push work out (the outbox relay); they stop last, so what intake
	// committed during the drain is still published.
	StagePublish
)

type worker struct {
	stage Stage
	name  string
	fn    func(context.Context) error
}

// Runtime is one running service's shared machinery.
type Runtime struct {
	// Name is Options.Name.
	Name string
	// Logger is the service's logger.
	Logger *slog.Logger
	// Metrics are the service's collectors, served on /metrics.
	Metrics *metrics.Saga
	// DB is the service's database.
	DB *store.DB
	// Producer is the idempotent producer for the outbox relay and dead letters.
	Producer *kgo.Client
	// Tracer instruments Kafka clients (kotel); its spans are exported only when tracing is on.
	Tracer *kotel.Tracer

	opts      Options
	kafkaOpts []kgo.Opt
	tracing   *tracing
	mux       *http.ServeMux
	listener  net.Listener
	ready     atomic.Bool
	workers   []worker
	closeOnce sync.Once
	// draining is closed when the HTTP server starts its graceful shutdown.
	draining chan struct{}
}

// New opens the database, the producer and the listener, and creates the SAGA topics. On error
// everything opened so far is closed again.
func New(ctx context.Context, o Options) (rt *Runtime, err error) {
	if o.Name == "" || o.DatabaseURL == "" {
		return nil, errors.New("service: Name and DatabaseURL are required")
	}
	if o.Version == "" {
		o.Version = buildinfo.Version
	}
	if o.Addr == "" {
		o.Addr = ":8080"
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 25 * time.Second
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = 30 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = NewLogger(os.Stdout, o.LogLevel, o.Name, o.Version)
	}
	rt = &Runtime{Name: o.Name, Logger: log, Metrics: metrics.New(o.Name), opts: o, mux: http.NewServeMux(), draining: make(chan struct{})}
	defer func() {
		if err != nil {
			rt.close(ctx)
			rt = nil
		}
	}()

	if rt.tracing, err = newTracing(ctx, o.Name, o.Version, o.OTLPEndpoint); err != nil {
		return nil, err
	}
	rt.Tracer = kotel.NewTracer(kotel.TracerProvider(rt.tracing.provider), kotel.TracerPropagator(propagator()))

	if rt.DB, err = store.Open(ctx, o.DatabaseURL); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Name, err)
	}

	base, err := kafka.Options(o.Kafka)
	if err != nil {
		return nil, fmt.Errorf("%s: kafka: %w", o.Name, err)
	}
	rt.kafkaOpts = append(append(base, o.KafkaOpts...),
		kgo.WithHooks(kotel.NewKotel(kotel.WithTracer(rt.Tracer)).Hooks()...))
	// No linger: the producer's records come in whole batches already (an outbox pass, a dead
	// letter), and each waits for its acknowledgement before the next, so lingering would only
	// add its delay — 10ms by default — to every hop of a saga. KafkaOpts may still set one.
	rt.Producer, err = kgo.NewClient(append(append([]kgo.Opt{kgo.ProducerLinger(0)}, rt.ClientOpts()...),
		kgo.RecordDeliveryTimeout(o.DeliveryTimeout))...)
	if err != nil {
		return nil, fmt.Errorf("%s: kafka producer: %w", o.Name, err)
	}

	if rt.listener, err = net.Listen("tcp", o.Addr); err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", o.Name, o.Addr, err)
	}

	// Create the topics now if Kafka answers; otherwise keep trying in the background — the
	// service works without Kafka, its outbox just grows.
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	terr := EnsureTopics(tctx, rt.Producer)
	cancel()
	if terr != nil {
		log.Warn("creating the SAGA topics failed; retrying in the background", "err", terr)
		rt.Go(StageIntake, "ensure-topics", func(ctx context.Context) error {
			for d := time.Second; ; d = min(2*d, time.Minute) {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(d):
				}
				if err := EnsureTopics(ctx, rt.Producer); err == nil {
					log.Info("SAGA topics are in place")
					return nil
				}
			}
		})
	}

	rt.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	rt.mux.HandleFunc("GET /readyz", rt.readyz)
	rt.mux.Handle("GET /metrics", promhttp.HandlerFor(rt.Metrics.Registry, promhttp.HandlerOpts{}))
	rt.Handle("/", func(_ http.ResponseWriter, r *http.Request) error {
		return Errorf(http.StatusNotFound, CodeNotFound, "no route for %s %s", r.Method, r.URL.Path)
	})
	return rt, nil
}

// ClientOpts are the Kafka connection options (brokers, TLS, SASL, tracing hooks) for further
// clients such as consumers.
func (rt *Runtime) ClientOpts() []kgo.Opt {
	return append([]kgo.Opt{kgo.ClientID(rt.Name)}, rt.kafkaOpts...)
}

// Draining is closed once the HTTP server has begun its graceful shutdown: it accepts no new
// connections and waits for the requests in flight. A handler that waits for something (a long
// poll) can select on it to answer early.
func (rt *Runtime) Draining() <-chan struct{} { return rt.draining }

// Addr is the address the HTTP server listens on.
func (rt *Runtime) Addr() string { return rt.listener.Addr().String() }

// URL is the HTTP base URL of the service, reachable from this host.
func (rt *Runtime) URL() string {
	addr := rt.Addr()
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "::" || host == "0.0.0.0" || host == "") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return "http://" + addr
}

// Go registers a background worker, started by Run and stopped in stage order. A worker that
// returns an error stops the service.
func (rt *Runtime) Go(stage Stage, name string, fn func(ctx context.Context) error) {
	rt.workers = append(rt.workers, worker{stage: stage, name: name, fn: fn})
}

// Handle registers an API route such as "POST /orders" or "GET /orders/{id}". The route is the
// metrics' route label; the handler gets a server span, panic recovery and JSON error answers.
func (rt *Runtime) Handle(pattern string, h HandlerFunc) {
	method, route, ok := strings.Cut(pattern, " ")
	if !ok {
		method, route = "", pattern
	}
	if route == "/" {
		route = "unmatched"
	}
	rt.mux.Handle(pattern, rt.instrument(route, method, h))
}

func (rt *Runtime) instrument(route, method string, h HandlerFunc) http.Handler {
	tracer := rt.tracing.provider.Tracer("github.com/come2us/opsctl/pkg/services/service")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		func() {
			defer func() {
				if p := recover(); p != nil {
					rt.Logger.ErrorContext(ctx, "handler panicked", "route", route, "panic", fmt.Sprint(p))
					rt.writeError(sw, r, fmt.Errorf("panic: %v", p))
				}
			}()
			if err := h(sw, r); err != nil {
				rt.writeError(sw, r, err)
			}
		}()
		if sw.status == 0 {
			sw.WriteHeader(http.StatusOK)
		}
		m := method
		if m == "" {
			m = r.Method
		}
		rt.Metrics.HTTPRequests.WithLabelValues(m, route, fmt.Sprint(sw.status)).Inc()
		rt.Metrics.HTTPDuration.WithLabelValues(m, route).Observe(time.Since(start).Seconds())
	})
}

func (rt *Runtime) writeError(w *statusWriter, r *http.Request, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		rt.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = Errorf(http.StatusInternalServerError, CodeInternal, "internal error; the request may not have been applied — retry it or check the service logs")
	}
	if w.status != 0 {
		return // the handler already answered
	}
	WriteJSON(w, ae.Status, ae)
}

func (rt *Runtime) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"db": "ok", "kafka": "ok"}
	ok := rt.ready.Load()
	if !ok {
		checks["service"] = "not serving (starting or shutting down)"
	}
	if err := rt.DB.Ping(ctx); err != nil {
		ok, checks["db"] = false, err.Error()
	}
	if err := rt.Producer.Ping(ctx); err != nil {
		ok, checks["kafka"] = false, err.Error()
	}
	status, code := "ok", http.StatusOK
	if !ok {
		status, code = "unavailable", http.StatusServiceUnavailable
	}
	WriteJSON(w, code, map[string]any{"status": status, "checks": checks})
}

// Run serves until ctx ends or a worker fails, then shuts down gracefully (see the package
// documentation) and releases everything. It returns the worker's error, if one failed.
func (rt *Runtime) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           rt.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(rt.Logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(func() { close(rt.draining) })
	failed := make(chan error, len(rt.workers)+1)
	go func() {
		if err := srv.Serve(rt.listener); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("http server: %w", err)
		}
	}()
	type stage struct {
		ctx    context.Context
		cancel context.CancelFunc
		wg     sync.WaitGroup
	}
	stages := map[Stage]*stage{}
	for _, s := range []Stage{StageIntake, StagePublish} {
		c, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stages[s] = &stage{ctx: c, cancel: cancel}
	}
	for _, w := range rt.workers {
		st := stages[w.stage]
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			if err := w.fn(st.ctx); err != nil && st.ctx.Err() == nil {
				failed <- fmt.Errorf("%s: %w", w.name, err)
			}
		}()
	}
	rt.ready.Store(true)
	rt.Logger.Info("service started", "addr", rt.Addr(), "db", string(rt.DB.Dialect()))

	var runErr error
	select {
	case <-ctx.Done():
		rt.Logger.Info("shutting down")
	case runErr = <-failed:
		rt.Logger.Error("a component failed; shutting down", "err", runErr)
	}
	rt.ready.Store(false)
	// ctx has ended by now (or a worker failed): the shutdown keeps its values but has a
	// deadline of its own, so requests, workers and the producer still get to finish.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rt.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		rt.Logger.Warn("HTTP requests still running at the shutdown deadline", "err", err)
	}
	for _, s := range []Stage{StageIntake, StagePublish} {
		st := stages[s]
		st.cancel()
		done := make(chan struct{})
		go func() { st.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-sctx.Done():
			rt.Logger.Warn("workers still running at the shutdown deadline", "stage", int(s))
		}
	}
	if err := rt.Producer.Flush(sctx); err != nil {
		rt.Logger.Warn("flushing the producer at shutdown failed", "err", err)
	}
	rt.close(ctx)
	rt.Logger.Info("stopped")
	return runErr
}

// Close releases everything without running; for a service whose setup failed after New. It
// runs even when ctx has ended (a setup cut short by it): the tracing flush keeps ctx's values,
// not its cancellation, and has a deadline of its own.
func (rt *Runtime) Close(ctx context.Context) { rt.close(ctx) }

func (rt *Runtime) close(ctx context.Context) {
	rt.closeOnce.Do(func() {
		if rt.listener != nil {
			_ = rt.listener.Close()
		}
		if rt.Producer != nil {
			rt.Producer.Close()
		}
		if rt.DB != nil {
			_ = rt.DB.Close()
		}
		if rt.tracing != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			rt.tracing.shutdown(ctx)
		}
	})
}

// Topics lists what EnsureTopics creates: the SAGA topics and their dead-letter topics.
func Topics() []string {
	var out []string
	for _, t := range event.Topics() {
		out = append(out, t, event.DLT(t))
	}
	return out
}

// EnsureTopics creates the SAGA topics and DLTs that do not exist yet, with event.Partitions
// partitions, the cluster's default replication factor and 7 days' retention (section 6.4). MSK
// has automatic topic creation off, so the services create what they need at startup.
func EnsureTopics(ctx context.Context, cl *kgo.Client) error {
	adm := kadm.NewClient(cl)
	retention := "604800000"
	res, err := adm.CreateTopics(ctx, event.Partitions, -1, map[string]*string{"retention.ms": &retention}, Topics()...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for _, r := range res.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}
