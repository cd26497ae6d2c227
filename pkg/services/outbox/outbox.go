// Package outbox is the transactional outbox of section 6.8 with the retry table folded in: a
// service writes its events into the outbox table in the same transaction as the state change
// they announce (Add), and a relay publishes them with franz-go's idempotent producer and marks
// them SENT. When a publish fails the rows are marked FAILED and retried with exponential backoff
// (capped at a minute, the design's retry scheduler), so nothing is lost while Kafka is down and
// everything goes out once it is back. A row that still fails after MaxAttempts publishes is
// marked FAILED: the relay stops trying it, it no longer holds back later rows of its key, and the
// saga_outbox_failed gauge (alert SagaOutboxRowsFailed) calls an operator.
//
// Ordering: rows are published in id order, and a row is held back while an earlier unsent row
// with the same topic and key is waiting for its retry or is being published by another relay, so
// one order's events keep their order even across failures. Several replicas may relay at once:
// a claim is a short transaction (serialised across replicas by an advisory lock on PostgreSQL,
// rows taken with FOR UPDATE SKIP LOCKED) that leases the rows by pushing their next attempt out,
// and publishing happens outside any transaction, so a relay that dies mid-publish only delays its
// rows by the lease. Each claim carries a fresh lease token and the outcome of a publish is
// recorded only on rows still holding it: a relay whose publish outlived its lease, so that
// another relay claimed and published the rows meanwhile, cannot overwrite that relay's record.
// Delivery is at least once — consumers are idempotent.
package outbox

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"

	"github.com/come2us/opsctl/pkg/services/store"
)

// Row states.
const (
	// StatusPending rows were never tried.
	StatusPending = "PENDING"
	// StatusRetry rows failed to publish and are retried with backoff.
	StatusRetry = "RETRY"
	// StatusFailed rows failed MaxAttempts times; the relay gave up on them.
	StatusFailed = "FAILED"
	// StatusSent rows are published.
	StatusSent = "SENT"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrate creates or updates the outbox table in db.
func Migrate(ctx context.Context, db *store.DB) error {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("outbox migrations: %w", err)
	}
	return db.Migrate(ctx, "outbox", sub)
}

// Message is one record to publish.
type Message struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []kgo.RecordHeader
}

type header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Add stores msgs in tx; they are published after tx commits (call Relay.Kick after the commit
// to publish at once). The trace context of ctx travels with them as W3C traceparent headers.
func Add(ctx context.Context, tx store.Execer, now time.Time, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	values, args, err := rows(ctx, now, 1, false, msgs)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insert+` VALUES `+values, args...); err != nil {
		return fmt.Errorf("outbox: insert %d %s records: %w", len(msgs), msgs[0].Topic, err)
	}
	return nil
}

// AddAfter stores msgs together with the change they announce in one PostgreSQL statement:
// change is a data-modifying statement with a RETURNING clause (an UPDATE … RETURNING 1)
// whose placeholders are $1 … $len(changeArgs), and msgs are stored only when it returned a
// row. It reports whether they were (false: change matched nothing, and nothing changed). A
// single statement is atomic without BEGIN and COMMIT: the state change and its events cost one
// round trip to the server instead of four. On SQLite, which has no data-modifying WITH, use
// Add inside a transaction.
func AddAfter(ctx context.Context, db *store.DB, now time.Time, change string, changeArgs []any, msgs ...Message) (bool, error) {
	if db.Dialect() != store.Postgres {
		return false, fmt.Errorf("outbox: AddAfter needs PostgreSQL, not %s", db.Dialect())
	}
	ins, args, err := Insert(ctx, now, len(changeArgs)+1, msgs...)
	if err != nil {
		return false, err
	}
	// A data-modifying WITH runs exactly once whether or not the rest reads it; the insert reads
	// it only to learn whether it changed a row.
	res, err := db.Exec(ctx, `WITH change AS (`+change+`) `+ins+` WHERE EXISTS (SELECT 1 FROM change)`,
		append(slices.Clip(changeArgs), args...)...)
	if err != nil {
		return false, fmt.Errorf("outbox: insert %d %s records with their change: %w", len(msgs), msgs[0].Topic, err)
	}
	stored, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("outbox: insert %d %s records with their change: %w", len(msgs), msgs[0].Topic, err)
	}
	return stored > 0, nil
}

// Insert renders the PostgreSQL statement that stores msgs, "INSERT INTO outbox … SELECT * FROM
// (VALUES …) AS v", with placeholders from $first, for a statement that writes the outbox with
// the change it announces (a data-modifying WITH before it, a WHERE after it that makes the
// insert depend on the change; see AddAfter). The VALUES list is typed by casts, as a VALUES in
// FROM takes no types from the table it fills.
func Insert(ctx context.Context, now time.Time, first int, msgs ...Message) (string, []any, error) {
	if len(msgs) == 0 {
		return "", nil, errors.New("outbox: nothing to insert")
	}
	values, args, err := rows(ctx, now, first, true, msgs)
	if err != nil {
		return "", nil, err
	}
	return insert + ` SELECT * FROM (VALUES ` + values + `) AS v`, args, nil
}

const insert = `INSERT INTO outbox (topic, record_key, record_value, headers, status, attempts, next_attempt_at, created_at)`

// rows renders msgs as the rows of a VALUES list with placeholders from $first, and their
// arguments; typed casts each placeholder to its column's PostgreSQL type.
func rows(ctx context.Context, now time.Time, first int, typed bool, msgs []Message) (string, []any, error) {
	traceHeaders := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, traceHeaders)
	at := store.Micros(now)
	// One statement for all of them: a compensation writes one row per order line.
	const cols = 7
	format := "($%d, $%d, $%d, $%d, $%d, 0, $%d, $%d)"
	if typed {
		format = "($%d::text, $%d::bytea, $%d::bytea, $%d::text, $%d::text, 0, $%d::bigint, $%d::bigint)"
	}
	var values strings.Builder
	args := make([]any, 0, cols*len(msgs))
	for i, m := range msgs {
		if m.Topic == "" || m.Value == nil {
			return "", nil, fmt.Errorf("outbox: message needs a topic and a value (topic %q)", m.Topic)
		}
		hs := make([]header, 0, len(m.Headers)+len(traceHeaders))
		have := map[string]bool{}
		for _, h := range m.Headers {
			hs = append(hs, header{Key: h.Key, Value: h.Value})
			have[h.Key] = true
		}
		for _, k := range traceHeaders.Keys() {
			if !have[k] {
				hs = append(hs, header{Key: k, Value: []byte(traceHeaders.Get(k))})
			}
		}
		hj, err := json.Marshal(hs)
		if err != nil {
			return "", nil, fmt.Errorf("outbox: encode headers: %w", err)
		}
		if i > 0 {
			values.WriteString(", ")
		}
		n := first + i*cols
		fmt.Fprintf(&values, format, n, n+1, n+2, n+3, n+4, n+5, n+6)
		args = append(args, m.Topic, m.Key, m.Value, string(hj), StatusPending, at, at)
	}
	return values.String(), args, nil
}

// Stats describes the rows not published.
type Stats struct {
	// Unsent counts the rows the relay is still to publish: PENDING and RETRY.
	Unsent int
	// Retrying counts rows whose last publish failed and that wait for their retry (RETRY).
	Retrying int
	// Failed counts rows the relay gave up on (FAILED); they wait for an operator.
	Failed int
	// Oldest is when the oldest row still to publish was written; zero when there is none.
	Oldest time.Time
}

// ReadStats reads the outbox's backlog.
func ReadStats(ctx context.Context, db store.Execer) (Stats, error) {
	var s Stats
	var oldest, retrying, failed, unsent sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT
			SUM(CASE WHEN status <> 'FAILED' THEN 1 ELSE 0 END),
			MIN(CASE WHEN status <> 'FAILED' THEN created_at END),
			SUM(CASE WHEN status = 'RETRY' THEN 1 ELSE 0 END),
			SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END)
		FROM outbox WHERE status <> 'SENT'`).Scan(&unsent, &oldest, &retrying, &failed)
	if err != nil {
		return s, fmt.Errorf("outbox stats: %w", err)
	}
	s.Unsent, s.Retrying, s.Failed = int(unsent.Int64), int(retrying.Int64), int(failed.Int64)
	if oldest.Valid {
		s.Oldest = store.Time(oldest.Int64)
	}
	return s, nil
}
