// Package promsim is the sandbox's Prometheus: it scrapes in-process metric registries (the SAGA
// services' own, the simulated mesh's Envoy series, the simulated cluster's) into memory —
// Prometheus's own XOR chunks behind its storage interface — and answers the Prometheus HTTP API — /api/v1/query, query_range, series,
// labels and label values — with Prometheus's own PromQL engine, in the JSON Prometheus answers
// with, so client_golang's API client, canary gates and dashboards' queries run unchanged.
//
// A scrape is a Gather of a prometheus.Gatherer instead of an HTTP GET, and the labels a
// ServiceMonitor would attach (job, instance, namespace, service, version…) are given per
// target. Everything else follows Prometheus: label conflicts rename the exposed label to
// exported_<name>, classic histograms and summaries become _bucket/_sum/_count and quantile
// series with normalised le and quantile values, every target gets `up`, and series that
// vanish get a staleness marker. It has no rules, alerts, remote write or service discovery,
// and keeps nothing on disk: the series start afresh on every run.
package promsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql"
)

// Defaults for Config fields left zero.
const (
	DefaultInterval  = 2 * time.Second
	DefaultRetention = 2 * time.Hour
)

// Target is one scrape target: what a ServiceMonitor endpoint of one pod would be.
type Target struct {
	// Job and Instance are the job and instance labels (required).
	Job, Instance string
	// Labels are further target labels, e.g. namespace, service, version (from podTargetLabels).
	Labels map[string]string
	// Gatherer is scraped at every interval.
	Gatherer prometheus.Gatherer
}

// Config configures a Server.
type Config struct {
	// Interval is the scrape interval (default 2s: the sandbox wants data for 1m rates fast).
	Interval time.Duration
	// Retention bounds how long samples are kept (default 2h).
	Retention time.Duration
	// Logger receives scrape failures (default: discarded).
	Logger *slog.Logger
	// Now is the clock of scrapes and default query times (default time.Now).
	Now func() time.Time
}

// Server is the simulated Prometheus.
type Server struct {
	cfg    Config
	db     *store
	engine *promql.Engine
	log    *slog.Logger

	mu      sync.Mutex
	targets []*target
	closed  bool

	scrapeMu sync.Mutex // one scrape at a time (the loop and Scrape callers)

	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Server with an empty store. Start serves the API and starts scraping.
func New(cfg Config) *Server {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, db: newStore()}
	s.engine = promql.NewEngine(promql.EngineOpts{
		Logger:               log.With("component", "promql"),
		MaxSamples:           50_000_000,
		Timeout:              2 * time.Minute,
		LookbackDelta:        5 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
	return s
}

// AddTarget adds a scrape target; it is scraped from the next interval on.
func (s *Server) AddTarget(t Target) error {
	if t.Job == "" || t.Instance == "" || t.Gatherer == nil {
		return errors.New("promsim: a target needs Job, Instance and a Gatherer")
	}
	tg, err := newTarget(t)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = append(s.targets, tg)
	return nil
}

// Start serves the HTTP API on addr (e.g. "127.0.0.1:0"), scrapes every target once, then
// every Interval until Close. It returns the base URL (http://host:port).
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("promsim: listen %s: %w", addr, err)
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("Prometheus API stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.loop(ctx)
	}()
	return "http://" + ln.Addr().String(), nil
}

func (s *Server) loop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if err := s.Scrape(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scrape failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scrape scrapes every target now, at the clock's current time, and commits the samples.
func (s *Server) Scrape(ctx context.Context) error {
	s.scrapeMu.Lock()
	defer s.scrapeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("promsim: closed")
	}
	targets := append([]*target(nil), s.targets...)
	s.mu.Unlock()
	var errs []error
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.scrape(t); err != nil {
			errs = append(errs, err)
		}
	}
	s.db.truncate(timestamp.FromTime(s.cfg.Now().Add(-s.cfg.Retention)))
	return errors.Join(errs...)
}

// Close stops scraping and serving; the samples are dropped.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	var errs []error
	if s.srv != nil {
		if err := s.srv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	s.scrapeMu.Lock() // a Scrape called from outside finishes first
	defer s.scrapeMu.Unlock()
	if err := s.engine.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
