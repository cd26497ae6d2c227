// Package sandbox runs the whole COME2US platform on one machine, in one process, on 127.0.0.1:
// a three-broker Kafka (kfake) with the SAGA topics, their dead-letter topics and opsctl's replay
// ledger; the three SAGA services on SQLite (or PostgreSQL); a storefront generating traffic and
// fault windows that produce real dead letters; a GitOps repository seeded from the
// repository's gitops/ tree; a simulated Kubernetes API (pkg/sim/kubesim) and Istio data plane
// (pkg/sim/meshsim); and a Prometheus API over all of their metrics (pkg/sim/promsim). `opsctl sandbox`
// starts it and writes a `sandbox` context so every opsctl command works against it.
//
// Everything simulated says so: the context is marked simulated, the Kubernetes objects and
// Prometheus build info carry the word. The services and Kafka are real code on real protocols.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/come2us/opsctl/pkg/agent"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/kube"
	"github.com/come2us/opsctl/pkg/mesh"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/paymentgateway"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/saga"
	"github.com/come2us/opsctl/pkg/services/service"
	"github.com/come2us/opsctl/pkg/services/store"
	"github.com/come2us/opsctl/pkg/sim/argosim"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
	"github.com/come2us/opsctl/pkg/sim/meshsim"
	"github.com/come2us/opsctl/pkg/sim/promsim"
	"github.com/come2us/opsctl/pkg/sim/traffic"
)

// ContextName is the opsctl context the sandbox writes.
const ContextName = "sandbox"

// KubeContext is the kubeconfig context of the simulated cluster.
const KubeContext = "opsctl-sandbox"

// Defaults of the sandbox's compressed clock: what production does in minutes it does in
// seconds, so an operator sees the PENDING sweeper at work.
const (
	DefaultPendingTimeout = 15 * time.Second
	DefaultSweepInterval  = 2 * time.Second
)

// Config configures a Sandbox.
type Config struct {
	// StateDir keeps Kafka's log, the databases and the GitOps repository between runs; empty
	// means a temporary directory that Close removes.
	StateDir string
	// Postgres, when set, is a PostgreSQL URL: the services keep their tables in the schemas
	// opsctl_sandbox_order, _payment and _product of that database instead of SQLite files.
	Postgres string
	// GitOpsSource is the gitops/ tree the repository is seeded from on first start (default:
	// found from the working directory with FindGitOps).
	GitOpsSource string
	// PortBase, when set, fixes the ports: Kafka brokers PortBase to PortBase+2, Prometheus +3,
	// the mesh router +4, Argo CD's API +5 and the Kubernetes API +6. Otherwise they are free
	// ports chosen at start.
	PortBase int

	// Traffic: journeys per second (0: none), the share of declined payments and of coupons.
	Rate         float64
	DeclineRatio float64
	CouponRatio  float64
	// FaultWindows opens the generator's fault windows: at start and then every FaultEvery,
	// product-service cannot restore stock for FaultLength, then order-service cannot apply
	// payment failures for as long. Late payments run at start and every FaultEvery too.
	FaultWindows bool
	FaultLength  time.Duration // default 6s
	FaultEvery   time.Duration // default 10m

	// PendingTimeout and SweepInterval are order-service's sweeper settings (defaults 15s, 2s).
	PendingTimeout, SweepInterval time.Duration
	// ScrapeInterval is the simulated Prometheus' scrape interval (default 2s).
	ScrapeInterval time.Duration

	// Agent runs the opsctl agent with the built-in redrive policy (see agent.go); AgentClock
	// is its clock (default time.Now), which tests move ahead rather than wait out the policy's
	// minimum age.
	Agent      bool
	AgentClock func() time.Time

	// Logger receives every component's log (default: discarded, or the log file).
	Logger *slog.Logger
	// LogFile writes every component's log as JSON to <state>/sandbox.log instead (secrets
	// masked), so the terminal stays the operator's.
	LogFile bool
}

// Sandbox is a running sandbox.
type Sandbox struct {
	cfg     Config
	log     *slog.Logger
	tempDir string

	// StateDir holds everything the sandbox keeps; LogPath is the log file (with Config.LogFile).
	StateDir, LogPath string
	// Kafka is the cluster; Brokers its addresses.
	Kafka   *kfake.Cluster
	Brokers []string
	// System is the three services.
	System *saga.System
	// Faults are the switches of the fault windows (also usable by hand).
	Faults *traffic.Faults
	// Kube is the simulated cluster; KubeURL its API and Kubeconfig a kubeconfig for it.
	Kube       *kubesim.Server
	KubeURL    string
	Kubeconfig string
	// Argo is the simulated Argo CD; ArgoAddr its gRPC API and ArgoToken the token it accepts.
	Argo      *argosim.Server
	ArgoAddr  string
	ArgoToken string
	// Mesh is the simulated data plane; MeshURL its router (and fault admin API).
	Mesh    *meshsim.Mesh
	MeshURL string
	// Prometheus is the simulated Prometheus; PrometheusURL its API.
	Prometheus    *promsim.Server
	PrometheusURL string
	// GitOpsRepo is the bare repository (the remote); GitOpsDir the operator's working copy.
	GitOpsRepo, GitOpsDir string
	// Agent is the opsctl agent (nil without Config.Agent); AgentURL its endpoints.
	Agent    *agent.Agent
	AgentURL string
	// Traffic is the storefront (nil when Rate is 0).
	Traffic *traffic.Generator
	// Seeded counts what the first start wrote: catalogue options and foreign-format dead letters.
	SeededOptions, SeededDeadLetters int

	admin *kgo.Client
	wg    sync.WaitGroup

	mu      sync.Mutex
	closers []func() error // in start order; Close runs them backwards
	closed  bool
}

// Start starts everything and returns once every part serves. The traffic generator and fault
// windows run in the background; WaitReady waits for their first dead letters. On error what was
// started is stopped again.
func Start(ctx context.Context, cfg Config) (_ *Sandbox, err error) {
	if cfg.FaultLength <= 0 {
		cfg.FaultLength = 6 * time.Second
	}
	if cfg.FaultEvery <= 0 {
		cfg.FaultEvery = 10 * time.Minute
	}
	if cfg.PendingTimeout <= 0 {
		cfg.PendingTimeout = DefaultPendingTimeout
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	s := &Sandbox{cfg: cfg, log: cfg.Logger, Faults: &traffic.Faults{}}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if err := s.prepareState(); err != nil {
		return nil, err
	}
	if cfg.LogFile {
		s.LogPath = filepath.Join(s.StateDir, "sandbox.log")
		lf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open the sandbox log: %w", err)
		}
		s.onClose(lf.Close)
		s.log = slog.New(slog.NewJSONHandler(lf, &slog.HandlerOptions{ReplaceAttr: secret.NewFields().SlogReplacer()}))
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	src := cfg.GitOpsSource
	if src == "" {
		wd, werr := os.Getwd()
		if werr != nil {
			return nil, werr
		}
		found, ferr := FindGitOps(wd)
		if ferr != nil && !s.stateHasRepo() {
			return nil, ferr
		}
		src = found // unused when the state already holds the repository
	}

	// Kafka first: everything else talks to it.
	var ports []int
	if cfg.PortBase > 0 {
		ports = []int{cfg.PortBase, cfg.PortBase + 1, cfg.PortBase + 2}
	}
	kafkaDir := ""
	if s.tempDir == "" {
		kafkaDir = filepath.Join(s.StateDir, "kafka")
	}
	if s.Kafka, err = startKafka(ports, kafkaDir); err != nil {
		return nil, err
	}
	s.onClose(func() error { s.Kafka.Close(); return nil })
	s.Brokers = s.Kafka.ListenAddrs()
	if s.admin, err = kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ClientID("opsctl-sandbox")); err != nil {
		return nil, fmt.Errorf("kafka admin client: %w", err)
	}
	s.onClose(func() error { s.admin.Close(); return nil })
	if err := ensureTopics(ctx, s.admin); err != nil {
		return nil, err
	}

	// The services, the GitOps repository and the simulated cluster start side by side.
	var (
		wg                   sync.WaitGroup
		sagaErr, repoErr     error
		kubeErr, promErr     error
		sys                  *saga.System
		bare, work           = filepath.Join(s.StateDir, "gitops.git"), filepath.Join(s.StateDir, "gitops")
		kubeSrv, kubeURL, kc = kubesim.New(), "", filepath.Join(s.StateDir, "kubeconfig")
	)
	wg.Add(3)
	go func() { defer wg.Done(); sys, sagaErr = s.startServices(ctx) }()
	go func() { defer wg.Done(); _, repoErr = seedRepo(ctx, src, bare, work) }()
	go func() {
		defer wg.Done()
		kubeSrv.Token = randomToken()
		if kubeURL, kubeErr = kubeSrv.Start(s.addr(6)); kubeErr != nil {
			return
		}
		kubeErr = kubeSrv.WriteKubeconfig(kc, kubeURL, KubeContext, gitops.Namespace("prod"))
	}()
	wg.Wait()
	if sys != nil {
		s.System = sys
		s.onClose(sys.Close)
	}
	if kubeURL != "" {
		s.onClose(kubeSrv.Close)
	}
	if err := errors.Join(sagaErr, repoErr, kubeErr); err != nil {
		return nil, err
	}
	s.Kube, s.KubeURL, s.Kubeconfig = kubeSrv, kubeURL, kc
	s.GitOpsRepo, s.GitOpsDir = bare, work

	// Argo CD syncs the bare repository — what `opsctl canary` pushes to — into the cluster.
	s.ArgoToken = randomToken()
	if s.Argo, err = argosim.New(argosim.Config{RepoDir: bare, Kube: kubeSrv, KubeURL: kubeURL, Token: s.ArgoToken,
		Logger: s.log.With("component", "argocd")}); err != nil {
		return nil, err
	}
	if s.ArgoAddr, err = s.Argo.Start(ctx, s.addr(5)); err != nil {
		return nil, err
	}
	s.onClose(s.Argo.Close)

	if s.SeededDeadLetters, err = seedForeignDLTs(ctx, s.admin, time.Now()); err != nil {
		return nil, err
	}
	options, err := s.catalogue(ctx)
	if err != nil {
		return nil, err
	}

	// The data plane reads the live VirtualServices through Istio's client, as opsctl does.
	routes := map[string]meshsim.RouteReader{}
	for _, env := range gitops.Environments() {
		r, err := s.routeReader(env)
		if err != nil {
			return nil, err
		}
		routes[env] = r
	}
	upstreams := map[string]string{
		order.Name: sys.Order.URL(), "payment-service": sys.Payment.URL(), product.Name: sys.Product.URL(),
	}
	if s.Mesh, err = meshsim.New(meshsim.Config{Upstreams: upstreams, Routes: routes, Namespace: gitops.Namespace,
		Logger: s.log.With("component", "mesh")}); err != nil {
		return nil, err
	}
	if s.MeshURL, err = s.Mesh.Start(s.addr(4)); err != nil {
		return nil, err
	}
	s.onClose(s.Mesh.Close)

	s.Prometheus = promsim.New(promsim.Config{Interval: cfg.ScrapeInterval, Logger: s.log.With("component", "prometheus")})
	if err := s.addTargets(); err != nil {
		return nil, err
	}
	//nolint:contextcheck // the scraper runs until Close, past Start's ctx, which only bounds the startup
	if s.PrometheusURL, promErr = s.Prometheus.Start(s.addr(3)); promErr != nil {
		return nil, promErr
	}
	s.onClose(s.Prometheus.Close)
	if cfg.Agent {
		if err := s.startAgent(ctx); err != nil {
			return nil, err
		}
	}

	// The generator runs until Close, past ctx, which only bounds the startup.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// The generator stops before anything it calls.
	s.onClose(func() error { cancel(); s.wg.Wait(); return nil })
	if cfg.Rate > 0 {
		tc := traffic.Config{
			URL: s.Mesh.URL, Options: options, Envs: []string{"prod", "dev"},
			Rate: cfg.Rate, DeclineRatio: cfg.DeclineRatio, CouponRatio: cfg.CouponRatio,
			Faults: s.Faults, LateWait: cfg.PendingTimeout + 30*cfg.SweepInterval + time.Minute,
			Logger: s.log.With("component", "traffic"), Seed: uint64(time.Now().UnixNano()),
		}
		if cfg.FaultWindows {
			tc.Windows = []traffic.Window{
				{Fault: traffic.FaultProductRestore, Length: cfg.FaultLength, Every: cfg.FaultEvery},
				{Fault: traffic.FaultOrderPayments, Start: cfg.FaultLength, Length: cfg.FaultLength, Every: cfg.FaultEvery},
			}
			tc.LatePayments = cfg.FaultEvery
		}
		if s.Traffic, err = traffic.New(tc); err != nil {
			return nil, err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.Traffic.Run(runCtx); err != nil {
				s.log.Error("the storefront stopped placing orders", "err", err)
			}
		}()
	}
	return s, nil
}

// prepareState makes the state directory (a temporary one when none is configured).
func (s *Sandbox) prepareState() error {
	dir := s.cfg.StateDir
	if dir == "" {
		// Temporary state left by a sandbox that was killed (kill -9 runs no cleanup) goes now.
		for _, stale := range StaleTempDirs(os.TempDir()) {
			_ = os.RemoveAll(stale)
		}
		tmp, err := os.MkdirTemp("", tempDirPrefix)
		if err != nil {
			return fmt.Errorf("create the sandbox's state directory: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tmp, pidFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			_ = os.RemoveAll(tmp)
			return fmt.Errorf("create the sandbox's state directory: %w", err)
		}
		s.tempDir, dir = tmp, tmp
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(abs, "db"), 0o700); err != nil {
		return fmt.Errorf("create the sandbox's state directory %s: %w", abs, err)
	}
	s.StateDir = abs
	return nil
}

func (s *Sandbox) stateHasRepo() bool {
	_, err := os.Stat(filepath.Join(s.StateDir, "gitops.git", "HEAD"))
	return err == nil
}

// addr is the listen address of the component at offset from PortBase (a free port without one).
func (s *Sandbox) addr(offset int) string {
	if s.cfg.PortBase == 0 {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.PortBase+offset))
}

func (s *Sandbox) onClose(fn func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closers = append(s.closers, fn)
}

// startServices starts the three services on their databases, with the fault hooks in their
// consumers and the compressed sweeper clock.
func (s *Sandbox) startServices(ctx context.Context) (*saga.System, error) {
	dbs := map[string]string{}
	for _, svc := range []string{"order", "payment", "product"} {
		if s.cfg.Postgres != "" {
			u, err := postgresSchema(ctx, s.cfg.Postgres, "opsctl_sandbox_"+svc)
			if err != nil {
				return nil, err
			}
			dbs[svc] = u
			continue
		}
		dbs[svc] = "sqlite:" + filepath.Join(s.StateDir, "db", svc+".db")
	}
	return saga.Start(ctx, saga.Config{
		Brokers: s.Brokers,
		KafkaOpts: []kgo.Opt{
			kgo.FetchMaxWait(500 * time.Millisecond),
			kgo.MetadataMinAge(500 * time.Millisecond),
		},
		OrderDB: dbs["order"], PaymentDB: dbs["payment"], ProductDB: dbs["product"],
		Logger:          s.log,
		Decide:          paymentgateway.DeclineByPrefix(traffic.DeclinePrefix),
		DeliveryTimeout: 10 * time.Second,
		Consumer:        consumer.Config{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second},
		Relay:           outbox.Config{PollInterval: 500 * time.Millisecond},
		Order: func(oc *order.Config) {
			oc.Consumer.Fault = s.Faults.OrderHook
			oc.PendingTimeout, oc.SweepInterval = s.cfg.PendingTimeout, s.cfg.SweepInterval
		},
		Product: func(pc *product.Config) { pc.Consumer.Fault = s.Faults.ProductHook },
	})
}

// postgresSchema creates schema in the database at base (if missing) and returns base selecting
// it through search_path.
func postgresSchema(ctx context.Context, base, schema string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("--postgres %q is not a postgres:// URL", base)
	}
	plain, _, err := store.PoolSize(base)
	if err != nil {
		return "", fmt.Errorf("--postgres: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, plain)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL for the sandbox: %w", err)
	}
	defer func() {
		// The goodbye to the server still goes when cctx has expired; a failed one leaves
		// nothing behind but a connection the server drops.
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(cctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", fmt.Errorf("create schema %s: %w", schema, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// catalogue returns the option ids on sale, creating a catalogue on first start.
func (s *Sandbox) catalogue(ctx context.Context) ([]int64, error) {
	stock, err := s.System.Product.Store().Stock(ctx)
	if err != nil {
		return nil, err
	}
	if len(stock) == 0 {
		opts, err := s.System.SeedCatalog(ctx, 4, 3, 12_000, 1_000_000)
		if err != nil {
			return nil, err
		}
		s.SeededOptions = len(opts)
		for _, o := range opts {
			stock[o.ID] = o.Stock
		}
	}
	ids := make([]int64, 0, len(stock))
	for id := range stock {
		ids = append(ids, id)
	}
	return ids, nil
}

// routeReader reads env's VirtualServices from the simulated cluster through Istio's and
// Kubernetes' clients. The router reads far more often than a CLI, so client-go's default rate
// limit (5 requests/s) is lifted.
func (s *Sandbox) routeReader(env string) (*mesh.Reader, error) {
	rc, err := kube.RESTConfig(config.Kube{Kubeconfig: s.Kubeconfig, Context: KubeContext})
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 500, 1000
	ic, err := istioclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("istio client: %w", err)
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return mesh.New(ic, kc, gitops.Namespace(env)), nil
}

// addTargets gives the simulated Prometheus what a ServiceMonitor and the cluster's exporters
// would: each service's own registry per environment (both environments are served by the same
// in-process services, and v1 and v2 by the same code, so its series carry version v1), the
// mesh's Envoy series, and kube-state-metrics and cAdvisor series of the simulated cluster.
func (s *Sandbox) addTargets() error {
	var errs []error
	add := func(t promsim.Target) { errs = append(errs, s.Prometheus.AddTarget(t)) }
	services := map[string]*service.Runtime{
		order.Name: s.System.Order.Runtime(), "payment-service": s.System.Payment.Runtime(), product.Name: s.System.Product.Runtime(),
	}
	for _, env := range gitops.Environments() {
		ns := gitops.Namespace(env)
		for app, rt := range services {
			add(promsim.Target{Job: app, Instance: rt.Addr(), Gatherer: rt.Metrics.Registry,
				Labels: map[string]string{"namespace": ns, "service": app, "version": mesh.StableSubset, "endpoint": "http"}})
		}
	}
	add(promsim.Target{Job: "envoy-stats", Instance: strings.TrimPrefix(s.MeshURL, "http://"), Gatherer: s.Mesh.Registry()})
	ksm := prometheus.NewRegistry()
	ksm.MustRegister(kubeState{kube: s.Kube})
	add(promsim.Target{Job: "kube-state-metrics", Instance: "kube-state-metrics.monitoring:8080", Gatherer: ksm})
	kubelet := prometheus.NewRegistry()
	kubelet.MustRegister(newCadvisor(s.Kube))
	add(promsim.Target{Job: "kubelet", Instance: "sandbox-node:10250", Gatherer: kubelet,
		Labels: map[string]string{"metrics_path": "/metrics/cadvisor"}})
	return errors.Join(errs...)
}

// Context is the opsctl context for this sandbox.
func (s *Sandbox) Context() *config.Context {
	return &config.Context{
		Kafka:  kafka.Config{Brokers: s.Brokers},
		GitOps: config.GitOps{Repo: s.GitOpsRepo, Dir: s.GitOpsDir, Branch: "main"},
		ArgoCD: config.ArgoCD{Server: s.ArgoAddr, Token: s.ArgoToken, PlainText: true, Namespace: s.Argo.AppNamespace()},
		Kube:   config.Kube{Kubeconfig: s.Kubeconfig, Context: KubeContext},
		// The storefront's few orders a second put about 11 requests a minute on a 10 % canary:
		// a production minimum sample (100) would leave every sandbox verdict unknown. A short
		// bake time keeps the ladder walkable in a session.
		Canary: config.Canary{BakeTime: "1m"},
		Prometheus: config.Prometheus{URL: s.PrometheusURL, MinRequests: 10, Queries: map[string]string{
			// v1 and v2 are the same process in the sandbox, so the canary's business error
			// rate is the service's, over the minute the production query reads.
			canary.GateQueryBusinessErrors: `(sum(rate(saga_business_errors_total{namespace="{{.Namespace}}",service="{{.App}}"}[1m])) or vector(0))` +
				` / sum(rate(saga_http_requests_total{namespace="{{.Namespace}}",service="{{.App}}"}[1m]))`,
		}},
		Services: map[string]string{
			"order": s.System.Order.URL(), "payment": s.System.Payment.URL(), "product": s.System.Product.URL(),
		},
		Simulated: true,
	}
}

// WaitReady waits until the sandbox shows what an operator comes for: a SAGA dead-letter topic
// holds a record (with fault windows or a kept state; without either there is none to wait
// for), and every Argo CD Application is Synced and Healthy with its VirtualService live (the
// canary board has every service).
func (s *Sandbox) WaitReady(ctx context.Context) error {
	adm := kadm.NewClient(s.admin)
	wantDLT := s.cfg.FaultWindows && s.cfg.Rate > 0
	var why string
	for {
		var n int64
		var err error
		if wantDLT {
			n, err = dltRecords(ctx, adm)
		}
		switch {
		case err != nil:
			why = "reading the dead-letter topics: " + err.Error()
		case wantDLT && n == 0:
			why = "no dead letter yet"
		default:
			why = s.appsPending()
		}
		if why == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the sandbox is not ready (%s): %w", why, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// appsPending says which Application is not Synced and Healthy yet, or which service has no live
// VirtualService; "" when all are.
func (s *Sandbox) appsPending() string {
	apps := s.Kube.List(gvrApplications, s.Argo.AppNamespace(), nil)
	if len(apps) == 0 {
		return "no Argo CD Application yet"
	}
	for _, a := range apps {
		syncStatus, _, _ := unstructured.NestedString(a.Object, "status", "sync", "status")
		health, _, _ := unstructured.NestedString(a.Object, "status", "health", "status")
		if syncStatus != "Synced" || health != "Healthy" {
			return fmt.Sprintf("Application %s is %s/%s", a.GetName(), orUnknown(syncStatus), orUnknown(health))
		}
	}
	for _, env := range gitops.Environments() {
		for _, svc := range gitops.Services() {
			if _, err := s.Kube.Get(gvrVirtualServices, gitops.Namespace(env), gitops.AppName(svc)); err != nil {
				return fmt.Sprintf("VirtualService %s/%s not live yet", gitops.Namespace(env), gitops.AppName(svc))
			}
		}
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "Unknown"
	}
	return s
}

// Close stops everything, in reverse order of start, and removes a temporary state directory.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	closers := s.closers
	s.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	if s.tempDir != "" {
		if err := os.RemoveAll(s.tempDir); err != nil {
			errs = append(errs, fmt.Errorf("remove the sandbox's state: %w", err))
		}
	}
	return errors.Join(errs...)
}

// randomToken is a bearer token for one run of a simulated API.
func randomToken() string {
	return "sandbox-" + strings.ReplaceAll(uuid.NewString(), "-", "")
}
