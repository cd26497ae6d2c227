// Package sandbox implements `opsctl sandbox`: the whole platform — Kafka, the SAGA services, a
// storefront with fault windows, a GitOps repository, a simulated Argo CD, Kubernetes API,
// Istio data plane and Prometheus — in this one process on 127.0.0.1, with a `sandbox` context
// written so every opsctl command (and the TUI) works against it.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/sim/meshsim"
	"github.com/come2us/opsctl/pkg/sim/sandbox"
)

// TUIFunc opens the TUI with f (whose context is the sandbox's) and returns when the user quits.
type TUIFunc func(ctx context.Context, f *cmdutil.Factory) error

// SandboxOptions are the inputs of `opsctl sandbox`.
type SandboxOptions struct {
	Factory *cmdutil.Factory
	Ctx     context.Context
	// RunTUI opens the TUI once the sandbox is ready (nil: the sandbox runs headless).
	RunTUI TUIFunc
	// ConfigFile, when set (--config), is a config file the sandbox writes its context into and
	// takes it out of on exit; by default the sandbox writes a config file of its own, in its
	// state directory, and never touches the user's.
	ConfigFile string

	Headless     bool
	StateDir     string
	Postgres     string
	GitOpsDir    string
	PortBase     int
	Rate         float64
	DeclineRatio float64
	CouponRatio  float64
	NoFaults     bool
	NoAgent      bool
	FaultEvery   time.Duration
	CanaryFaults []string
	// CanaryUnready names [ENV/]SERVICE whose canary pods fail readiness.
	CanaryUnready []string
	ReadyTimeout  time.Duration

	// Started is when the command began, for the start-up time it reports.
	Started time.Time
	// faults are CanaryFaults parsed; unready CanaryUnready as env and service pairs.
	faults  map[meshsim.FaultKey]meshsim.Fault
	unready [][2]string
}

// NewCmdSandbox returns `opsctl sandbox`. runTUI opens the TUI on the sandbox (nil: headless
// only); runF replaces the run in tests.
func NewCmdSandbox(f *cmdutil.Factory, runTUI TUIFunc, runF func(*SandboxOptions) error) *cobra.Command {
	opts := &SandboxOptions{Factory: f, RunTUI: runTUI}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the whole platform on this machine, simulated, and work on it",
		Long: `Run the whole COME2US platform in this one process on 127.0.0.1 — nothing to install but Go and git:

  Kafka        kfake, 3 brokers, the SAGA topics (3 partitions), their dead-letter topics, the
               replay ledger opsctl.replays, and a few Spring Kafka and Kafka Connect dead letters
  services     order-, payment- and product-service, the real code, on SQLite in the state
               directory (or PostgreSQL with --postgres)
  traffic      a storefront placing orders (--rate), a share of payments declined, and fault
               windows that make real dead letters: product-service cannot restore stock, then
               order-service cannot apply payment failures; and late payments for orders the
               PENDING sweeper already cancelled, which payment-service refuses (ORDER_NOT_PAYABLE)
  GitOps       a bare repository and a working copy seeded from the repository's gitops/ tree
  Argo CD      simulated: argo-cd's own gRPC API, syncing the repository into a simulated
               Kubernetes API with simulated pods
  mesh         simulated Envoy: traffic split by the live VirtualService weights, Istio's
               metrics, fault injection on a subset (--canary-fault, or PUT /-/faults/...)
  Prometheus   simulated: the real PromQL engine over the services', mesh's and cluster's metrics
  agent        opsctl agent, the real code, alone, with the built-in redrive policy: the fault
               windows' lock timeouts and lost connections are redriven a minute later, as
               runs of opsctl-agent@sandbox (dlt history, the TUI's DLT screens)

It writes the context "sandbox" into a config file of its own, opsctl.yaml in its state
directory, prints the addresses, and opens the TUI on it; with --headless it keeps running until
Ctrl-C, and "export OPSCTL_CONFIG=STATE/opsctl.yaml" makes every opsctl command of another shell
work on it. Your own config file is never changed, so nothing points at the sandbox once it is
gone, however it ends (even kill -9). With --config FILE it writes the context into FILE too
and takes it out again on exit. Everything simulated says so.

The state (Kafka's log, the databases, the GitOps repository, the log file, the config file)
lives in a temporary directory removed on exit; --state DIR keeps it between runs. A temporary
directory left by a sandbox that was killed is removed by the next one.

v1 and v2 of a service are the same in-process code; the mesh tells them apart, and
--canary-fault (or --canary-unready) makes v2 misbehave so canary gates and "canary watch
--auto-rollback" have something to catch. The services' own metrics carry version v1; the
sandbox context's Prometheus queries judge the canary's business error rate on the whole
service for that reason.`,
		Example: `  # Start it and open the TUI
  opsctl sandbox

  # Start it for scripts and other shells, keeping the state
  opsctl sandbox --headless --state ~/.cache/opsctl-sandbox

  # A canary of order-service that is slow and fails 5% of its requests
  opsctl sandbox --canary-fault order:delay=300ms,errors=0.05

  # The same, set while it runs, through the simulated mesh's admin API
  curl -X PUT -d '{"delay":"300ms","errorRatio":0.05}' MESH_URL/-/faults/prod/order-service/v2

  # A canary whose pods never become ready in prod
  opsctl sandbox --canary-unready prod/payment`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Ctx = cmd.Context()
			if fl := cmd.Flag("config"); fl != nil && fl.Changed {
				opts.ConfigFile = f.ConfigPath
			}
			if opts.Started.IsZero() {
				opts.Started = time.Now()
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return sandboxRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Headless, "headless", false, "do not open the TUI: print the addresses and run until interrupted")
	fl.StringVar(&opts.StateDir, "state", "", "keep Kafka's log, the databases and the GitOps repository in DIR between runs (default: a temporary directory removed on exit)")
	fl.StringVar(&opts.Postgres, "postgres", "", "run the services on this PostgreSQL database (schemas opsctl_sandbox_*) instead of SQLite")
	fl.StringVar(&opts.GitOpsDir, "gitops", "", "the gitops/ tree to seed the repository from (default: found from the working directory)")
	fl.IntVar(&opts.PortBase, "port-base", 0, "fixed ports: Kafka PORT..PORT+2, Prometheus +3, mesh +4, Argo CD +5, Kubernetes +6 (default: free ports)")
	fl.Float64Var(&opts.Rate, "rate", 4, "orders per second the storefront places (0: no traffic)")
	fl.Float64Var(&opts.DeclineRatio, "decline-ratio", 0.2, "share of payments the payment gateway declines, 0 to 1")
	fl.Float64Var(&opts.CouponRatio, "coupon-ratio", 0.25, "share of orders using a coupon, 0 to 1")
	fl.BoolVar(&opts.NoFaults, "no-faults", false, "no fault windows and no late payments: no new dead letters")
	fl.BoolVar(&opts.NoAgent, "no-agent", false, "do not run the opsctl agent (no automatic redrive of dead letters)")
	fl.DurationVar(&opts.FaultEvery, "fault-every", 10*time.Minute, "how often the fault windows and a late payment recur (the first at start)")
	fl.StringArrayVar(&opts.CanaryFaults, "canary-fault", nil, "inject a fault into a service's v2 subset: [ENV/]SERVICE:delay=DURATION,errors=RATIO[,status=CODE] (repeatable)")
	fl.StringArrayVar(&opts.CanaryUnready, "canary-unready", nil, "make a service's canary (v2) pods fail readiness: [ENV/]SERVICE (repeatable)")
	fl.DurationVar(&opts.ReadyTimeout, "ready-timeout", 2*time.Minute, "how long to wait for the first dead letters and synced apps before giving up")
	return cmd
}

func (o *SandboxOptions) validate() error {
	switch {
	case o.Rate < 0 || o.Rate > 200:
		return cmdutil.FlagErrorf("--rate %v: want 0 to 200 orders per second", o.Rate)
	case o.DeclineRatio < 0 || o.DeclineRatio > 1:
		return cmdutil.FlagErrorf("--decline-ratio %v: want a share between 0 and 1", o.DeclineRatio)
	case o.CouponRatio < 0 || o.CouponRatio > 1:
		return cmdutil.FlagErrorf("--coupon-ratio %v: want a share between 0 and 1", o.CouponRatio)
	case o.PortBase < 0 || o.PortBase > 65535-6:
		return cmdutil.FlagErrorf("--port-base %d: want a port from 1 to %d (it uses 7 ports from there)", o.PortBase, 65535-6)
	case o.FaultEvery < 30*time.Second:
		return cmdutil.FlagErrorf("--fault-every %s: want at least 30s (each window lasts 6s and a late payment needs the sweeper)", o.FaultEvery)
	case o.ReadyTimeout <= 0:
		return cmdutil.FlagErrorf("--ready-timeout %s: want a positive duration", o.ReadyTimeout)
	}
	o.faults = map[meshsim.FaultKey]meshsim.Fault{}
	for _, spec := range o.CanaryFaults {
		keys, f, err := parseCanaryFault(spec)
		if err != nil {
			return cmdutil.FlagErrorf("--canary-fault %q: %v", spec, err)
		}
		for _, k := range keys {
			o.faults[k] = f
		}
	}
	o.unready = nil
	for _, spec := range o.CanaryUnready {
		envs, svc := gitops.Environments(), spec
		if env, s, found := strings.Cut(spec, "/"); found {
			envs, svc = []string{env}, s
		}
		svc = strings.TrimSuffix(svc, "-service")
		for _, env := range envs {
			if err := gitops.ValidateTarget(env, svc); err != nil {
				return cmdutil.FlagErrorf("--canary-unready %q: %v", spec, err)
			}
			o.unready = append(o.unready, [2]string{env, svc})
		}
	}
	return nil
}

// parseCanaryFault reads [ENV/]SERVICE:delay=D,errors=R[,status=N].
func parseCanaryFault(spec string) ([]meshsim.FaultKey, meshsim.Fault, error) {
	target, settings, ok := strings.Cut(spec, ":")
	if !ok || settings == "" {
		return nil, meshsim.Fault{}, errors.New("want [ENV/]SERVICE:delay=DURATION,errors=RATIO[,status=CODE]")
	}
	envs := gitops.Environments()
	svc := target
	if env, s, found := strings.Cut(target, "/"); found {
		envs, svc = []string{env}, s
	}
	for _, env := range envs {
		if err := gitops.ValidateTarget(env, strings.TrimSuffix(svc, "-service")); err != nil {
			return nil, meshsim.Fault{}, err
		}
	}
	var f meshsim.Fault
	for _, kv := range strings.Split(settings, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		var err error
		switch k {
		case "delay":
			f.Delay, err = time.ParseDuration(v)
			if err == nil && (f.Delay < 0 || f.Delay > time.Minute) {
				err = errors.New("want 0 to 1m")
			}
		case "errors":
			f.ErrorRatio, err = strconv.ParseFloat(v, 64)
			if err == nil && (f.ErrorRatio < 0 || f.ErrorRatio > 1) {
				err = errors.New("want a share between 0 and 1")
			}
		case "status":
			f.Status, err = strconv.Atoi(v)
			if err == nil && (f.Status < 400 || f.Status > 599) {
				err = errors.New("want a 4xx or 5xx code")
			}
		default:
			err = errors.New("unknown setting (want delay, errors or status)")
		}
		if err != nil {
			return nil, meshsim.Fault{}, fmt.Errorf("%s=%s: %v", k, v, err)
		}
	}
	if f.IsZero() {
		return nil, meshsim.Fault{}, errors.New("no delay and no errors: nothing to inject")
	}
	var keys []meshsim.FaultKey
	for _, env := range envs {
		keys = append(keys, meshsim.FaultKey{Env: env, App: gitops.AppName(strings.TrimSuffix(svc, "-service")), Version: "v2"})
	}
	return keys, f, nil
}

func sandboxRun(o *SandboxOptions) error {
	f := o.Factory
	out := f.IOStreams.Out
	// A config file named with --config is read first: one that cannot be read stops the
	// sandbox before anything starts.
	var shared *config.Config
	if o.ConfigFile != "" {
		var err error
		if shared, err = config.Load(o.ConfigFile); err != nil {
			return fmt.Errorf("%w (nothing was started)", err)
		}
	}

	fmt.Fprintln(f.IOStreams.ErrOut, "Starting the sandbox…")
	sb, err := sandbox.Start(o.Ctx, sandbox.Config{
		StateDir: o.StateDir, Postgres: o.Postgres, GitOpsSource: o.GitOpsDir, PortBase: o.PortBase,
		Rate: o.Rate, DeclineRatio: o.DeclineRatio, CouponRatio: o.CouponRatio,
		FaultWindows: !o.NoFaults, FaultEvery: o.FaultEvery, LogFile: true, Agent: !o.NoAgent,
	})
	if err != nil {
		return fmt.Errorf("start the sandbox: %w (nothing is left running)", err)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		fmt.Fprintln(f.IOStreams.ErrOut, "Stopping the sandbox…")
		return sb.Close()
	}
	defer func() { _ = stop() }()
	for k, fault := range o.faults {
		if err := sb.Mesh.SetFault(k, fault); err != nil {
			return err
		}
	}
	for _, u := range o.unready {
		if err := sb.Argo.SetCanaryReady(u[0], u[1], false); err != nil {
			return err
		}
	}

	// The sandbox's own config file: it lives and dies with the state directory.
	own, err := config.Load(filepath.Join(sb.StateDir, OwnConfigFile))
	if err != nil {
		return err
	}
	own.Contexts = map[string]*config.Context{sandbox.ContextName: sb.Context()}
	own.CurrentContext = sandbox.ContextName
	if err := own.Save(); err != nil {
		return fmt.Errorf("write the sandbox's config file: %w", err)
	}
	if shared != nil {
		restore, err := writeContext(shared, sb.Context(), o.StateDir == "")
		if err != nil {
			return err
		}
		defer func() {
			if err := restore(); err != nil {
				fmt.Fprintf(f.IOStreams.ErrOut, "warning: %v\n", err)
			}
		}()
	}
	printEndpoints(out, o, sb, own.File())

	rctx, cancel := context.WithTimeout(o.Ctx, o.ReadyTimeout)
	err = sb.WaitReady(rctx)
	cancel()
	if err != nil {
		if o.Ctx.Err() != nil {
			return stop()
		}
		return fmt.Errorf("%w; the log is %s (stopping everything)", err, sb.LogPath)
	}
	what := "dead letters are arriving and every Argo CD app is Synced and Healthy"
	if o.NoFaults || o.Rate == 0 {
		what = "every Argo CD app is Synced and Healthy"
	}
	fmt.Fprintf(out, "\nReady in %.1fs: %s.\n", time.Since(o.Started).Seconds(), what)

	if !o.Headless && o.RunTUI != nil && f.IOStreams.IsStdoutTTY() {
		tf := &cmdutil.Factory{IOStreams: f.IOStreams, ConfigPath: own.File(), ContextName: sandbox.ContextName,
			Readonly: f.Readonly, Output: f.Output, Now: f.Now}
		tuiErr := o.RunTUI(o.Ctx, tf)
		return errors.Join(tuiErr, stop())
	}
	if !o.Headless {
		fmt.Fprintln(out, "(The TUI is not available in this build or stdout is not a terminal: running headless.)")
	}
	fmt.Fprintf(out, `
Try, from another shell:
  export OPSCTL_CONFIG=%[1]s
  opsctl dlt topics
  opsctl canary status order --env prod
  opsctl apps list
Ctrl-C stops everything.
`, own.File())
	<-o.Ctx.Done()
	return stop()
}

// OwnConfigFile is the name of the sandbox's own config file in its state directory.
const OwnConfigFile = "opsctl.yaml"

// writeContext stores the sandbox context in the config file (making it current when no context
// is) and returns how to undo that: a temporary sandbox takes its context with it, a kept one
// leaves it for the next run to overwrite.
func writeContext(cfg *config.Config, c *config.Context, temporary bool) (func() error, error) {
	prevCurrent := cfg.CurrentContext
	cfg.Contexts[sandbox.ContextName] = c
	if cfg.CurrentContext == "" {
		cfg.CurrentContext = sandbox.ContextName
	}
	if err := cfg.Save(); err != nil {
		return nil, fmt.Errorf("write the sandbox context: %w", err)
	}
	return func() error {
		if !temporary {
			return nil
		}
		fresh, err := config.Load(cfg.File())
		if err != nil {
			return fmt.Errorf("remove the sandbox context: %w", err)
		}
		delete(fresh.Contexts, sandbox.ContextName)
		if fresh.CurrentContext == sandbox.ContextName {
			fresh.CurrentContext = prevCurrent
		}
		if err := fresh.Save(); err != nil {
			return fmt.Errorf("remove the sandbox context: %w", err)
		}
		return nil
	}, nil
}

// agentRow describes the sandbox's agent for the endpoint list.
func agentRow(sb *sandbox.Sandbox) string {
	if sb.Agent == nil {
		return "not running (--no-agent)"
	}
	return sb.AgentURL + "  (/status, /metrics; redrives with the built-in policy)"
}

func printEndpoints(w io.Writer, o *SandboxOptions, sb *sandbox.Sandbox, cfgPath string) {
	state := sb.StateDir
	if o.StateDir == "" {
		state += " (temporary, removed on exit)"
	}
	fmt.Fprintf(w, "opsctl sandbox — the COME2US platform on this machine; Argo CD, Kubernetes, the mesh and Prometheus are simulated\n\n")
	rows := [][2]string{
		{"Kafka (kfake, 3 brokers)", strings.Join(sb.Brokers, ",")},
		{"Argo CD API (simulated)", sb.ArgoAddr + "  (gRPC, plaintext; token in the context)"},
		{"Kubernetes API (simulated)", sb.KubeURL + "  (kubeconfig " + sb.Kubeconfig + ", context " + sandbox.KubeContext + ")"},
		{"Prometheus API (simulated)", sb.PrometheusURL},
		{"Mesh router (simulated)", sb.MeshURL + "  (faults: PUT " + sb.MeshURL + "/-/faults/ENV/SERVICE-service/v2)"},
		{"order-service", sb.System.Order.URL()},
		{"payment-service", sb.System.Payment.URL()},
		{"product-service", sb.System.Product.URL()},
		{"GitOps repository", sb.GitOpsRepo + "  (working copy " + sb.GitOpsDir + ")"},
		{"opsctl agent", agentRow(sb)},
		{"State", state},
		{"Log", sb.LogPath},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-28s %s\n", r[0], r[1])
	}
	fmt.Fprintln(w)
	if o.Rate > 0 {
		fmt.Fprintf(w, "Traffic: %g orders/s in prod and dev, %g%% of payments declined", o.Rate, o.DeclineRatio*100)
		if !o.NoFaults {
			fmt.Fprintf(w, "; every %s: product-service cannot restore stock for 6s, then order-service cannot apply payment failures for 6s, and one late payment", o.FaultEvery)
		}
		fmt.Fprintln(w, ".")
	}
	for k, f := range sb.Mesh.Faults() {
		fmt.Fprintf(w, "Canary fault on %s/%s %s: delay %s, %g%% errors.\n", k.Env, k.App, k.Version, f.Delay, f.ErrorRatio*100)
	}
	for _, u := range o.unready {
		fmt.Fprintf(w, "Canary pods of %s in %s fail readiness.\n", gitops.AppName(u[1]), u[0])
	}
	if sb.SeededDeadLetters > 0 {
		fmt.Fprintf(w, "Seeded %d Spring Kafka and Kafka Connect dead letters (%s, %s).\n", sb.SeededDeadLetters, sandbox.SpringDLT, sandbox.ConnectDLT)
	}
	fmt.Fprintf(w, "Context %q written to %s (its own config file: yours is not changed", sandbox.ContextName, cfgPath)
	if o.ConfigFile != "" {
		fmt.Fprintf(w, "; also to %s until the sandbox stops", o.ConfigFile)
	}
	fmt.Fprintln(w, ").")
}
