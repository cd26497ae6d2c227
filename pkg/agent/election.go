package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// Election elects the agent that acts among several replicas: client-go's leader election on
// a coordination.k8s.io Lease. The holder renews the lease every RetryPeriod; one that cannot
// renew it for RenewDeadline stops its loops; another takes over once the lease is
// LeaseDuration old. An agent that stops releases the lease after its loops have stopped, so
// a rolling update hands over at once.
type Election struct {
	// Client reaches the API server. Its requests must have a deadline (rest.Config.Timeout):
	// a server that accepts and never answers would otherwise hold the election forever.
	Client coordinationv1.CoordinationV1Interface
	// Namespace and Name are the Lease's.
	Namespace, Name string
	// LeaseDuration, RenewDeadline and RetryPeriod default to client-go's usual 15s, 10s and 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Election defaults.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// electionComponent is the election's name in the agent's health.
const electionComponent = "election"

func (e *Election) validate() error {
	if e.Client == nil || e.Namespace == "" || e.Name == "" {
		return errors.New("agent: an election needs a Kubernetes client and the Lease's namespace and name")
	}
	if e.LeaseDuration <= 0 {
		e.LeaseDuration = DefaultLeaseDuration
	}
	if e.RenewDeadline <= 0 {
		e.RenewDeadline = DefaultRenewDeadline
	}
	if e.RetryPeriod <= 0 {
		e.RetryPeriod = DefaultRetryPeriod
	}
	if e.LeaseDuration <= e.RenewDeadline || float64(e.RenewDeadline) <= leaderelection.JitterFactor*float64(e.RetryPeriod) {
		return fmt.Errorf("agent: lease %s, renew deadline %s, retry period %s: want lease > renew deadline > %.1f × retry period",
			e.LeaseDuration, e.RenewDeadline, e.RetryPeriod, leaderelection.JitterFactor)
	}
	return nil
}

// runElected campaigns for the lease until ctx ends, running the loops whenever it holds it.
func (a *Agent) runElected(ctx context.Context) error {
	el := a.cfg.Election
	// client-go's leader election logs through the context's logger.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(a.log.Handler()))
	lock := &observedLock{
		Interface: &rl.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: el.Namespace, Name: el.Name},
			Client:     el.Client,
			LockConfig: rl.ResourceLockConfig{Identity: a.cfg.Identity.ID},
		},
		report: func(err error) { a.health.set(electionComponent, err) },
	}
	for ctx.Err() == nil {
		if err := a.campaign(ctx, lock); err != nil {
			return err
		}
		if ctx.Err() == nil {
			a.log.Info("lost the lease; campaigning again", "lease", el.Namespace+"/"+el.Name)
		}
	}
	a.log.Info("agent stopped", "identity", a.cfg.Identity.ID)
	return nil
}

// campaign runs one leader elector: it waits for the lease, runs the loops while it holds it,
// and returns when it lost it or ctx ended — in both cases only after the loops have stopped.
func (a *Agent) campaign(ctx context.Context, lock rl.Interface) error {
	el := a.cfg.Election
	// The elector's own context is cancelled only once the loops have stopped, so that the
	// lease is released (ReleaseOnCancel) after the last step, never during one.
	electCtx, cancelElect := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelElect()
	var (
		mu      sync.Mutex
		leading bool
		loops   sync.WaitGroup
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   el.LeaseDuration,
		RenewDeadline:   el.RenewDeadline,
		RetryPeriod:     el.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            el.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				mu.Lock()
				if electCtx.Err() != nil {
					mu.Unlock()
					return
				}
				leading = true
				loops.Add(1)
				mu.Unlock()
				defer loops.Done()
				a.log.Info("took the lease: running the loops", "lease", el.Namespace+"/"+el.Name)
				a.health.setRole(RoleLeader)
				runCtx, stop := context.WithCancel(lctx)
				defer stop()
				unhook := context.AfterFunc(ctx, stop) // the agent stops: end the loops first
				defer unhook()
				a.lead(runCtx)
				a.health.setRole(RoleStandby)
				cancelElect() // the loops are done: release the lease, if still held
			},
			OnStoppedLeading: func() { a.health.setRole(RoleStandby) },
			OnNewLeader: func(identity string) {
				a.health.setLeader(identity)
				a.log.Info("leader observed", "leader", identity)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("agent: leader election: %w", err)
	}
	// The agent stops while waiting for the lease: stop waiting. While leading, the loops'
	// end cancels the elector instead (above).
	unhook := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !leading {
			cancelElect()
		}
	})
	defer unhook()
	le.Run(electCtx)
	loops.Wait()
	return nil
}

// observedLock is the Lease lock, reporting to the agent's health whether the API server
// answers: a standby agent would otherwise not know that it could never take over.
type observedLock struct {
	rl.Interface
	report func(error)
}

func (l *observedLock) observe(err error) {
	if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		l.report(nil) // the API server answered
		return
	}
	l.report(fmt.Errorf("Kubernetes API (lease %s): %w", l.Describe(), err))
}

// Get reads the lease.
func (l *observedLock) Get(ctx context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	r, raw, err := l.Interface.Get(ctx)
	l.observe(err)
	return r, raw, err
}

// Create creates the lease.
func (l *observedLock) Create(ctx context.Context, ler rl.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, ler)
	l.observe(err)
	return err
}

// Update renews or takes the lease.
func (l *observedLock) Update(ctx context.Context, ler rl.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, ler)
	l.observe(err)
	return err
}
