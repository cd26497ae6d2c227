// Package tui implements `opsctl tui` — and `opsctl` with no arguments on a terminal — the
// keyboard-first console on-call engineers live in: dead letters, canaries, Argo CD
// applications and order traces, built from the selected context with the same packages and
// openers the CLI commands use.
package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	pcanary "github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/services/order/orderapi"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/app"
	tuiapps "github.com/come2us/opsctl/tui/apps"
	tuicanary "github.com/come2us/opsctl/tui/canary"
	tuidlt "github.com/come2us/opsctl/tui/dlt"
	tuihistory "github.com/come2us/opsctl/tui/history"
	tuitrace "github.com/come2us/opsctl/tui/trace"
	"github.com/come2us/opsctl/tui/view"
)

// Options are the inputs of `opsctl tui`.
type Options struct {
	Factory *cmdutil.Factory
	// Start is the palette line opened first ("dlt", "canary", "apps", "trace 42"); empty
	// picks the first view the context can serve.
	Start string
}

// NewCmdTUI returns `opsctl tui [VIEW [ARGS]]`.
func NewCmdTUI(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "tui [dlt | canary | apps | trace ORDER_ID]",
		Short: "Open the terminal console: dead letters, canaries, Argo CD apps and order traces",
		Long: `Open the terminal console on the selected context. opsctl with no arguments on a terminal
does the same.

Keys work as in k9s: ':' opens the command palette (:dlt, :history [DLT], :canary, :apps,
:trace ORDER_ID, :ctx NAME), '/' filters, '?' lists every key of the current view, esc goes back, q or ctrl+c
quits. With --readonly (or a read-only context) every key that would change something is hidden
and refused; a replay dry run (R) stays available.`,
		Example: `  opsctl tui
  opsctl tui canary --context prod
  opsctl tui trace 4242 --readonly`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Start = strings.Join(args, " ")
			if !f.IOStreams.IsStdinTTY() || !f.IOStreams.IsStdoutTTY() {
				return cmdutil.FlagErrorf("opsctl tui needs a terminal on stdin and stdout; use the dlt, canary and apps commands in scripts")
			}
			if runF != nil {
				return runF(opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	return cmd
}

// Run opens the TUI for f's selected context and blocks until the user quits or ctx ends. It
// is the hook for callers outside the command tree: `opsctl sandbox` calls it with a Factory
// pointing at its simulated context.
func Run(ctx context.Context, f *cmdutil.Factory) error {
	return run(ctx, &Options{Factory: f})
}

func run(ctx context.Context, opts *Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := newSession(ctx, opts.Factory)
	if err != nil {
		return err
	}
	defer s.close()
	m, err := s.model(opts.Start) //nolint:contextcheck // s carries ctx (newSession) to the views it builds
	if err != nil {
		return err
	}
	ios := opts.Factory.IOStreams
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(ios.In), tea.WithOutput(ios.Out),
		tea.WithAltScreen(), tea.WithMouseCellMotion())
	_, err = p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // interrupted from outside (SIGTERM, the sandbox stopping): a normal end
	}
	if err != nil {
		return fmt.Errorf("tui: %w", err)
	}
	return nil
}

// session is the TUI's connection to one context: the backends the views share, opened lazily
// (inside the views' commands, never in Update) and closed when the context is left or the TUI
// ends.
type session struct {
	ctx      context.Context
	base     *cmdutil.Factory
	readonly bool // the --readonly flag as given, before a context could add its own

	mu     sync.Mutex
	f      *cmdutil.Factory
	name   string
	cctx   *config.Context
	apps   *lazyApps
	engine *lazyEngine
	closer []func()
}

func newSession(ctx context.Context, f *cmdutil.Factory) (*session, error) {
	s := &session{ctx: ctx, base: f, readonly: f.Readonly}
	if err := s.use(f); err != nil {
		return nil, err
	}
	return s, nil
}

// use makes f the current context: it resolves the context (reading the config file, no I/O
// beyond that) and prepares the lazily opened backends.
func (s *session) use(f *cmdutil.Factory) error {
	name, c, err := f.Context()
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.closer
	s.f, s.name, s.cctx, s.closer = f, name, c, nil
	s.apps, s.engine = nil, nil
	if len(c.Kafka.Brokers) > 0 {
		now := f.Now
		s.engine = &lazyEngine{open: func() (*replay.Engine, error) {
			return replay.New(cmdutil.ReplayConfig(c, f.KafkaClient, f.Actor(), now))
		}}
		s.closer = append(s.closer, s.engine.close)
	}
	if c.ArgoCD.Server != "" || c.ArgoCD.Core {
		live := f.Live()
		s.apps = &lazyApps{open: live.Apps}
		s.closer = append(s.closer, s.apps.close)
	}
	s.mu.Unlock()
	// The old context's views are closed already; their clients may still be finishing a
	// request, so they are closed off the UI goroutine.
	go func() {
		for _, c := range old {
			c()
		}
	}()
	return nil
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.closer {
		c()
	}
	s.closer = nil
}

// header describes where the session points.
func (s *session) header() app.Header {
	c := s.cctx
	h := app.Header{Context: s.name, Readonly: s.f.Readonly, Simulated: c.Simulated}
	if b := c.Kafka.Brokers; len(b) > 0 {
		h.Kafka = b[0]
		if len(b) > 1 {
			h.Kafka += fmt.Sprintf(" +%d", len(b)-1)
		}
	}
	switch {
	case c.ArgoCD.Core:
		h.ArgoCD = "core"
	default:
		h.ArgoCD = c.ArgoCD.Server
	}
	h.Kube = c.Kube.Context
	if h.Kube == "" && (c.ArgoCD.Core || c.Kube.Kubeconfig != "") {
		h.Kube = "(current)"
	}
	return h
}

// routes are the palette's views for the current context.
func (s *session) routes() []app.Route {
	f, c, readonly, now := s.f, s.cctx, s.f.Readonly, s.now()
	ctx := s.ctx
	var routes []app.Route
	if eng := s.engine; eng != nil {
		histOpts := tuihistory.Options{Ctx: ctx, Backend: eng, Now: now}
		dltOpts := tuidlt.Options{Ctx: ctx, Backend: eng, Readonly: readonly, Outline: true, Secrets: secret.NewFields(c.DLT.SecretFields...), Now: now,
			History: func(topic string) view.View { return tuihistory.New(histOpts, topic) }}
		routes = append(routes, app.Route{Name: "dlt", Args: "[TOPIC]", Help: "dead-letter topics, groups, records; r replay",
			Check: func(args []string) error { return checkDLT(ctx, eng, args) },
			Open: func(args []string) (view.View, error) {
				if len(args) == 1 {
					return tuidlt.NewAt(dltOpts, args[0]), nil
				}
				return tuidlt.New(dltOpts), nil
			}})
		routes = append(routes, app.Route{Name: "history", Args: "[TOPIC]", Help: "replay runs: who, why, what came back, consumed or not",
			Open: func(args []string) (view.View, error) {
				switch len(args) {
				case 0:
					return tuihistory.New(histOpts, ""), nil
				case 1:
					return tuihistory.New(histOpts, args[0]), nil
				}
				return nil, errors.New("usage: :history [TOPIC]")
			}})
		traceOpts := tuitrace.Options{Ctx: ctx, Backend: eng, DLT: dltOpts, Now: now}
		if u := c.Services["order"]; u != "" {
			cl := orderapi.NewClient(u, nil)
			traceOpts.Order = cl.Order
		}
		routes = append(routes, app.Route{Name: "trace", Args: "ORDER_ID", Help: "one order's records across the SAGA topics and DLTs",
			Open: func(args []string) (view.View, error) {
				if len(args) != 1 {
					return nil, errors.New("usage: :trace ORDER_ID")
				}
				id, err := tuitrace.ParseOrderID(args[0])
				if err != nil {
					return nil, err
				}
				return tuitrace.New(traceOpts, id), nil
			}})
	} else {
		noKafka := func([]string) (view.View, error) {
			return nil, errors.New("no Kafka in this context: set kafka.brokers with `opsctl config`, or pass --brokers")
		}
		routes = append(routes, app.Route{Name: "dlt", Help: "dead-letter topics (needs kafka.brokers)", Open: noKafka},
			app.Route{Name: "history", Args: "[TOPIC]", Help: "replay runs (needs kafka.brokers)", Open: noKafka},
			app.Route{Name: "trace", Args: "ORDER_ID", Help: "one order's timeline (needs kafka.brokers)", Open: noKafka})
	}
	live := f.Live()
	canaryDeps := tuicanary.Deps{Mesh: live.Mesh, Namespace: live.Namespace, BakeTime: pcanary.ContextBakeTime(c), Now: now}
	if c.GitOps.Dir != "" || c.GitOps.Repo != "" {
		canaryDeps.OpenRepo = f.GitOpsOpener("", 0, gitops.WithGitEnv("GIT_TERMINAL_PROMPT=0"))
	}
	if s.apps != nil {
		canaryDeps.Apps = s.apps
	}
	if c.Prometheus.URL != "" {
		canaryDeps.Gates = live.Gates
	}
	canaryBackend := tuicanary.NewBackend(canaryDeps)
	routes = append(routes, app.Route{Name: "canary", Help: "canary board: weights, drift, gates; s/w/p/b",
		Open: func([]string) (view.View, error) {
			return tuicanary.New(tuicanary.Options{Ctx: ctx, Backend: canaryBackend, Readonly: readonly, Now: now}), nil
		}})
	apps := s.apps
	routes = append(routes, app.Route{Name: "apps", Help: "Argo CD applications: sync, health, resources; S sync",
		Open: func([]string) (view.View, error) {
			if apps == nil {
				return nil, errors.New("no Argo CD in this context: set argocd.server (or argocd.core) with `opsctl config`")
			}
			return tuiapps.New(tuiapps.Options{Ctx: ctx, Apps: apps, Readonly: readonly, Now: now}), nil
		}})
	return routes
}

// checkTimeout bounds the broker round trip of `:dlt TOPIC`: a context whose brokers do not
// answer is reported while the operator is still looking at the screen they were on.
const checkTimeout = 5 * time.Second

// checkDLT refuses `:dlt TOPIC` for a topic that is not one of the context's dead-letter topics,
// before the current screen is replaced.
func checkDLT(ctx context.Context, eng *lazyEngine, args []string) error {
	switch len(args) {
	case 0:
		return nil
	case 1:
	default:
		return errors.New("usage: :dlt [TOPIC]")
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	ts, err := eng.Topics(ctx)
	if err != nil {
		return fmt.Errorf("list dead-letter topics: %w; nothing was opened", err)
	}
	var names []string
	for _, t := range ts {
		if t.Topic == args[0] {
			return nil
		}
		names = append(names, t.Topic)
	}
	known := "there are none"
	if len(names) > 0 {
		known = "known: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("no dead-letter topic %s in this context; nothing was opened (%s)", termsafe.Truncate(args[0], 60), known)
}

func (s *session) now() func() time.Time {
	if s.f.Now != nil {
		return s.f.Now
	}
	return time.Now
}

// start picks the first view: the one asked for, else the dead letters when Kafka is
// configured, else the canary board.
func (s *session) start(asked string) string {
	if asked != "" {
		return asked
	}
	if s.engine != nil {
		return "dlt"
	}
	return "canary"
}

// model builds the root model for the session.
func (s *session) model(start string) (app.Model, error) {
	var names []string
	if cfg, err := s.f.Config(); err == nil {
		names = cfg.Names()
	}
	return app.New(app.Options{
		Ctx:      s.ctx,
		Header:   s.header(),
		Routes:   s.routes(),
		Start:    s.start(start),
		Contexts: names,
		SwitchContext: func(name string) (app.Switched, error) {
			nf := &cmdutil.Factory{IOStreams: s.base.IOStreams, ConfigPath: s.base.ConfigPath, ContextName: name,
				Output: s.base.Output, Readonly: s.readonly, Now: s.base.Now}
			if err := s.use(nf); err != nil {
				return app.Switched{}, err
			}
			return app.Switched{Header: s.header(), Routes: s.routes(), Start: s.start("")}, nil
		},
	}), nil
}

// lazyApps opens Argo CD on first use, inside whichever view's command needs it first, and
// shares the connection among the views. A failed open is not cached: the next use retries.
type lazyApps struct {
	open func(ctx context.Context) (argocd.Apps, error)

	mu     sync.Mutex
	apps   argocd.Apps
	closed bool
}

func (l *lazyApps) get(ctx context.Context) (argocd.Apps, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, context.Canceled
	}
	if l.apps != nil {
		return l.apps, nil
	}
	a, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	l.apps = a
	return a, nil
}

func (l *lazyApps) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.apps != nil {
		l.apps.Close()
		l.apps = nil
	}
}

// List implements argocd.Apps.
func (l *lazyApps) List(ctx context.Context) ([]argocd.App, error) {
	a, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return a.List(ctx)
}

// Get implements argocd.Apps.
func (l *lazyApps) Get(ctx context.Context, name string) (argocd.App, error) {
	a, err := l.get(ctx)
	if err != nil {
		return argocd.App{}, err
	}
	return a.Get(ctx, name)
}

// Refresh implements argocd.Apps.
func (l *lazyApps) Refresh(ctx context.Context, name string, hard bool) (argocd.App, error) {
	a, err := l.get(ctx)
	if err != nil {
		return argocd.App{}, err
	}
	return a.Refresh(ctx, name, hard)
}

// Sync implements argocd.Apps.
func (l *lazyApps) Sync(ctx context.Context, name string, opts argocd.SyncOptions) (argocd.App, error) {
	a, err := l.get(ctx)
	if err != nil {
		return argocd.App{}, err
	}
	return a.Sync(ctx, name, opts)
}

// ManagedResources implements argocd.Apps.
func (l *lazyApps) ManagedResources(ctx context.Context, name string) ([]argocd.ManagedResource, error) {
	a, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return a.ManagedResources(ctx, name)
}

// RevisionInfo implements argocd.Apps.
func (l *lazyApps) RevisionInfo(ctx context.Context, name, revision string) (argocd.Revision, error) {
	a, err := l.get(ctx)
	if err != nil {
		return argocd.Revision{}, err
	}
	return a.RevisionInfo(ctx, name, revision)
}

// Rollback implements argocd.Apps.
func (l *lazyApps) Rollback(ctx context.Context, name string, id int64, opts argocd.RollbackOptions) (argocd.App, error) {
	a, err := l.get(ctx)
	if err != nil {
		return argocd.App{}, err
	}
	return a.Rollback(ctx, name, id, opts)
}

// Watch implements argocd.Apps.
func (l *lazyApps) Watch(ctx context.Context, name string, fn func(argocd.Event) error) error {
	a, err := l.get(ctx)
	if err != nil {
		return err
	}
	return a.Watch(ctx, name, fn)
}

// Close implements argocd.Apps; the session closes the connection when it ends, not the views.
func (l *lazyApps) Close() error { return nil }
