package tui

import (
	"context"
	"sync"
	"time"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay"
)

// lazyEngine opens the replay engine (its Kafka client) on first use, inside a view's command,
// and shares it among the DLT and trace views. A failed open is not cached.
type lazyEngine struct {
	open func() (*replay.Engine, error)

	mu     sync.Mutex
	e      *replay.Engine
	closed bool
}

func (l *lazyEngine) get() (*replay.Engine, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, context.Canceled
	}
	if l.e != nil {
		return l.e, nil
	}
	e, err := l.open()
	if err != nil {
		return nil, err
	}
	l.e = e
	return e, nil
}

func (l *lazyEngine) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.e != nil {
		l.e.Close()
		l.e = nil
	}
}

// Topics implements the DLT views' backend.
func (l *lazyEngine) Topics(ctx context.Context) ([]replay.TopicInfo, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Topics(ctx)
}

// Histogram implements the DLT views' backend.
func (l *lazyEngine) Histogram(ctx context.Context, topics []string, end time.Time, bucket time.Duration, n int) (map[string][]int64, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Histogram(ctx, topics, end, bucket, n)
}

// TopicsOutline implements the DLT views' backend.
func (l *lazyEngine) TopicsOutline(ctx context.Context) ([]replay.TopicInfo, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.TopicsOutline(ctx)
}

// StatsProgress implements the DLT views' backend.
func (l *lazyEngine) StatsProgress(ctx context.Context, topic string, sel *replay.Selection, progress func(*replay.Stats)) (*replay.Stats, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.StatsProgress(ctx, topic, sel, progress)
}

// Spans implements the DLT views' backend.
func (l *lazyEngine) Spans(ctx context.Context, topic string) ([]replay.Span, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Spans(ctx, topic)
}

// Index implements the DLT views' backend.
func (l *lazyEngine) Index(ctx context.Context, topic string, sel *replay.Selection, keep func(*dlt.Record) bool,
	progress func(replay.IndexProgress), fn func(replay.Coord) error,
) (map[int32]int64, replay.ScanSummary, error) {
	e, err := l.get()
	if err != nil {
		return nil, replay.ScanSummary{}, err
	}
	return e.Index(ctx, topic, sel, keep, progress, fn)
}

// Window implements the DLT views' backend.
func (l *lazyEngine) Window(ctx context.Context, topic string, coords []replay.Coord) ([]*dlt.Record, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Window(ctx, topic, coords)
}

// Get implements the DLT views' backend.
func (l *lazyEngine) Get(ctx context.Context, topic string, partition int32, offset int64) (*dlt.Record, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Get(ctx, topic, partition, offset)
}

// Replayed implements the DLT and trace views' backend.
func (l *lazyEngine) Replayed(ctx context.Context, dltTopic string) (*replay.Replays, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Replayed(ctx, dltTopic)
}

// Plan implements the DLT views' backend.
func (l *lazyEngine) Plan(ctx context.Context, req replay.Request) (*replay.Plan, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Plan(ctx, req)
}

// Replay implements the DLT views' backend.
func (l *lazyEngine) Replay(ctx context.Context, req replay.Request) (*replay.Summary, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Replay(ctx, req)
}

// Find implements the trace view's backend.
func (l *lazyEngine) Find(ctx context.Context, q replay.FindQuery) (*replay.Found, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Find(ctx, q)
}

// OriginLags implements the DLT views' backend.
func (l *lazyEngine) OriginLags(ctx context.Context, dlts []string) (map[string]*replay.OriginLag, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.OriginLags(ctx, dlts)
}

// History implements the replay-history views' backend.
func (l *lazyEngine) History(ctx context.Context, dltTopic string) ([]replay.Run, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.History(ctx, dltTopic)
}

// Outcomes implements the replay-history views' backend.
func (l *lazyEngine) Outcomes(ctx context.Context, runs []replay.Run) (map[string]*replay.Outcome, error) {
	e, err := l.get()
	if err != nil {
		return nil, err
	}
	return e.Outcomes(ctx, runs)
}
