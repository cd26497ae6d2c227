package replay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Silence: every operation of the engine (a listing, a stats scan, a replay, the ledger read
// of the history) ends within Config.Timeout of a Kafka broker going silent — frozen, behind a
// dead network path, or a listener that accepts connections and never answers. franz-go's own
// timeouts would not bound it: a transactional producer retries a request whose outcome it
// does not know for as long as it takes, a consumer polls a silent broker forever, and a
// request's retries add up (a silent listener made a listing take 41 s, a frozen broker kept a
// replay waiting for as long as it stayed frozen).
//
// So the engine watches its clients' traffic itself, through franz-go's broker hooks: a broker
// that has left a request unanswered (or could not be connected to) for the timeout is silent.
// Every operation runs under a guard whose context is then cancelled, with a *SilenceError as
// its cause; the steps that must finish even when the caller cancels (a commit's outcome, the
// abort of a batch) run under a detached guard that silence cancels too. Nothing waits on a
// silent broker after that, and the error says what was done.

// DefaultTimeout is how long an operation waits for a broker that does not answer.
const DefaultTimeout = 30 * time.Second

// DefaultConnectTimeout is how long a client that has not yet heard from any broker waits for a
// first answer (or a first connection) before the operation stops: a context whose brokers are
// gone — a sandbox that was killed, a wrong address — is reported in seconds, not after the
// full Timeout that a cluster which has answered gets for a slow request.
const DefaultConnectTimeout = 5 * time.Second

// ErrBrokerSilent is matched (errors.Is) by every *SilenceError.
var ErrBrokerSilent = errors.New("kafka broker did not answer")

// SilenceError means an operation stopped because a broker left a request unanswered, or could
// not be connected to, for Timeout.
type SilenceError struct {
	// Broker is the broker's address (host:port).
	Broker  string
	Timeout time.Duration
	// Unreachable says no connection could be made, rather than a request left unanswered.
	Unreachable bool
	// NeverAnswered says no broker of the cluster had answered yet: the brokers the context
	// names are likely gone or wrong, rather than slow.
	NeverAnswered bool
}

// Error says which broker and for how long.
func (e *SilenceError) Error() string {
	msg := fmt.Sprintf("Kafka broker %s did not answer for %s", e.Broker, e.Timeout)
	if e.Unreachable {
		msg = fmt.Sprintf("could not connect to Kafka broker %s for %s", e.Broker, e.Timeout)
	}
	if e.NeverAnswered {
		msg += " (no broker of the cluster has answered: check the context's kafka brokers, or that the cluster is up)"
	}
	return msg
}

// Is makes every SilenceError match ErrBrokerSilent.
func (e *SilenceError) Is(target error) bool { return target == ErrBrokerSilent }

// silenceOf returns the silence that cancelled ctx, nil when ctx was not cancelled by one.
func silenceOf(ctx context.Context) *SilenceError {
	var se *SilenceError
	if errors.As(context.Cause(ctx), &se) {
		return se
	}
	return nil
}

// explain returns err, or, when ctx was cancelled by a broker's silence, that silence (err said
// only that the context was cancelled) or err wrapped with it.
func explain(ctx context.Context, err error) error {
	se := silenceOf(ctx)
	if err == nil || se == nil || errors.Is(err, ErrBrokerSilent) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return se
	}
	return fmt.Errorf("%w (%w)", se, err)
}

// watchdog watches the traffic of the engine's clients and cancels the operations under
// guard when a broker is silent for the timeout.
type watchdog struct {
	timeout time.Duration
	// connect is the timeout of a client that no broker has answered yet.
	connect time.Duration
	tick    time.Duration

	mu      sync.Mutex
	clients map[*clientWatch]struct{}
	guards  map[*guard]struct{}
	stop    chan struct{} // closed to stop the checking goroutine; nil when none runs
	done    chan struct{} // closed when it has stopped
}

func newWatchdog(timeout, connect time.Duration) *watchdog {
	return &watchdog{timeout: timeout, connect: min(connect, timeout), tick: min(max(timeout/20, 10*time.Millisecond), 500*time.Millisecond),
		clients: map[*clientWatch]struct{}{}, guards: map[*guard]struct{}{}}
}

// guard is one operation (or one detached step of it) under watch.
type guard struct {
	start  time.Time // silences are counted from here at the earliest
	cancel context.CancelCauseFunc
}

type guardKey struct{}

// guard returns ctx, cancelled with a *SilenceError as its cause when a broker is silent for
// the timeout while the operation runs, and the function that ends the watch.
func (w *watchdog) guard(ctx context.Context) (context.Context, func()) {
	return w.guardFrom(ctx, time.Now())
}

// detach returns a context that the caller's cancellation does not reach but a broker's
// silence does, counted from the start of ctx's guard: for the steps of an operation that must
// end on their own (a commit, an abort), but not wait on a silent broker.
func (w *watchdog) detach(ctx context.Context) (context.Context, func()) {
	start := time.Now()
	if g, ok := ctx.Value(guardKey{}).(*guard); ok {
		start = g.start
	}
	return w.guardFrom(context.WithoutCancel(ctx), start)
}

func (w *watchdog) guardFrom(ctx context.Context, start time.Time) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	g := &guard{start: start, cancel: cancel}
	ctx = context.WithValue(ctx, guardKey{}, g)
	w.mu.Lock()
	w.guards[g] = struct{}{}
	if w.stop == nil {
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		go w.run(w.stop, w.done)
	}
	w.mu.Unlock()
	return ctx, func() {
		cancel(context.Canceled)
		w.mu.Lock()
		delete(w.guards, g)
		var done chan struct{}
		if len(w.guards) == 0 && w.stop != nil {
			close(w.stop)
			done = w.done
			w.stop, w.done = nil, nil
		}
		w.mu.Unlock()
		if done != nil {
			<-done
		}
	}
}

// run checks the brokers every tick until stop is closed.
func (w *watchdog) run(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			w.check(now)
		}
	}
}

// check cancels every guard for which some broker has been silent for the timeout.
func (w *watchdog) check(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for g := range w.guards {
		for cw := range w.clients {
			if se := cw.silent(now, g.start, w.timeout, w.connect); se != nil {
				g.cancel(se)
				break
			}
		}
	}
}

// client returns the hook that watches one client's traffic; pass it to kgo.WithHooks.
func (w *watchdog) client() *clientWatch {
	cw := &clientWatch{w: w, brokers: map[int32]*brokerWait{}}
	w.mu.Lock()
	w.clients[cw] = struct{}{}
	w.mu.Unlock()
	return cw
}

// clientWatch is the hook of one client: per broker, since when it has been waited on.
type clientWatch struct {
	w       *watchdog
	mu      sync.Mutex
	brokers map[int32]*brokerWait
	// answered says some broker has answered this client: from then on a broker gets the full
	// timeout, before it the connect timeout.
	answered bool
}

// brokerWait is what one client waits for from one broker.
type brokerWait struct {
	addr string
	// asked is when the first request written since the broker last answered was written;
	// zero when nothing waits for an answer.
	asked time.Time
	// unreachable is when the first failed connection attempt since the client last heard
	// from any broker began; zero when none failed.
	unreachable time.Time
}

func (cw *clientWatch) wait(meta kgo.BrokerMetadata) *brokerWait {
	b := cw.brokers[meta.NodeID]
	if b == nil {
		b = &brokerWait{addr: net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))}
		cw.brokers[meta.NodeID] = b
	}
	return b
}

// OnBrokerWrite notes that a request now waits for the broker's answer.
func (cw *clientWatch) OnBrokerWrite(meta kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	now := time.Now()
	cw.mu.Lock()
	if b := cw.wait(meta); b.asked.IsZero() {
		b.asked = now
	}
	cw.mu.Unlock()
}

// OnBrokerRead notes an answer: the broker is not silent. A failed read is no answer.
func (cw *clientWatch) OnBrokerRead(meta kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	cw.mu.Lock()
	cw.answered = true
	cw.wait(meta).asked = time.Time{}
	// A broker answered: one that could not be connected to is no longer all the client has.
	for _, b := range cw.brokers {
		b.unreachable = time.Time{}
	}
	cw.mu.Unlock()
}

// OnBrokerConnect notes a connection attempt that failed, from when it began.
func (cw *clientWatch) OnBrokerConnect(meta kgo.BrokerMetadata, initDur time.Duration, _ net.Conn, err error) {
	cw.mu.Lock()
	b := cw.wait(meta)
	switch {
	case err == nil:
		b.unreachable = time.Time{}
	case b.unreachable.IsZero():
		b.unreachable = time.Now().Add(-initDur)
	}
	cw.mu.Unlock()
}

// OnClientClosed stops watching the client.
func (cw *clientWatch) OnClientClosed(*kgo.Client) {
	cw.w.mu.Lock()
	delete(cw.w.clients, cw)
	cw.w.mu.Unlock()
}

// silent returns the silence of a broker this client has waited on for timeout (connect, while
// no broker has answered it yet), counted from start at the earliest; nil when none has.
func (cw *clientWatch) silent(now, start time.Time, timeout, connect time.Duration) *SilenceError {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	limit := timeout
	if !cw.answered && connect > 0 {
		limit = connect
	}
	for _, b := range cw.brokers {
		if !b.asked.IsZero() && now.Sub(later(b.asked, start)) >= limit {
			return &SilenceError{Broker: b.addr, Timeout: limit, NeverAnswered: !cw.answered}
		}
		if !b.unreachable.IsZero() && now.Sub(later(b.unreachable, start)) >= limit {
			return &SilenceError{Broker: b.addr, Timeout: limit, Unreachable: true, NeverAnswered: !cw.answered}
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// waitGroup waits for wg, or until ctx is done: a producer's records do not all get an answer
// from a silent broker, and nothing may wait on it past the silence.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
