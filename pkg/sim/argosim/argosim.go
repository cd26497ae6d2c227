// Package argosim is the sandbox's simulated Argo CD: it turns the GitOps repository's real
// ApplicationSet into Application objects, keeps them synced from a local git repository into a
// simulated cluster (pkg/sim/kubesim), and serves argo-cd's own gRPC API for them, so `opsctl apps`,
// `opsctl canary --wait` and the TUI run unchanged against it, through argo-cd's real API
// client or, in core mode, through argo-cd's typed clientset on the simulated cluster.
//
// What it does, as Argo CD would:
//   - Applications come from gitops/argocd/applicationset.yaml (list and matrix-of-list
//     generators, goTemplate with Sprig, expanded as the ApplicationSet controller does; see
//     appset.go for why not with its own code); repoURL is rewritten to the local repository
//     and the destination server to the simulated cluster. The AppProject comes from
//     appproject.yaml. Both are stored in the cluster (argoproj.io/v1alpha1).
//   - The controller resolves each Application's targetRevision with the git CLI, renders its
//     Helm chart at that commit with pkg/artifacts/chart, compares the result with the live objects, and
//     reports sync status (Synced/OutOfSync/Unknown at a revision), health (Argo CD's own health
//     checks, fed by a simulated HPA controller, Deployment controller and kubelet), conditions,
//     the operation state and the sync history.
//   - Sync operations apply in sync-wave order, prune what git no longer renders (PruneLast
//     prunes after every wave, so the VirtualService moves traffic back before a canary
//     Deployment disappears), honour prune, dry-run and a revision, and record history.
//   - Automated sync with selfHeal as each Application's spec says; git is polled (default
//     every 3 s) and the refresh annotation or a Get with refresh re-reads it at once; a live
//     object edited in the cluster makes the Application OutOfSync, and selfHeal re-applies it.
//
// What it does not do: sync hooks, health-gated waves (a wave is applied without waiting for
// the previous one to become healthy), retries with backoff, AppProject restrictions, RBAC
// beyond one token, jq ignoreDifferences, multiple sources, Kustomize or plain directories, or
// any cluster other than the simulated one.
//
// argocd-server's API is API over a Backend (api.go): the simulator is one backend, and
// pkg/argocd/argocdtest's store of fixtures the other, so opsctl's tests and the sandbox meet
// one implementation of the wire.
//
// It says "simulated" wherever it shows itself: the version and settings answers, an
// annotation on every Application, AppProject and Pod it writes.
package argosim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
	// Argo CD links kubectl's command packages; this keeps their message catalogues unloaded.
	_ "github.com/come2us/opsctl/pkg/translations"
)

// Defaults for Config fields left empty.
const (
	// DefaultInterval is how often git is polled, like Argo CD's (much longer) reconciliation
	// timeout.
	DefaultInterval = 3 * time.Second
	// DefaultReadyDelay is how long a simulated Pod takes to become Ready.
	DefaultReadyDelay = time.Second
	// DefaultKubeURL is the in-cluster API address the ApplicationSet names.
	DefaultKubeURL = "https://kubernetes.default.svc"
)

// selfHealBackoff spaces self-heal syncs of one Application, like argocd-application-
// controller's --self-heal-timeout-seconds, so a live object that keeps changing cannot make
// the controller apply in a tight loop.
const selfHealBackoff = 5 * time.Second

// AnnotationSimulated is set on every Application and AppProject argosim writes; its value
// says the objects are simulated.
const AnnotationSimulated = annotationSimulated

// Config configures a simulated Argo CD.
type Config struct {
	// RepoDir is the git repository Argo CD watches: the bare repository that `opsctl canary`
	// pushes to, or a working copy (whose local branches are read; uncommitted files never are).
	RepoDir string
	// Branch, when set, replaces every Application's targetRevision and is where the
	// ApplicationSet is read from; empty keeps the ApplicationSet's own (main) and reads HEAD.
	Branch string
	// GitOpsRoot is the GitOps tree inside the repository (default "gitops"); the
	// ApplicationSet and AppProject are read from <GitOpsRoot>/argocd/.
	GitOpsRoot string
	// RepoURL is what Applications show as their repoURL (default file://<absolute RepoDir>).
	RepoURL string

	// Kube is the simulated cluster the Applications sync into and are stored in. Required.
	Kube *kubesim.Server
	// KubeURL is Kube's address, written as every Application's destination server (default
	// https://kubernetes.default.svc).
	KubeURL string

	// Token is the only bearer token the gRPC API accepts. Required.
	Token string

	// Interval is how often git is polled for new commits (default 3s).
	Interval time.Duration
	// ReadyDelay is how long a new Pod takes to become Ready (default 1s).
	ReadyDelay time.Duration
	// ProgressDeadline, when set, replaces every Deployment's progressDeadlineSeconds (600 s by
	// default in Kubernetes): a rollout not complete by then is Degraded.
	ProgressDeadline time.Duration

	// Git is the git binary (default "git" from PATH); GitEnv adds KEY=VALUE pairs to its
	// environment.
	Git    string
	GitEnv []string

	// Logger receives the controller's log (default: discarded).
	Logger *slog.Logger
}

// Server is a simulated Argo CD: the application controller, the simulated cluster's
// controllers and argocd-server's gRPC API.
type Server struct {
	cfg          Config
	kube         *kubesim.Server
	git          *gitRepo
	log          *slog.Logger
	cluster      *cluster
	renders      *renderCache
	appNamespace string

	mu      sync.Mutex
	queue   []string
	pending map[string]*pendingWork
	state   map[string]*appState
	wake    chan struct{}
	started bool
	closed  bool

	done   chan struct{} // closed by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	api    *API
	addr   string
}

// pendingWork is a queued reconcile of one Application.
type pendingWork struct {
	refresh bool
	hard    bool
	waiters []chan struct{}
}

// appState is what the controller remembers about an Application between reconciles.
type appState struct {
	generation   int64     // last spec generation seen, to tell spec edits from status writes
	compared     string    // commit of the last comparison
	lastSelfHeal time.Time // start of the last self-heal sync
	recheck      bool      // compare again at the next poll (a self-heal waiting for its backoff)
}

// New checks cfg and returns a Server; Start starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Kube == nil {
		return nil, errors.New("argosim: Config.Kube is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("argosim: Config.Token is required (the gRPC API always checks a token)")
	}
	if cfg.RepoDir == "" {
		return nil, errors.New("argosim: Config.RepoDir is required")
	}
	abs, err := filepath.Abs(cfg.RepoDir)
	if err != nil {
		return nil, fmt.Errorf("argosim: repository %s: %w", cfg.RepoDir, err)
	}
	cfg.RepoDir = abs
	if cfg.GitOpsRoot == "" {
		cfg.GitOpsRoot = gitops.DefaultRoot
	}
	if !fs.ValidPath(cfg.GitOpsRoot) {
		return nil, fmt.Errorf("argosim: GitOpsRoot %q must be a relative path inside the repository", cfg.GitOpsRoot)
	}
	if cfg.RepoURL == "" {
		cfg.RepoURL = "file://" + filepath.ToSlash(abs)
	}
	if cfg.KubeURL == "" {
		cfg.KubeURL = DefaultKubeURL
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.ReadyDelay <= 0 {
		cfg.ReadyDelay = DefaultReadyDelay
	}
	if cfg.Git == "" {
		cfg.Git = "git"
	}
	if cfg.Branch != "" {
		if err := validRevision(cfg.Branch); err != nil {
			return nil, fmt.Errorf("argosim: Branch: %w", err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:     cfg,
		kube:    cfg.Kube,
		git:     newGitRepo(abs, cfg.Git, cfg.GitEnv),
		log:     log,
		renders: newRenderCache(),
		pending: map[string]*pendingWork{},
		state:   map[string]*appState{},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	s.cluster = newCluster(cfg.Kube, cfg.ReadyDelay, cfg.ProgressDeadline, log.With("component", "simulated-cluster"))
	return s, nil
}

// Start reads the ApplicationSet and AppProject from the repository, stores the Applications in
// the cluster, serves the gRPC API on addr (e.g. "127.0.0.1:0") and starts the controller. It
// returns the address it listens on. ctx bounds only the startup; everything runs until Close.
func (s *Server) Start(ctx context.Context, addr string) (string, error) {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return "", errors.New("argosim: Start called twice or after Close")
	}
	s.started = true
	s.mu.Unlock()

	names, err := s.install(ctx)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("argosim: listen %s: %w", addr, err)
	}
	s.addr = ln.Addr().String()
	s.api = NewAPI((*backend)(s), s.apiConfig()) //nolint:contextcheck // its interceptors check each RPC's own context
	// The controller's watch feeds the API's watchers; it subscribes before the API serves,
	// so a stream opened as soon as Start returns misses no change.
	events, cancelEvents := s.kube.Watch()

	// Everything runs until Close, past ctx: it keeps ctx's values, not its cancellation.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(5)
	go func() {
		defer s.wg.Done()
		if err := s.api.Serve(ln); err != nil {
			s.log.Error("gRPC server stopped", "err", err)
		}
	}()
	go func() { defer s.wg.Done(); s.cluster.run(runCtx) }()
	go func() { defer s.wg.Done(); s.work(runCtx) }()
	go func() { defer s.wg.Done(); s.poll(runCtx) }()
	go func() { defer s.wg.Done(); s.watch(runCtx, events, cancelEvents) }()
	for _, n := range names {
		s.enqueue(n, true, false)
	}
	s.log.Info("simulated Argo CD started", "addr", s.addr, "repo", s.cfg.RepoDir, "applications", len(names))
	return s.addr, nil
}

// Addr returns the gRPC address (after Start).
func (s *Server) Addr() string { return s.addr }

// AppNamespace returns the namespace holding the Application objects (the ApplicationSet's,
// "argocd"), which core-mode clients need; it is known after Start.
func (s *Server) AppNamespace() string { return s.appNamespace }

// Close stops the gRPC server (ending every stream), the controller and the simulated
// cluster's controllers, and waits for them. The Applications and objects stay in the cluster.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	if s.api != nil {
		s.api.Stop()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.mu.Lock()
	for _, p := range s.pending {
		for _, w := range p.waiters {
			close(w)
		}
	}
	s.pending = map[string]*pendingWork{}
	s.mu.Unlock()
	return nil
}

// Refresh makes the controller compare an Application with git again now (syncing it if its
// policy says so) and returns once that is done.
func (s *Server) Refresh(ctx context.Context, app string) error {
	if _, err := s.getApp(app); err != nil {
		return err
	}
	return s.refresh(ctx, app, false)
}

func (s *Server) refresh(ctx context.Context, app string, hard bool) error {
	ch := s.enqueue(app, true, hard)
	if ch == nil {
		return ErrClosed
	}
	select {
	case <-ch:
		if s.isClosed() {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// SetSelfHeal turns selfHeal of an Application's automated sync policy on or off, in the
// Application object itself (so core-mode clients see it too). With it off, a live object
// edited in the cluster leaves the Application OutOfSync instead of being re-applied.
func (s *Server) SetSelfHeal(ctx context.Context, app string, on bool) error {
	_, err := s.updateApp(ctx, app, func(a *v1alpha1.Application) (bool, error) {
		if a.Spec.SyncPolicy == nil || a.Spec.SyncPolicy.Automated == nil {
			return false, fmt.Errorf("application %s has no automated sync policy; selfHeal applies only to automated sync", app)
		}
		if cur := a.Spec.SyncPolicy.Automated.SelfHeal; cur != nil && *cur == on {
			return false, nil
		}
		a.Spec.SyncPolicy.Automated.SelfHeal = &on
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("set selfHeal of %s: %w", app, err)
	}
	return nil
}

// SetCanaryReady makes the canary (v2) Pods of a service in an environment not Ready
// (ready=false), as a failing readiness probe would, or lets them become Ready again. It holds
// for canary Pods created later too, so a canary can be started already broken.
func (s *Server) SetCanaryReady(env, service string, ready bool) error {
	if err := gitops.ValidateTarget(env, service); err != nil {
		return fmt.Errorf("set canary readiness: %w", err)
	}
	s.cluster.setReady(gitops.Namespace(env), gitops.AppName(service)+"-v2", ready, "readiness probe failed: simulated fault on the canary")
	return nil
}

// install reads the ApplicationSet and AppProject at the watched revision and stores the
// AppProject and the Applications it generates; it returns the Application names.
func (s *Server) install(ctx context.Context) ([]string, error) {
	rev := s.cfg.Branch
	if rev == "" {
		rev = "HEAD"
	}
	commit, err := s.git.resolve(ctx, rev)
	if err != nil {
		return nil, fmt.Errorf("argosim: %w", err)
	}
	tree, err := s.git.tree(ctx, commit)
	if err != nil {
		return nil, fmt.Errorf("argosim: %w", err)
	}
	dir := path.Join(s.cfg.GitOpsRoot, "argocd")
	asData, err := fs.ReadFile(tree, path.Join(dir, "applicationset.yaml"))
	if err != nil {
		return nil, fmt.Errorf("argosim: read ApplicationSet at %s: %w", shortSHA(commit), err)
	}
	as, err := decodeApplicationSet(asData)
	if err != nil {
		return nil, fmt.Errorf("argosim: %s: %w", path.Join(dir, "applicationset.yaml"), err)
	}
	apps, err := generateApplications(as)
	if err != nil {
		return nil, fmt.Errorf("argosim: %w", err)
	}
	projData, err := fs.ReadFile(tree, path.Join(dir, "appproject.yaml"))
	if err != nil {
		return nil, fmt.Errorf("argosim: read AppProject at %s: %w", shortSHA(commit), err)
	}
	proj, err := decodeAppProject(projData)
	if err != nil {
		return nil, fmt.Errorf("argosim: %s: %w", path.Join(dir, "appproject.yaml"), err)
	}
	s.appNamespace = as.Namespace
	if s.appNamespace == "" {
		s.appNamespace = "argocd"
	}
	if err := s.ensureNamespace(s.appNamespace); err != nil {
		return nil, fmt.Errorf("argosim: %w", err)
	}
	originalRepos := map[string]bool{}
	for _, a := range apps {
		originalRepos[a.Spec.GetSource().RepoURL] = true
	}
	s.rewriteProject(proj, originalRepos)
	if err := s.storeProject(proj); err != nil {
		return nil, err
	}
	var names []string
	for i := range apps {
		a := &apps[i]
		s.rewriteApplication(a)
		if err := s.storeApplication(ctx, a); err != nil {
			return nil, err
		}
		names = append(names, a.Name)
	}
	return names, nil
}

func (s *Server) ensureNamespace(name string) error {
	if _, err := s.kube.Get(gvrNamespace, "", name); err == nil {
		return nil
	}
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}
	if _, err := s.kube.Apply(unstructuredOf(ns)); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

func markSimulated(annotations map[string]string) map[string]string {
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[annotationSimulated] = "Argo CD " + simulatedNote
	return annotations
}

// rewriteProject points the AppProject at the local repository and the simulated cluster.
func (s *Server) rewriteProject(p *v1alpha1.AppProject, originalRepos map[string]bool) {
	p.Annotations = markSimulated(p.Annotations)
	var repos []string
	for _, r := range p.Spec.SourceRepos {
		if originalRepos[r] {
			r = s.cfg.RepoURL
		}
		if !slices.Contains(repos, r) {
			repos = append(repos, r)
		}
	}
	if !slices.Contains(repos, s.cfg.RepoURL) {
		repos = append(repos, s.cfg.RepoURL)
	}
	p.Spec.SourceRepos = repos
	for i := range p.Spec.Destinations {
		p.Spec.Destinations[i].Server = s.cfg.KubeURL
		p.Spec.Destinations[i].Name = ""
	}
	if p.Namespace == "" {
		p.Namespace = s.appNamespace
	}
}

// rewriteApplication points a generated Application at the local repository and the
// simulated cluster.
func (s *Server) rewriteApplication(a *v1alpha1.Application) {
	a.Annotations = markSimulated(a.Annotations)
	if a.Spec.Source != nil {
		a.Spec.Source.RepoURL = s.cfg.RepoURL
		if s.cfg.Branch != "" {
			a.Spec.Source.TargetRevision = s.cfg.Branch
		}
	}
	a.Spec.Destination.Server = s.cfg.KubeURL
	a.Spec.Destination.Name = ""
}

func (s *Server) storeProject(p *v1alpha1.AppProject) error {
	p.APIVersion, p.Kind = v1alpha1.SchemeGroupVersion.String(), "AppProject"
	if cur, err := s.kube.Get(gvrAppProject, p.Namespace, p.Name); err == nil {
		p.ResourceVersion = cur.GetResourceVersion()
	}
	u, err := toUnstructured(p)
	if err != nil {
		return fmt.Errorf("argosim: %w", err)
	}
	if _, err := s.kube.Apply(u); err != nil {
		return fmt.Errorf("argosim: store AppProject %s: %w", p.Name, err)
	}
	return nil
}

// storeApplication creates a generated Application, or updates the spec, labels and
// annotations of one already in the cluster (a restart on kept state) without losing its
// status and history.
func (s *Server) storeApplication(ctx context.Context, gen *v1alpha1.Application) error {
	if _, err := s.kube.Get(gvrApplication, gen.Namespace, gen.Name); err != nil {
		u, err := toUnstructured(gen)
		if err != nil {
			return fmt.Errorf("argosim: %w", err)
		}
		if _, err := s.kube.Apply(u); err != nil {
			return fmt.Errorf("argosim: store Application %s: %w", gen.Name, err)
		}
		return nil
	}
	_, err := s.updateApp(ctx, gen.Name, func(a *v1alpha1.Application) (bool, error) {
		a.Spec = gen.Spec
		a.Labels = gen.Labels
		a.Annotations = gen.Annotations
		a.Finalizers = gen.Finalizers
		if st := a.Status.OperationState; st != nil && !st.Phase.Completed() {
			// Left Running by a previous run that stopped mid-sync; it would block every
			// sync request.
			now := metav1.Now()
			st.Phase, st.Message, st.FinishedAt = synccommon.OperationFailed, "interrupted: the simulated Argo CD stopped during the sync", &now
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("argosim: update Application %s: %w", gen.Name, err)
	}
	return nil
}
