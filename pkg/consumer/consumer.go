// Package consumer is the Kafka consumer runtime the SAGA services share (section 6.5–6.6):
// one consumer group per service, offsets committed only after a record was processed,
// transient failures retried in place with backoff, and records that still fail — or can never
// succeed — written to <topic>.DLT with dlt.Build before their offset is committed.
//
// Partitions are processed concurrently, each strictly in order, and a failing record is retried
// where it stands, so the records of one key (one order) are never reordered. A record's offset
// is committed only once its handler succeeded or its dead letter was acknowledged by Kafka; if
// the dead-letter write keeps failing the partition is rewound to that record and it is processed
// again later. Delivery is therefore at least once, and handlers must be idempotent.
//
// A replayed record whose x-opsctl-target-group header names another group is committed and
// skipped, so `opsctl dlt replay` reaches only the group that failed.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/metrics"
)

// Handler processes one record. nil means done (the offset may be committed); an error is retried
// unless it is permanent (see Permanent, Retryable and event.ErrSchema). ctx carries the record's
// trace and ends when the attempt times out.
type Handler func(ctx context.Context, rec *kgo.Record) error

// Config configures a Consumer. Service, Group, Handlers and Producer are required; zero values
// elsewhere take the defaults noted on each field.
type Config struct {
	// Service is the errorSource written into dead letters, e.g. "order-service".
	Service string
	// Group is the consumer group, e.g. "order-service-group".
	Group string
	// Handlers maps each consumed topic to its handler.
	Handlers map[string]Handler
	// Producer writes dead letters; it must not be a transactional client.
	Producer *kgo.Client
	// Metrics receives the saga_kafka_records_* counters; a private set is used when nil.
	Metrics *metrics.Saga
	Logger  *slog.Logger
	// Tracer starts a process span per record; when nil the record's trace context is still
	// passed on to the handler.
	Tracer *kotel.Tracer
	// Now is the clock stamped on dead letters; time.Now by default.
	Now func() time.Time

	// Attempts is how often a record is tried before it is dead-lettered (default 3).
	Attempts int
	// Backoff is the wait after the first failed attempt; it doubles after each further one
	// (default 100ms), up to MaxBackoff (default 2s).
	Backoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one handler call (default 10s).
	AttemptTimeout time.Duration
	// DLTRetryFor is how long a failing dead-letter write is retried before the partition is
	// rewound to the record to try everything again later (default 30s).
	DLTRetryFor time.Duration
	// DrainTimeout is how long records in flight may take to finish after Run's context ends
	// (default 10s).
	DrainTimeout time.Duration
	// MaxPollRecords bounds one poll (default 500).
	MaxPollRecords int

	// Fault, when set, is called before the handler on every attempt; an error it returns is
	// that attempt's failure, classified like a handler's. `opsctl sandbox` injects its fault
	// windows here (a database that cannot take locks, say) without touching the handlers.
	Fault Handler
}

// Consumer consumes one group's topics.
type Consumer struct {
	cfg    Config
	client *kgo.Client
}

// New creates the group client from the connection options clientOpts (brokers, TLS, SASL,
// hooks). Consuming starts with Run.
func New(clientOpts []kgo.Opt, cfg Config) (*Consumer, error) {
	if cfg.Service == "" || cfg.Group == "" || len(cfg.Handlers) == 0 || cfg.Producer == nil {
		return nil, errors.New("consumer: Service, Group, Handlers and Producer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(cfg.Service)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 500
	}
	def(&cfg.Backoff, 100*time.Millisecond)
	def(&cfg.MaxBackoff, 2*time.Second)
	def(&cfg.AttemptTimeout, 10*time.Second)
	def(&cfg.DLTRetryFor, 30*time.Second)
	def(&cfg.DrainTimeout, 10*time.Second)
	cfg.Logger = cfg.Logger.With("group", cfg.Group)

	topics := make([]string, 0, len(cfg.Handlers))
	for t := range cfg.Handlers {
		topics = append(topics, t)
	}
	opts := append([]kgo.Opt{}, clientOpts...)
	opts = append(opts,
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		// Only committed records: opsctl replays dead letters in transactions, and a record of
		// an aborted replay must never be applied.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Rebalances wait until a polled batch is processed and committed, so a partition is
		// never processed by two members at once.
		kgo.BlockRebalanceOnPoll(),
		// A new group starts at the beginning: events written before the first deploy count.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Group, err)
	}
	return &Consumer{cfg: cfg, client: cl}, nil
}

// Client is the group client, e.g. for readiness checks.
func (c *Consumer) Client() *kgo.Client { return c.client }

// Run consumes until ctx ends. Then it stops taking new records, lets records in flight finish
// (up to DrainTimeout), commits them, and leaves the group.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.client.Close()
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(c.cfg.DrainTimeout, cancelWork) })
	defer stopDrain()

	for {
		fetches := c.client.PollRecords(ctx, c.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.client.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			c.cfg.Logger.Warn("kafka fetch failed", "topic", topic, "partition", p, "err", err)
		})
		c.process(ctx, work, fetches)
		c.client.AllowRebalance()
	}
}

type partResult struct {
	last   *kgo.Record // last record done (processed or dead-lettered)
	rewind *kgo.Record // first record not done, when the partition must be re-read from it
}

func (c *Consumer) process(ctx, work context.Context, fetches kgo.Fetches) {
	var parts []kgo.FetchTopicPartition
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			parts = append(parts, p)
		}
	})
	results := make([]partResult, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.partition(ctx, work, p.Records)
		}()
	}
	wg.Wait()

	var commit []*kgo.Record
	rewind := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range results {
		if r.last != nil {
			commit = append(commit, r.last)
		}
		if r.rewind != nil && ctx.Err() == nil {
			if rewind[r.rewind.Topic] == nil {
				rewind[r.rewind.Topic] = map[int32]kgo.EpochOffset{}
			}
			rewind[r.rewind.Topic][r.rewind.Partition] = kgo.EpochOffset{Epoch: -1, Offset: r.rewind.Offset}
		}
	}
	if len(rewind) > 0 {
		c.client.SetOffsets(rewind)
	}
	if len(commit) > 0 {
		cctx, cancel := context.WithTimeout(work, 10*time.Second)
		defer cancel()
		if err := c.client.CommitRecords(cctx, commit...); err != nil {
			// The records are processed; after a restart they are delivered again and the
			// handlers' idempotency makes that harmless.
			c.cfg.Logger.Warn("committing offsets failed; records may be redelivered", "err", err)
		}
	}
}

func (c *Consumer) partition(ctx, work context.Context, recs []*kgo.Record) partResult {
	var res partResult
	for _, rec := range recs {
		if ctx.Err() != nil {
			return res // shutting down: leave the rest for the next owner
		}
		if !c.handle(ctx, work, rec) {
			res.rewind = rec
			return res
		}
		res.last = rec
	}
	return res
}

// handle processes one record and reports whether it is done (processed, skipped or
// dead-lettered), i.e. whether its offset may be committed.
func (c *Consumer) handle(ctx, work context.Context, rec *kgo.Record) bool {
	log := c.cfg.Logger.With("topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "key", string(rec.Key))
	if tg := dlt.TargetGroup(rec.Headers); tg != "" && tg != c.cfg.Group {
		log.Debug("skipping a record replayed for another group", "target_group", tg)
		c.cfg.Metrics.Consumed.WithLabelValues(rec.Topic, c.cfg.Group).Inc()
		return true
	}
	pctx, span := c.span(work, rec)
	defer span.End()
	handler := c.cfg.Handlers[rec.Topic]
	var err error
	for attempt := 1; ; attempt++ {
		err = c.call(pctx, handler, rec)
		if err == nil {
			c.cfg.Metrics.Consumed.WithLabelValues(rec.Topic, c.cfg.Group).Inc()
			return true
		}
		code := CodeOf(err)
		c.cfg.Metrics.Failed.WithLabelValues(rec.Topic, c.cfg.Group, code).Inc()
		if IsPermanent(err) || attempt >= c.cfg.Attempts {
			log.Warn("record failed; sending it to the dead-letter topic", "attempt", attempt, "error_code", code, "err", err)
			break
		}
		log.Info("record failed; retrying", "attempt", attempt, "error_code", code, "err", err)
		if !sleep(ctx, c.backoff(attempt)) {
			return false
		}
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, CodeOf(err))
	return c.deadLetter(ctx, work, pctx, rec, err, log)
}

func (c *Consumer) call(ctx context.Context, h Handler, rec *kgo.Record) (err error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = Retryable(CodePanic, fmt.Errorf("handler panicked: %v", p))
		}
	}()
	if c.cfg.Fault != nil {
		if err := c.cfg.Fault(actx, rec); err != nil {
			return err
		}
	}
	return h(actx, rec)
}

func (c *Consumer) deadLetter(ctx, work, pctx context.Context, rec *kgo.Record, cause error, log *slog.Logger) bool {
	code := CodeOf(cause)
	dl := dlt.Build(rec, dlt.Failure{
		Source:  c.cfg.Service,
		Code:    code,
		Message: cause.Error(),
		Stack:   causeChain(cause),
		Group:   c.cfg.Group,
		At:      c.cfg.Now(),
	})
	start := time.Now()
	for try := 1; ; try++ {
		dl.Context = pctx
		rctx, cancel := context.WithTimeout(work, 10*time.Second)
		err := c.cfg.Producer.ProduceSync(rctx, dl).FirstErr()
		cancel()
		if err == nil {
			c.cfg.Metrics.DeadLettered.WithLabelValues(rec.Topic, c.cfg.Group, code).Inc()
			log.Warn("record dead-lettered", "dlt", dl.Topic, "dlt_partition", dl.Partition, "dlt_offset", dl.Offset, "error_code", code)
			return true
		}
		log.Error("writing the dead letter failed; the record stays uncommitted", "dlt", dl.Topic, "try", try, "err", err)
		if ctx.Err() != nil || time.Since(start) >= c.cfg.DLTRetryFor {
			return false
		}
		if !sleep(ctx, c.backoff(try)) {
			return false
		}
	}
}

// span starts the record's process span under work, so the handler sees both the record's trace
// and the drain deadline.
func (c *Consumer) span(work context.Context, rec *kgo.Record) (context.Context, trace.Span) {
	if c.cfg.Tracer != nil {
		_, span := c.cfg.Tracer.WithProcessSpan(rec)
		return trace.ContextWithSpan(work, span), span
	}
	ctx := propagation.TraceContext{}.Extract(work, kotel.NewRecordCarrier(rec))
	return ctx, trace.SpanFromContext(ctx)
}

func (c *Consumer) backoff(attempt int) time.Duration {
	d := c.cfg.Backoff
	for i := 1; i < attempt && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.cfg.MaxBackoff)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
