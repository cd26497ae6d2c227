package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"

	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Config configures a Relay. DB and Producer are required; zero durations take the defaults
// noted on each field.
type Config struct {
	DB *store.DB
	// Producer publishes the rows. It should be idempotent (franz-go's default) and have a
	// RecordDeliveryTimeout, so a publish to an unreachable cluster fails instead of waiting
	// forever.
	Producer *kgo.Client
	// Metrics receives saga_outbox_backlog and saga_outbox_oldest_age_seconds; may be nil.
	Metrics *metrics.Saga
	Logger  *slog.Logger
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// Batch is how many rows one pass claims (default 200).
	Batch int
	// PollInterval is how often the relay looks for rows when nobody kicked it (default 1s).
	PollInterval time.Duration
	// Lease hides claimed rows from other relays while they are being published (default 30s).
	Lease time.Duration
	// RetryBackoff is the wait before the first retry of a failed row; it doubles with each
	// further failure (default 1s).
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the backoff (default 1 minute, the design's retry scheduler period).
	MaxRetryBackoff time.Duration
	// MaxAttempts is how many failed publishes make the relay give up on a row and mark it FAILED
	// (default 30: about 25 minutes of retrying with the default backoff — long enough that a
	// Kafka outage is an outage, alerted on its own, rather than a pile of given-up rows).
	MaxAttempts int
	// Retention is how long SENT rows are kept for inspection before they are deleted
	// (default 7 days, the topics' retention).
	Retention time.Duration
	// ShutdownFlush bounds the last publish pass when Run's context ends (default 5s).
	ShutdownFlush time.Duration
}

// Relay publishes outbox rows.
type Relay struct {
	cfg       Config
	kick      chan struct{}
	lastStats time.Time
	lastPurge time.Time
}

// NewRelay validates cfg and fills in defaults.
func NewRelay(cfg Config) (*Relay, error) {
	if cfg.DB == nil || cfg.Producer == nil {
		return nil, errors.New("outbox relay: DB and Producer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 30
	}
	def(&cfg.PollInterval, time.Second)
	def(&cfg.Lease, 30*time.Second)
	def(&cfg.RetryBackoff, time.Second)
	def(&cfg.MaxRetryBackoff, time.Minute)
	def(&cfg.Retention, 7*24*time.Hour)
	def(&cfg.ShutdownFlush, 5*time.Second)
	return &Relay{cfg: cfg, kick: make(chan struct{}, 1)}, nil
}

// Kick wakes the relay so rows committed just now are published without waiting for the next
// poll. It never blocks.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends, then makes one last bounded pass so rows committed during
// shutdown go out too; what still fails stays in the table for the next start.
func (r *Relay) Run(ctx context.Context) error {
	timer := time.NewTimer(r.cfg.PollInterval)
	defer timer.Stop()
	for {
		res, err := r.PublishOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Error("outbox relay pass failed; retrying", "err", err)
		}
		r.housekeeping(ctx)
		if ctx.Err() != nil {
			return r.flush(ctx)
		}
		if err == nil && res.Claimed == r.cfg.Batch {
			continue // more rows are waiting
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(r.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return r.flush(ctx)
		case <-r.kick:
		case <-timer.C:
		}
	}
}

// flush is the last pass after ctx has ended: it keeps ctx's values but not its cancellation,
// and stops at ShutdownFlush.
func (r *Relay) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ShutdownFlush)
	defer cancel()
	for {
		res, err := r.PublishOnce(ctx)
		if err != nil {
			return fmt.Errorf("outbox relay: final publish at shutdown: %w", err)
		}
		if res.Claimed < r.cfg.Batch || ctx.Err() != nil {
			r.updateStats(ctx)
			return nil
		}
	}
}

func (r *Relay) housekeeping(ctx context.Context) {
	now := r.cfg.Now()
	if now.Sub(r.lastStats) >= time.Second {
		r.lastStats = now
		r.updateStats(ctx)
	}
	if now.Sub(r.lastPurge) >= time.Hour {
		r.lastPurge = now
		cutoff := store.Micros(now.Add(-r.cfg.Retention))
		err := r.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE status = 'SENT' AND sent_at < $1`, cutoff)
			return err
		})
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("outbox: deleting old sent rows failed", "err", err)
		}
	}
}

func (r *Relay) updateStats(ctx context.Context) {
	if r.cfg.Metrics == nil {
		return
	}
	s, err := ReadStats(ctx, r.cfg.DB.SQL)
	if err != nil {
		return
	}
	r.cfg.Metrics.OutboxBacklog.Set(float64(s.Unsent))
	r.cfg.Metrics.OutboxFailedRows.Set(float64(s.Failed))
	age := 0.0
	if !s.Oldest.IsZero() {
		age = max(0, r.cfg.Now().Sub(s.Oldest).Seconds())
	}
	r.cfg.Metrics.OutboxAge.Set(age)
}

// Result counts one pass.
type Result struct {
	// Claimed rows were leased for this pass; Sent of them were published and Failed were not.
	Claimed, Sent, Failed int
	// GaveUp counts the failed rows that reached MaxAttempts and are now FAILED.
	GaveUp int
	// LeaseLost counts rows whose outcome was not recorded because their lease had passed to
	// another relay by then; that relay's record stands.
	LeaseLost int
}

// sentChunk is how many rows one statement marks SENT.
const sentChunk = 500

// claimLock is the advisory lock key serialising outbox claims on PostgreSQL.
const claimLock = 7064173266

type row struct {
	id        int64
	topic     string
	key       []byte
	value     []byte
	headers   string
	attempts  int
	createdAt int64
}

// PublishOnce claims up to Batch due rows, publishes them and records the outcome. It is what Run
// does on every pass; tests and tools call it to publish deterministically.
func (r *Relay) PublishOnce(ctx context.Context) (Result, error) {
	token := uuid.NewString()
	rows, err := r.claim(ctx, token)
	if err != nil || len(rows) == 0 {
		return Result{}, err
	}
	res := Result{Claimed: len(rows)}
	// Finish publishing what was claimed even if ctx ends (shutdown), but never beyond the
	// lease, after which another relay may take the rows.
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Lease)
	defer pcancel()
	recs := make([]*kgo.Record, len(rows))
	for i, rw := range rows {
		recs[i] = r.record(pctx, rw)
	}
	results := r.cfg.Producer.ProduceSync(pctx, recs...)
	now := r.cfg.Now()
	var sent []int64
	type failure struct {
		id       int64
		attempts int
		err      string
	}
	var failed []failure
	for i, pr := range results {
		if pr.Err != nil {
			failed = append(failed, failure{rows[i].id, rows[i].attempts + 1, pr.Err.Error()})
			continue
		}
		sent = append(sent, rows[i].id)
	}
	res.Sent, res.Failed = len(sent), len(failed)
	// Record the outcome even when ctx has ended: the records are out (or not) either way. Only
	// rows still leased under this pass's token are touched.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var gaveUp []failure
	markSent := func(ex func(ctx context.Context, query string, args ...any) (sql.Result, error)) error {
		for start := 0; start < len(sent); start += sentChunk {
			ids := sent[start:min(start+sentChunk, len(sent))]
			args := []any{StatusSent, store.Micros(now), token}
			for _, id := range ids {
				args = append(args, id)
			}
			n, err := affected(ex(mctx, `UPDATE outbox SET status = $1, sent_at = $2, attempts = attempts + 1, last_error = NULL
				WHERE lease_token = $3 AND id IN (`+store.In(4, len(ids))+`)`, args...))
			if err != nil {
				return err
			}
			res.LeaseLost += len(ids) - n
		}
		return nil
	}
	if len(failed) == 0 && len(sent) <= sentChunk {
		// The usual pass, everything published, records it in one statement, sent without a
		// transaction around it.
		err = markSent(r.cfg.DB.Exec)
	} else {
		err = r.cfg.DB.Tx(mctx, func(tx *sql.Tx) error {
			res.LeaseLost, res.GaveUp, gaveUp = 0, 0, gaveUp[:0]
			if err := markSent(tx.ExecContext); err != nil {
				return err
			}
			for _, f := range failed {
				status, next := StatusRetry, now.Add(r.backoff(f.attempts))
				if f.attempts >= r.cfg.MaxAttempts {
					status = StatusFailed
				}
				n, err := affected(tx.ExecContext(mctx, `UPDATE outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4
					WHERE id = $5 AND lease_token = $6`,
					status, f.attempts, store.Micros(next), truncate(f.err, 1000), f.id, token))
				if err != nil {
					return err
				}
				switch {
				case n == 0:
					res.LeaseLost++
				case status == StatusFailed:
					res.GaveUp++
					gaveUp = append(gaveUp, f)
				}
			}
			return nil
		})
	}
	if err != nil {
		// The rows stay leased and are published again when the lease ends: a duplicate, which
		// consumers tolerate, rather than a loss.
		return res, fmt.Errorf("outbox: record publish outcome of %d rows (%d were published): %w", len(rows), len(sent), err)
	}
	if res.LeaseLost > 0 {
		r.cfg.Logger.Warn("outbox: publish outlived its lease; another relay claimed the rows, so its record of them stands (they may be published twice)",
			"rows", res.LeaseLost, "lease", r.cfg.Lease.String())
	}
	for _, f := range gaveUp {
		r.cfg.Logger.Error("outbox: giving up on a row after its maximum attempts; it is marked FAILED and needs an operator",
			"id", f.id, "attempts", f.attempts, "err", f.err)
	}
	if len(failed) > len(gaveUp) {
		r.cfg.Logger.Warn("outbox: publish failed; rows kept for retry",
			"failed", len(failed)-len(gaveUp), "sent", len(sent), "err", failed[0].err,
			"retry_in", r.backoff(failed[0].attempts).String())
	}
	if len(gaveUp) > 0 {
		r.updateStats(mctx)
	}
	return res, nil
}

func affected(res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (r *Relay) claim(ctx context.Context, token string) ([]row, error) {
	now := r.cfg.Now()
	var rows []row
	// Claims are serialised across replicas (they take milliseconds): with two claims in flight,
	// one could skip a locked earlier row of a key and take a later one.
	err := r.cfg.DB.SerializedTx(ctx, claimLock, func(tx store.Execer) error {
		rows = rows[:0]
		// A row is due when it is PENDING or RETRY and its next attempt has come, unless an
		// earlier row of its key still waits for a retry or is leased to a relay. FAILED rows
		// hold nothing back: the relay gave up on them.
		// The rows are found through the outbox_unsent index, and updated by their ids: on
		// PostgreSQL as an array the planner looks up in the primary key, where an IN would be
		// joined to a scan of every row published so far.
		due := `SELECT o.id FROM outbox o
				WHERE o.status <> 'SENT' AND o.status <> 'FAILED' AND o.next_attempt_at <= $2
				  AND NOT EXISTS (
					SELECT 1 FROM outbox p
					WHERE p.status <> 'SENT' AND p.status <> 'FAILED' AND p.topic = o.topic AND p.record_key = o.record_key
					  AND p.id < o.id AND p.next_attempt_at > $2)
				ORDER BY o.id
				LIMIT $3` + r.cfg.DB.SkipLocked()
		ids := `id IN (` + due + `)`
		if r.cfg.DB.Dialect() == store.Postgres {
			ids = `id = ANY (ARRAY(` + due + `))`
		}
		q := `UPDATE outbox SET next_attempt_at = $1, lease_token = $4 WHERE ` + ids + `
			RETURNING id, topic, record_key, record_value, headers, attempts, created_at`
		rs, err := tx.QueryContext(ctx, q, store.Micros(now.Add(r.cfg.Lease)), store.Micros(now), r.cfg.Batch, token)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var rw row
			if err := rs.Scan(&rw.id, &rw.topic, &rw.key, &rw.value, &rw.headers, &rw.attempts, &rw.createdAt); err != nil {
				return err
			}
			rows = append(rows, rw)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: claim rows: %w", err)
	}
	// RETURNING does not promise an order; publish in id order.
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	return rows, nil
}

func (r *Relay) record(ctx context.Context, rw row) *kgo.Record {
	rec := &kgo.Record{Topic: rw.topic, Key: rw.key, Value: rw.value}
	var hs []header
	if err := json.Unmarshal([]byte(rw.headers), &hs); err != nil {
		r.cfg.Logger.Warn("outbox: row headers unreadable; publishing without them", "id", rw.id, "err", err)
	}
	carrier := propagation.MapCarrier{}
	for _, h := range hs {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		carrier[h.Key] = string(h.Value)
	}
	// The publish joins the trace of the request or record that wrote the row.
	rec.Context = propagation.TraceContext{}.Extract(ctx, carrier)
	return rec
}

func (r *Relay) backoff(attempts int) time.Duration {
	d := r.cfg.RetryBackoff
	for i := 1; i < attempts && d < r.cfg.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, r.cfg.MaxRetryBackoff)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
