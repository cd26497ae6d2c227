// Package consumer is the Kafka consumer runtime the SAGA services share (section 6.5–6.6):
// one consumer group per service, offsets committed only after a record was processed,
// transient failures retried in place with backoff, and records that still fail — or can never
// succeed — written to <topic>.DLT with dlt.Build before their offset is committed.
//
// Partitions are processed concurrently, and so are the keys within a partition (KeyConcurrency
// at a time), while the records of one key (one order) are processed strictly in order and a
// failing record is retried where it stands, so they are never reordered. A record's offset is
// committed only once it and every record before it in its partition are done: its handler
// succeeded or its dead letter was acknowledged by Kafka. If a dead-letter write keeps failing
// the partition is rewound to that record and it is processed again later, with the records of
// other keys behind it. Delivery is therefore at least once, and handlers must be idempotent.
//
// Keys run side by side because one record's handler is mostly waiting — for a database commit —
// and a partition holds the records of many orders: one after another, a partition would go no
// faster than one commit at a time, and every record would wait for all before it.
//
// Failures come in three kinds. A permanent one (a business rule, an invalid event) goes to the
// DLT at once. A transient one — a row lock, a timeout, a lost connection: trouble that passes by
// itself — is retried in place with backoff for RetryFor (minutes), so a database or broker
// hiccup never turns into dead letters and a payment result is never parked where only an
// operator finds it. Any other error is tried Attempts times. Long retrying happens in rounds of
// HoldFor: between rounds the partition is rewound to the failing record and the poll released,
// so the group can still rebalance while a record waits for its database.
//
// Dead letters are written once per source record: before writing one, the consumer looks for a
// dead letter of the same record (topic, partition, offset) by the same group near the end of the
// DLT — written by an earlier owner of the partition whose offset commit was lost — and commits
// instead of writing a second.
//
// With InstanceID the consumer is a static group member (KIP-345): a process killed and restarted
// under the same id (the pod's name) takes its partitions back at once instead of waiting for the
// dead member's session to expire. A graceful shutdown leaves the group explicitly, so a pod that
// goes away for good does not hold its partitions for a session timeout either.
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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
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

	// InstanceID makes the consumer a static member of its group under this id, which must be
	// unique in the group and stable across restarts of the same process — the pod's name. Empty
	// means a dynamic member.
	InstanceID string

	// Attempts is how often a record failing with an error that is neither permanent nor
	// transient is tried before it is dead-lettered (default 3).
	Attempts int
	// RetryFor is how long a record failing with a transient error (see Transient) is retried in
	// place before it is dead-lettered (default 5m): long enough to ride out a database failover,
	// a held row lock or a broker restart.
	RetryFor time.Duration
	// HoldFor bounds one round of in-place retries (default 20s). After it the partition is rewound
	// to the failing record and the poll released, so a rebalance can go ahead, and retrying goes
	// on from the next poll. Keep it well under the group's rebalance timeout (60s by default).
	HoldFor time.Duration
	// Backoff is the wait after the first failed attempt; it doubles after each further one
	// (default 100ms), up to MaxBackoff (default 5s).
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
	// KeyConcurrency is how many keys of one partition are processed at once (default 8); the
	// records of one key are always processed one after another. 1 processes a partition strictly
	// in offset order.
	KeyConcurrency int

	// Fault, when set, is called before the handler on every attempt; an error it returns is
	// that attempt's failure, classified like a handler's. `opsctl sandbox` injects its fault
	// windows here (a database that cannot take locks, say) without touching the handlers.
	Fault Handler
}

// Consumer consumes one group's topics.
type Consumer struct {
	cfg        Config
	client     *kgo.Client
	clientOpts []kgo.Opt // connection options, for the dead-letter lookups

	mu       sync.Mutex
	retrying map[recordKey]retryState // the failing records, across polls
}

// recordKey names a record by its coordinates.
type recordKey struct {
	topic     string
	partition int32
	offset    int64
}

// retryState remembers a failing record between rounds of retries, so RetryFor and Attempts
// count from its first failure, not from the latest rewind.
type retryState struct {
	since    time.Time
	attempts int
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
	if cfg.KeyConcurrency <= 0 {
		cfg.KeyConcurrency = 8
	}
	def(&cfg.Backoff, 100*time.Millisecond)
	def(&cfg.MaxBackoff, 5*time.Second)
	def(&cfg.RetryFor, 5*time.Minute)
	def(&cfg.HoldFor, 20*time.Second)
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
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
		cfg.Logger = cfg.Logger.With("instance_id", cfg.InstanceID)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Group, err)
	}
	return &Consumer{cfg: cfg, client: cl, clientOpts: append([]kgo.Opt{}, clientOpts...), retrying: map[recordKey]retryState{}}, nil
}

// Client is the group client, e.g. for readiness checks.
func (c *Consumer) Client() *kgo.Client { return c.client }

// Run consumes until ctx ends. Then it stops taking new records, lets records in flight finish
// (up to DrainTimeout), commits them, and leaves the group.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.close(ctx)
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

// close closes the group client. A static member is not removed from the group by closing (that
// is the point of static membership: a restart must not rebalance), so a graceful shutdown removes
// it explicitly; a process that dies skips this and its successor takes the instance id over.
// It runs after ctx has ended, so the leave request keeps ctx's values but not its cancellation.
func (c *Consumer) close(ctx context.Context) {
	c.client.Close()
	if c.cfg.InstanceID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	res, err := kadm.NewClient(c.cfg.Producer).LeaveGroup(ctx, kadm.LeaveGroup(c.cfg.Group).
		InstanceIDs(c.cfg.InstanceID).Reason("graceful shutdown"))
	if err == nil {
		res.EachError(func(l kadm.LeaveGroupResponse) { err = l.Err })
	}
	if err != nil {
		c.cfg.Logger.Warn("leaving the group at shutdown failed; the partitions move once the session expires", "err", err)
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

// partition processes one partition's polled records: the records of each key in offset order,
// up to KeyConcurrency keys at once. It reports the last record of the longest done prefix (to
// commit) and the first record not done (to rewind to); records of other keys after that one may
// be done already and are then processed again from the rewind, which idempotent handlers allow.
func (c *Consumer) partition(ctx, work context.Context, recs []*kgo.Record) partResult {
	done := make([]bool, len(recs))
	lane := func(idx []int) {
		for _, i := range idx {
			if ctx.Err() != nil {
				return // shutting down: leave the rest for the next owner
			}
			if !c.handle(ctx, work, recs[i]) {
				return
			}
			done[i] = true
		}
	}
	lanes := byKey(recs)
	if len(lanes) == 1 || c.cfg.KeyConcurrency == 1 {
		var all []int
		if len(lanes) == 1 {
			all = lanes[0]
		} else {
			all = make([]int, len(recs))
			for i := range all {
				all[i] = i
			}
		}
		lane(all)
	} else {
		next := make(chan []int)
		var wg sync.WaitGroup
		for range min(c.cfg.KeyConcurrency, len(lanes)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for idx := range next {
					lane(idx)
				}
			}()
		}
		for _, idx := range lanes {
			next <- idx
		}
		close(next)
		wg.Wait()
	}
	var res partResult
	for i, rec := range recs {
		if !done[i] {
			res.rewind = rec
			break
		}
		res.last = rec
	}
	return res
}

// byKey splits recs into the indexes of each key's records, in offset order, the keys in the
// order of their first record.
func byKey(recs []*kgo.Record) [][]int {
	at := map[string]int{}
	var lanes [][]int
	for i, r := range recs {
		k := string(r.Key)
		j, ok := at[k]
		if !ok {
			j = len(lanes)
			at[k] = j
			lanes = append(lanes, nil)
		}
		lanes[j] = append(lanes[j], i)
	}
	return lanes
}

// handle processes one record and reports whether it is done (processed, skipped or
// dead-lettered), i.e. whether its offset may be committed. A record that is not done is read
// again from the same offset: after a round of transient failures (HoldFor), at shutdown, or when
// its dead letter could not be written.
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
	st := c.failing(rec)
	round := time.Now() // the rebalance timeout is wall time, whatever clock the service uses
	var err error
	for {
		err = c.call(pctx, handler, rec)
		if err == nil {
			c.forget(rec)
			c.cfg.Metrics.Consumed.WithLabelValues(rec.Topic, c.cfg.Group).Inc()
			return true
		}
		st.attempts++
		code := CodeOf(err)
		c.cfg.Metrics.Failed.WithLabelValues(rec.Topic, c.cfg.Group, code).Inc()
		if reason := c.giveUp(err, st); reason != "" {
			log.Warn("record failed; sending it to the dead-letter topic", "attempt", st.attempts, "error_code", code, "why", reason, "err", err)
			break
		}
		if time.Since(round) >= c.cfg.HoldFor {
			c.remember(rec, st)
			log.Info("record still failing; releasing the partition for a rebalance and retrying from the next poll",
				"attempt", st.attempts, "error_code", code, "failing_for", c.cfg.Now().Sub(st.since).Round(time.Millisecond).String(), "err", err)
			return false
		}
		log.Info("record failed; retrying", "attempt", st.attempts, "error_code", code, "err", err)
		if !sleep(ctx, c.backoff(st.attempts)) {
			c.remember(rec, st)
			return false
		}
	}
	c.forget(rec)
	span.RecordError(err)
	span.SetStatus(codes.Error, CodeOf(err))
	return c.deadLetter(ctx, work, pctx, rec, err, log)
}

// giveUp says why a record that failed with err after st must go to the DLT now, or "" to retry.
func (c *Consumer) giveUp(err error, st retryState) string {
	switch {
	case IsPermanent(err):
		return "permanent failure"
	case IsTransient(err):
		if c.cfg.Now().Sub(st.since) >= c.cfg.RetryFor {
			return fmt.Sprintf("transient failure lasted %s", c.cfg.RetryFor)
		}
		return ""
	case st.attempts >= c.cfg.Attempts:
		return fmt.Sprintf("failed %d attempts", st.attempts)
	}
	return ""
}

// failing returns the retry state of rec: the remembered one when an earlier round failed on the
// same record, else a fresh one starting now.
func (c *Consumer) failing(rec *kgo.Record) retryState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.retrying[recordKey{rec.Topic, rec.Partition, rec.Offset}]; ok {
		return st
	}
	return retryState{since: c.cfg.Now()}
}

func (c *Consumer) remember(rec *kgo.Record, st retryState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retrying[recordKey{rec.Topic, rec.Partition, rec.Offset}] = st
}

func (c *Consumer) forget(rec *kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.retrying, recordKey{rec.Topic, rec.Partition, rec.Offset})
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
		rctx, cancel := context.WithTimeout(work, 10*time.Second)
		written, lerr := c.deadLettered(rctx, rec)
		if lerr != nil {
			// Without reading the DLT a duplicate cannot be ruled out; a second dead letter is
			// better than none.
			log.Warn("could not look for an earlier dead letter of this record; writing one", "dlt", dl.Topic, "err", lerr)
		}
		if written {
			cancel()
			log.Warn("the dead letter of this record was written before (its offset commit was lost); not writing it again", "dlt", dl.Topic, "error_code", code)
			return true
		}
		dl.Context = pctx
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

// dedupWindow is how many records at the end of each DLT partition are searched for an earlier
// dead letter of a record. A duplicate comes from an owner whose commit was lost just before a
// rebalance, so its dead letter is among the last few the group wrote.
const dedupWindow = 500

// deadLettered reports whether the DLT of rec's topic already holds a dead letter of rec (same
// topic, partition and offset) written by this group, looking at the last dedupWindow records of
// every DLT partition.
func (c *Consumer) deadLettered(ctx context.Context, rec *kgo.Record) (bool, error) {
	topic := event.DLT(rec.Topic)
	adm := kadm.NewClient(c.cfg.Producer)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return false, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	from := map[int32]kgo.Offset{}
	want := map[int32]int64{} // partition → last offset to read
	ends.Each(func(e kadm.ListedOffset) {
		first := max(e.Offset-dedupWindow, 0)
		if s, ok := starts.Lookup(topic, e.Partition); ok {
			first = max(first, s.Offset)
		}
		if e.Offset > first {
			from[e.Partition] = kgo.NewOffset().At(first)
			want[e.Partition] = e.Offset - 1
		}
	})
	if len(from) == 0 {
		return false, nil
	}
	reader, err := kgo.NewClient(append(append([]kgo.Opt{}, c.clientOpts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))...)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", topic, err)
	}
	defer reader.Close()
	for len(want) > 0 {
		fetches := reader.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("read %s: %w", topic, err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return false, fmt.Errorf("read %s: %w", topic, ferr)
		}
		found := false
		fetches.EachRecord(func(r *kgo.Record) {
			if last, ok := want[r.Partition]; ok && r.Offset >= last {
				delete(want, r.Partition)
			}
			d := dlt.DecodeBrief(r)
			if d.Group == c.cfg.Group && d.Origin.Topic == rec.Topic && d.Origin.Partition == rec.Partition && d.Origin.Offset == rec.Offset {
				found = true
			}
		})
		if found {
			return true, nil
		}
	}
	return false, nil
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
