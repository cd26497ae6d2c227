package argocd

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
)

const (
	revOld = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
	revNew = "b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6"
)

// appState is one observed state of order-service-prod, rendered as an Application.
type appState struct {
	rev, sync, health, healthMsg string
	opPhase, opMsg, opRev        string
	started                      string
}

func (s appState) yaml() string {
	a := argocdtest.App{Revision: s.rev, Sync: s.sync, Health: s.health, HealthMessage: s.healthMsg}
	if s.opPhase != "" {
		started := s.started
		if started == "" {
			started = "2026-11-24T11:00:00Z"
		}
		a.Operation = &argocdtest.Operation{Phase: s.opPhase, Message: s.opMsg, Revision: s.opRev, Started: started, InitiatedBy: "admin"}
		if s.opPhase != PhaseRunning {
			a.Operation.Finished = "2026-11-24T11:00:40Z"
		}
	}
	return a.YAML()
}

var (
	stateBefore    = appState{rev: revOld, sync: SyncSynced, health: HealthHealthy, opPhase: PhaseSucceeded, opRev: revOld, started: "2026-11-24T10:00:00Z"}
	stateRunning   = appState{rev: revNew, sync: SyncOutOfSync, health: HealthProgressing, opPhase: PhaseRunning, opMsg: "one or more tasks are running", opRev: revNew}
	stateSynced    = appState{rev: revNew, sync: SyncSynced, health: HealthProgressing, healthMsg: "Deployment order-service-v2: waiting for rollout", opPhase: PhaseSucceeded, opMsg: "successfully synced (all tasks run)", opRev: revNew}
	stateHealthy   = appState{rev: revNew, sync: SyncSynced, health: HealthHealthy, opPhase: PhaseSucceeded, opMsg: "successfully synced (all tasks run)", opRev: revNew}
	stateFailed    = appState{rev: revNew, sync: SyncOutOfSync, health: HealthHealthy, opPhase: PhaseFailed, opMsg: `one or more objects failed to apply, reason: VirtualService.networking.istio.io "order-service" is invalid: spec.http[0].route[1].weight: Invalid value: -10`, opRev: revNew}
	stateDegraded  = appState{rev: revNew, sync: SyncSynced, health: HealthDegraded, healthMsg: `Deployment "order-service-v2" exceeded its progress deadline`, opPhase: PhaseSucceeded, opMsg: "successfully synced (all tasks run)", opRev: revNew}
	stateOldFailed = appState{rev: revOld, sync: SyncSynced, health: HealthProgressing, opPhase: PhaseFailed, opMsg: "an old failure", opRev: "0000000000000000000000000000000000000000", started: "2026-11-20T10:00:00Z"}
)

// controller plays Argo CD's application controller after a sync: it walks the application
// through the given states.
func controller(t *testing.T, srv *argocdtest.Server, states ...appState) func(argocdtest.SyncRequest) {
	return func(argocdtest.SyncRequest) {
		for _, s := range states {
			if err := srv.Apply(s.yaml()); err != nil {
				t.Error(err)
			}
		}
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	want := WaitFor{Synced: true, Healthy: true, Revision: revNew[:7], OperationDone: true, FailOnDegraded: true, Timeout: 10 * time.Second}
	tests := []struct {
		name    string
		initial appState
		states  []appState // what the controller does after the sync; nil: nothing
		want    WaitFor
		noSync  bool
		is      error
		msg     string
	}{
		{name: "success", initial: stateBefore, states: []appState{stateRunning, stateSynced, stateHealthy}, want: want},
		{name: "sync failure", initial: stateBefore, states: []appState{stateRunning, stateFailed}, want: want, is: ErrSyncFailed,
			msg: `sync of order-service-prod failed: one or more objects failed to apply, reason: VirtualService.networking.istio.io "order-service" is invalid: spec.http[0].route[1].weight: Invalid value: -10`},
		{name: "health degraded", initial: stateBefore, states: []appState{stateRunning, stateSynced, stateDegraded}, want: want, is: ErrDegraded,
			msg: `order-service-prod is Degraded: Deployment "order-service-v2" exceeded its progress deadline`},
		{name: "timeout names what did not arrive", initial: stateBefore, states: []appState{stateRunning, stateSynced},
			want: func() WaitFor { w := want; w.Timeout = 300 * time.Millisecond; return w }(), is: ErrWaitTimeout,
			msg: "timed out after 300ms waiting for order-service-prod: health is Progressing (want Healthy): Deployment order-service-v2: waiting for rollout"},
		{name: "timeout before the controller saw the sync", initial: stateBefore,
			want: func() WaitFor { w := want; w.Timeout = 300 * time.Millisecond; return w }(), is: ErrWaitTimeout,
			msg: "timed out after 300ms waiting for order-service-prod: revision is 3f2a9c1 (want b7c8d9e); a sync operation is requested"},
		{name: "a stale failure is not a failure of this wait", initial: stateOldFailed, noSync: true,
			want: WaitFor{Healthy: true, Timeout: 300 * time.Millisecond}, is: ErrWaitTimeout,
			msg: "timed out after 300ms waiting for order-service-prod: health is Progressing (want Healthy)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := argocdtest.Start(t, testToken, tt.initial.yaml())
			if tt.states != nil {
				srv.OnSync = controller(t, srv, tt.states...)
			}
			apps := dial(t, serverOptions(srv))
			ctx := context.Background()
			if !tt.noSync {
				if _, err := apps.Sync(ctx, "order-service-prod", SyncOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Wait(ctx, apps, "order-service-prod", tt.want)
			if tt.is == nil {
				if err != nil {
					t.Fatalf("Wait: %v", err)
				}
				if got.Revision != revNew || got.Health != HealthHealthy || got.Sync != SyncSynced {
					t.Fatalf("Wait returned %+v", got)
				}
				return
			}
			var we *WaitError
			if !errors.Is(err, tt.is) || !errors.As(err, &we) {
				t.Fatalf("Wait error = %v, want %v", err, tt.is)
			}
			if err.Error() != tt.msg {
				t.Fatalf("message\n got: %s\nwant: %s", err, tt.msg)
			}
		})
	}
}

func TestWaitUnknownApp(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, stateBefore.yaml())
	apps := dial(t, serverOptions(srv))
	_, err := Wait(context.Background(), apps, "nope", WaitFor{Timeout: time.Second})
	if !errors.Is(err, ErrAppNotFound) {
		t.Fatalf("Wait on an unknown app = %v", err)
	}
}

func TestUnmet(t *testing.T) {
	t.Parallel()
	app := App{Name: "x", Sync: SyncOutOfSync, Health: HealthDegraded, Revision: revOld,
		Resources: []Resource{{Kind: "Deployment", Name: "x-v2", Health: HealthDegraded, HealthMessage: "crash\nloop"}}}
	got := WaitFor{Synced: true, Healthy: true, Revision: revNew}.Unmet(app)
	want := []string{"revision is 3f2a9c1 (want b7c8d9e)", "sync is OutOfSync (want Synced)", "health is Degraded (want Healthy): Deployment x-v2 is Degraded (crash)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Unmet =\n%q\nwant\n%q", got, want)
	}
	app.Sync, app.Health, app.Revision = SyncSynced, HealthHealthy, revNew
	if got := (WaitFor{}).Unmet(app); len(got) != 0 {
		t.Fatalf("all met, Unmet = %q", got)
	}
}

// TestWatchStreamsAndLeavesNothingRunning stays serial: goroutines of tests running beside it
// would read as leaks.
func TestWatchStreamsAndLeavesNothingRunning(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	apps, err := New(context.Background(), serverOptions(srv))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seen []string
	done := make(chan error, 1)
	added := make(chan struct{}, 4)
	go func() {
		done <- apps.Watch(ctx, "", func(ev Event) error {
			mu.Lock()
			seen = append(seen, ev.Type+" "+ev.App.Name+" "+ev.App.Health)
			mu.Unlock()
			added <- struct{}{}
			return nil
		})
	}()
	<-added
	<-added // both come2us applications announced
	if err := srv.Apply(strings.Replace(fixture(t, "payment-service-prod"), "status: Progressing", "status: Healthy", 1)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(strings.Replace(fixture(t, "monitoring"), "status: Healthy", "status: Degraded", 1)); err != nil {
		t.Fatal(err) // another project: not streamed
	}
	<-added
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Watch after cancel = %v", err)
	}
	mu.Lock()
	got := strings.Join(seen, "\n")
	mu.Unlock()
	want := "ADDED order-service-prod Healthy\nADDED payment-service-prod Progressing\nMODIFIED payment-service-prod Healthy"
	if got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
	if err := apps.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	goleak.VerifyNone(t, leaks)
}

func TestWatchCallbackErrorEndsWatch(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	apps := dial(t, serverOptions(srv))
	stop := errors.New("enough")
	err := apps.Watch(context.Background(), "order-service-prod", func(Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("Watch = %v, want the callback's error", err)
	}
	if n := srv.Watchers(); n > 1 {
		t.Fatalf("%d watch streams still open", n)
	}
}

func TestWatchWrongTokenIsOneLine(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	o := serverOptions(srv)
	o.Token = "wrong"
	apps := dial(t, o)
	err := apps.Watch(context.Background(), "", func(Event) error { return nil })
	if !errors.Is(err, ErrUnauthenticated) || strings.Contains(err.Error(), "rpc error") {
		t.Fatalf("watch with a wrong token = %v", err)
	}
}
