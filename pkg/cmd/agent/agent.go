// Package agent implements `opsctl agent`: the long-running in-cluster process that redrives
// transient dead letters, exports the dead-letter topics' state as Prometheus metrics and
// guards every running canary, leader-elected among its replicas. The work is in pkg/agent
// (the runner), pkg/redrive (the redrive loops) and pkg/rollout (the canary guard); here are
// flags, configuration and wiring.
package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/come2us/opsctl/pkg/agent"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/kube"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/redrive"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/rollout"
	"github.com/come2us/opsctl/pkg/secret"
)

// Leader election modes of --leader-elect.
const (
	electAuto   = "auto"
	electAlways = "always"
	electNever  = "never"
)

// Options are the inputs of `opsctl agent`.
type Options struct {
	Factory *cmdutil.Factory

	Policy         string
	PassInterval   time.Duration
	SurveyInterval time.Duration
	Window         time.Duration
	Listen         string
	LogFormat      string
	Timeout        time.Duration

	LeaderElect    string
	LeaseName      string
	LeaseNamespace string
	LeaseDuration  time.Duration
	RenewDeadline  time.Duration
	RetryPeriod    time.Duration
	KubeTimeout    time.Duration

	// CanaryGuard is --canary-guard: auto, always or never.
	CanaryGuard    string
	CanaryInterval time.Duration
	CanaryEnvs     []string

	// Getenv reads the environment (POD_NAME, POD_NAMESPACE, KUBERNETES_SERVICE_HOST); tests
	// replace it.
	Getenv func(string) string
	// Listener, when set, serves the endpoints instead of listening on --listen (tests).
	Listener net.Listener
}

// NewCmdAgent returns `opsctl agent`.
func NewCmdAgent(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f, Getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the in-cluster agent: automatic redrive of transient dead letters, DLT metrics, the canary guard",
		Long: `Run until stopped, applying the redrive policy every --interval (as opsctl dlt redrive
does) and surveying every dead-letter topic every --survey-interval for the metrics: per DLT
its records, growth per hour, oldest age, records waiting for an operator (and since when),
records waiting for their backoff step, redriven records and those that came back.

The canary guard (--canary-guard) judges every running canary of the environments of
--canary-envs every --canary-interval on the design's rollback criteria, as canary watch
--auto-rollback does, and commits the rollback itself, through a clone of the GitOps
repository of its own and as the agent, when a breach holds for canary.failureLimit
consecutive rounds (default 2). Unknown criteria never roll back. With auto (the default) it
runs when the context names a GitOps repository (gitops.repo) and a Prometheus.

With several replicas exactly one acts: they elect a leader on a coordination.k8s.io Lease
(--lease-name in --lease-namespace). With --leader-elect auto (the default) the agent elects
when it runs in a Kubernetes pod or the context names a kube context; otherwise it runs
alone. Leadership only decides who works: every redrive is a replay run that fences any
other replay of its DLT in Kafka, so a record goes out exactly once even while a deposed
leader finishes.

Endpoints on --listen: /healthz (alive), /readyz (503 while the broker, the Kubernetes API or
the policy is failing: the agent keeps retrying and never exits on them), /status (JSON),
/metrics (Prometheus). A changed policy file is applied within one interval; one that is not
valid is refused with its lines, reported (/readyz, opsctl_agent_policy_valid 0) and the last
good policy stays in force. SIGTERM stops the loops, then releases the lease.`,
		Example: `  # In a pod (gitops/charts/opsctl-agent): the policy from a mounted ConfigMap
  opsctl agent --policy /etc/opsctl/policy/redrive-policy.yaml

  # On a laptop against the sandbox, alone, with the built-in policy
  opsctl --context sandbox agent --policy default --listen 127.0.0.1:9090`,
		Args: cmdutil.UsageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return run(cmd, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Policy, "policy", "", `redrive policy file (re-read when it changes), or "default" for the built-in policy (default: the context's redrive section)`)
	fl.DurationVar(&opts.PassInterval, "interval", 30*time.Second, "pause between redrive passes")
	fl.DurationVar(&opts.SurveyInterval, "survey-interval", time.Minute, "pause between surveys of the dead-letter topics (the metrics)")
	fl.DurationVar(&opts.Window, "window", redrive.DefaultWindow, "how far back redrive runs count for the redriven and came-back metrics")
	fl.StringVar(&opts.Listen, "listen", ":9090", "address of the health and metrics endpoints")
	fl.StringVar(&opts.LogFormat, "log-format", "json", "log format on stderr: json or text")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "stop an operation when a Kafka broker has not answered for this long (default: the context's dlt.timeout, else 30s)")
	fl.StringVar(&opts.LeaderElect, "leader-elect", electAuto, "elect a leader on a Kubernetes Lease: auto, always or never")
	fl.StringVar(&opts.LeaseName, "lease-name", "opsctl-agent", "name of the Lease the replicas elect their leader on")
	fl.StringVar(&opts.LeaseNamespace, "lease-namespace", "", "namespace of the Lease (default: $POD_NAMESPACE, the pod's namespace, or the context's kube.namespace)")
	fl.DurationVar(&opts.LeaseDuration, "lease-duration", agent.DefaultLeaseDuration, "how long a lease lasts unrenewed before another replica takes over")
	fl.DurationVar(&opts.RenewDeadline, "renew-deadline", agent.DefaultRenewDeadline, "how long the leader tries to renew before it stops its loops")
	fl.DurationVar(&opts.RetryPeriod, "retry-period", agent.DefaultRetryPeriod, "how often the lease is renewed or tried")
	fl.DurationVar(&opts.KubeTimeout, "kube-timeout", 5*time.Second, "deadline of every Kubernetes API request")
	fl.StringVar(&opts.CanaryGuard, "canary-guard", guardAuto, "guard running canaries and roll them back on a breach: auto (when the context has gitops.repo and prometheus.url), always or never")
	fl.DurationVar(&opts.CanaryInterval, "canary-interval", rollout.FleetGuardInterval, "pause between two rounds of the canary guard")
	fl.StringSliceVar(&opts.CanaryEnvs, "canary-envs", nil, "environments whose canaries the guard watches (default: all)")
	return cmd
}

func (o *Options) validate() error {
	for name, d := range map[string]time.Duration{"--interval": o.PassInterval, "--survey-interval": o.SurveyInterval,
		"--window": o.Window, "--lease-duration": o.LeaseDuration, "--renew-deadline": o.RenewDeadline,
		"--retry-period": o.RetryPeriod, "--kube-timeout": o.KubeTimeout, "--canary-interval": o.CanaryInterval} {
		if d <= 0 {
			return cmdutil.FlagErrorf("%s %s: want a positive duration", name, d)
		}
	}
	if o.Timeout < 0 {
		return cmdutil.FlagErrorf("--timeout %s: want a positive duration", o.Timeout)
	}
	switch o.LeaderElect {
	case electAuto, electAlways, electNever:
	default:
		return cmdutil.FlagErrorf("--leader-elect %q: want auto, always or never", o.LeaderElect)
	}
	switch o.CanaryGuard {
	case guardAuto, guardAlways, guardNever:
	default:
		return cmdutil.FlagErrorf("--canary-guard %q: want auto, always or never", o.CanaryGuard)
	}
	if err := validEnvs(o.CanaryEnvs); err != nil {
		return err
	}
	switch o.LogFormat {
	case "json", "text":
	default:
		return cmdutil.FlagErrorf("--log-format %q: want json or text", o.LogFormat)
	}
	if o.LeaseDuration <= o.RenewDeadline || float64(o.RenewDeadline) <= 1.2*float64(o.RetryPeriod) {
		return cmdutil.FlagErrorf("--lease-duration %s, --renew-deadline %s, --retry-period %s: want lease > renew deadline > 1.2 × retry period",
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	return nil
}

func run(cmd *cobra.Command, o *Options) error {
	f := o.Factory
	// The agent replays: a read-only context (or --readonly) never runs one.
	if err := f.CheckWritable(); err != nil {
		return err
	}
	name, cctx, err := f.Context()
	if err != nil {
		return err
	}
	cfgFile, err := f.Config()
	if err != nil {
		return err
	}
	src, err := redrive.Resolve(o.Policy, cctx, name, cfgFile.File())
	if errors.Is(err, redrive.ErrInvalid) || errors.Is(err, redrive.ErrNoPolicy) {
		return cmdutil.FlagErrorf("%v", err)
	}
	if err != nil {
		return err
	}
	guard, whyNot, err := o.guardWanted(cctx)
	if err != nil {
		return err
	}
	logger := newLogger(f, o.LogFormat)
	id := agent.NewIdentity(o.Getenv("POD_NAME"))
	election, err := o.election(cctx, id)
	if err != nil {
		return err
	}
	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return cmdutil.FlagErrorf("--listen %s: %v; nothing was started", o.Listen, err)
		}
	}
	defer ln.Close()

	now := f.Now
	if now == nil {
		now = time.Now
	}
	ecfg := cmdutil.ReplayConfig(cctx, f.KafkaClient, id.Actor, now)
	if o.Timeout > 0 {
		ecfg.Timeout = o.Timeout
	}
	ecfg.Logger = logger.With("component", "replay")
	engine, err := replay.New(ecfg)
	if err != nil {
		return err
	}
	defer engine.Close()

	m := metrics.NewAgent()
	// The loops report the policy's health to the agent that runs them; they run only once
	// it exists.
	var a *agent.Agent
	loops := redrive.Loops(redrive.AgentConfig{
		Engine: engine, Policy: src, Clock: now, Metrics: m, Identity: id.Actor,
		Report: func(component string, err error) { a.Report(component, err) },
		Logger: logger.With("component", "redrive"), PassInterval: o.PassInterval, SurveyInterval: o.SurveyInterval, Window: o.Window,
	})
	if guard {
		loops = append(loops, o.guardLoop(cctx, id, logger.With("component", "canary-guard")))
	} else {
		logger.Info("canary guard off", "why", whyNot)
	}
	if a, err = agent.New(agent.Config{Identity: id, Election: election, Metrics: m, Logger: logger, Loops: loops}); err != nil {
		return err
	}
	ctx := cmd.Context()
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.Serve(ctx, ln) }()
	role := "alone"
	if election != nil {
		role = fmt.Sprintf("leader-elected on lease %s/%s", election.Namespace, election.Name)
	}
	logger.Info("opsctl agent running", "identity", id.ID, "actor", id.Actor, "mode", role, "listen", ln.Addr().String(), "context", name, "canary_guard", guard)
	runErr := a.Run(ctx)
	return errors.Join(runErr, <-serveErr)
}

// election returns the leader election to run, or nil to run alone.
func (o *Options) election(cctx *config.Context, id agent.Identity) (*agent.Election, error) {
	inCluster := o.Getenv("KUBERNETES_SERVICE_HOST") != ""
	configured := cctx.Kube.Kubeconfig != "" || cctx.Kube.Context != ""
	switch {
	case o.LeaderElect == electNever:
		return nil, nil
	case o.LeaderElect == electAuto && !inCluster && !configured:
		return nil, nil
	}
	var rc *rest.Config
	var err error
	if inCluster && !configured {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = kube.RESTConfig(cctx.Kube)
	}
	if err != nil {
		return nil, fmt.Errorf("leader election needs the Kubernetes API: %w (--leader-elect never runs one agent alone)", err)
	}
	rc.Timeout = o.KubeTimeout
	rc.UserAgent = "opsctl-agent/" + id.Actor
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ns := o.LeaseNamespace
	if ns == "" {
		ns = o.Getenv("POD_NAMESPACE")
	}
	if ns == "" && inCluster {
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	if ns == "" {
		ns = cctx.Kube.Namespace
	}
	if ns == "" {
		return nil, cmdutil.FlagErrorf("leader election: pass --lease-namespace (no $POD_NAMESPACE and no kube.namespace in the context)")
	}
	return &agent.Election{Client: cs.CoordinationV1(), Namespace: ns, Name: o.LeaseName,
		LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod}, nil
}

// newLogger logs to stderr, JSON for log collectors or text for a terminal, secrets masked.
func newLogger(f *cmdutil.Factory, format string) *slog.Logger {
	opts := &slog.HandlerOptions{ReplaceAttr: secret.NewFields().SlogReplacer()}
	if format == "text" {
		return slog.New(slog.NewTextHandler(f.IOStreams.ErrOut, opts))
	}
	return slog.New(slog.NewJSONHandler(f.IOStreams.ErrOut, opts))
}
