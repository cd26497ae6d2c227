// Package replay is the dead-letter engine behind `opsctl dlt` and the TUI: it finds dead-letter
// topics, reads and groups their records, and replays selected records to their original
// topics exactly once.
//
// Exactly once, across runs and crashes, rests on three things:
//
//   - Each batch of replayed records and its ledger entry (a batch entry on the compacted
//     ledger topic listing every dead letter of the batch and the target record it became) are
//     produced in one Kafka transaction: all become visible or none does.
//   - Every run of one DLT uses the same transactional ids: "opsctl-replay/<dlt topic>" and
//     "opsctl-replay/<dlt topic>/1" and so on, one per lane (several transactions in flight;
//     see replayLanes). Starting a run fences the previous one: Kafka aborts its open transactions
//     and refuses anything it sends afterwards. A run first commits a small run-start entry on
//     every lane to hold the fences, then once more on the first to check that no other run
//     started meanwhile. Once every lane is fenced it reads the ledger (read_committed, to the
//     end offsets it saw after taking the fences, which covers every transaction of every
//     earlier run), while that check runs, and only then plans what to skip; nothing is
//     committed before the check has passed.
//   - Records are replayed in batches, one transaction per batch, so a run killed at any point
//     leaves whole batches committed (recorded in the ledger, skipped next time) or nothing of
//     a batch (aborted by Kafka, replayed next time).
//   - The ledger records the DLT's Kafka topic ID with every run: a DLT deleted and created
//     again restarts its offsets, and its records are new ones (see ledgerIndex.view).
//
// Every operation ends within Config.Timeout of a broker going silent (see silence.go), and a
// replay stopped that way, run again, finishes exactly once.
//
// Consumers of the replay targets must read with isolation level read_committed, as they must
// for any transactional producer; otherwise they may see a batch that was aborted.
//
// Reads are streaming: list, stats and the replay scan hold one fetch and one batch in memory,
// whatever the size of the topic.
package replay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
)

// Config is what an Engine needs from the caller: a way to reach Kafka and the context's rules.
type Config struct {
	// NewClient builds a franz-go client for the cluster with extra options appended
	// (cmdutil.Factory.KafkaClient has this shape). Required.
	NewClient func(extra ...kgo.Opt) (*kgo.Client, error)
	// LedgerTopic is the compacted replay ledger (default opsctl.replays).
	LedgerTopic string
	// DLTPattern matches dead-letter topic names (default `(\.DLT|-dlt)$`).
	DLTPattern *regexp.Regexp
	// Allowlist, when not empty, is the only set of topics a replay may write to.
	Allowlist []string
	// MaxReplays is the poison guard's default (default 3).
	MaxReplays int
	// Actor is who runs the replay, user@host, written to the ledger.
	Actor string
	// Now is the clock (default time.Now). A replay's lanes call it concurrently.
	Now func() time.Time
	// Logger receives debug detail (default: discard).
	Logger *slog.Logger
	// BatchSize is the number of records per replay transaction (default 5000). While the
	// transaction before it is still committing, a batch grows up to four times that.
	BatchSize int
	// TransactionTimeout bounds how long a killed run's open transaction blocks read_committed
	// readers before Kafka aborts it (default 30s). A rerun fences it at once.
	TransactionTimeout time.Duration
	// StallTimeout is how long a read may wait without progress before it gives up with an error
	// (default 2m; longer than any transaction timeout a reader may have to wait out).
	StallTimeout time.Duration
	// Timeout is how long an operation waits for a broker that does not answer (or cannot be
	// connected to) before it stops with a *SilenceError (default DefaultTimeout, 30s). See
	// the package's silence watch.
	Timeout time.Duration
	// ConnectTimeout is the Timeout of a client that no broker has answered yet (default
	// DefaultConnectTimeout, 5s; never more than Timeout): brokers that are gone are reported
	// in seconds.
	ConnectTimeout time.Duration
}

// Defaults applied to a zero Config.
const (
	DefaultBatchSize          = 5000
	DefaultTransactionTimeout = 30 * time.Second
	DefaultStallTimeout       = 2 * time.Minute
)

// Errors callers branch on.
var (
	// ErrUnknownTopic means a topic does not exist on the cluster.
	ErrUnknownTopic = errors.New("topic does not exist")
	// ErrNotFound means no record exists at the requested coordinate.
	ErrNotFound = errors.New("no record at that offset")
	// ErrFenced means another replay of the same DLT started and took over this run's
	// transactional id; nothing of the batch in flight was applied.
	ErrFenced = errors.New("fenced by another replay")
	// ErrCommitUnknown means a batch's commit failed in a way that leaves its outcome unknown
	// (a lost connection, say). Running the replay again settles it from the ledger.
	ErrCommitUnknown = errors.New("commit outcome unknown")
	// ErrRefused means a replay request breaks a rule (allowlist, --to, missing reason) and
	// nothing was done.
	ErrRefused = errors.New("refused")
)

// Engine reads and replays dead letters on one cluster. It is safe for concurrent use by
// several goroutines (a TUI may list while a replay runs); each replay uses its own
// transactional client.
type Engine struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
	// watch stops operations on a broker that does not answer (see silence.go).
	watch *watchdog

	// beforeCommit, when set (tests only), runs inside each replay batch's transaction after
	// every record was produced and before the commit: the widest window for a crash or a
	// concurrent run to strike.
	beforeCommit func(runID string)
	// beforeFinish, when set (tests only), runs after a replay's last batch was settled and
	// before its run-end entry is written.
	beforeFinish func(runID string)
	// lanes, when not 0 (benchmarks only), is the number of lanes a replay commits on instead
	// of lanesFor's choice; noStream collects each batch before producing it. Both exist to
	// measure what lanes and streaming gain.
	lanes    int
	noStream bool
	// fixedBatches (tests and benchmarks) keeps every batch at BatchSize records, for tests that
	// count transactions and to measure what growing batches gains.
	fixedBatches bool
	// growAfter is the transaction time from which batches grow (defaultGrowAfter); tests
	// change it. wideAfter, when not 0 (tests and benchmarks, see replayLanes), is the one from
	// which a replay commits on all its lanes.
	growAfter, wideAfter time.Duration
	// pool lends replay scans their fetch memory (see fetchPool).
	pool fetchPool
	// slabsReused counts the slabs runs built records in again (see slabs), scanBuffersReused
	// the batches replay scans decompressed into memory already used (see rawScan); tests
	// read them.
	slabsReused, scanBuffersReused atomic.Int64
	// leaderLookups counts the partition leader lookups of replay scans (see rawScan).
	leaderLookups atomic.Int64
	// leadersSeen is, per topic, the partition leaders a scan last looked up (see
	// recentLeaders).
	leadersMu   sync.Mutex
	leadersSeen map[string]seenLeaders
	// replayFetch, when not 0 (tests), is a replay scan's fetch size instead of fetchBulk.
	replayFetch int32
}

// New returns an Engine; call Close when done.
func New(cfg Config) (*Engine, error) {
	if cfg.NewClient == nil {
		return nil, errors.New("replay: Config.NewClient is required")
	}
	if cfg.LedgerTopic == "" {
		cfg.LedgerTopic = dlt.DefaultLedgerTopic
	}
	if cfg.DLTPattern == nil {
		cfg.DLTPattern = regexp.MustCompile(dlt.DefaultPattern)
	}
	if cfg.MaxReplays <= 0 {
		cfg.MaxReplays = dlt.DefaultMaxReplays
	}
	if cfg.Actor == "" {
		cfg.Actor = "unknown@unknown"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = DefaultTransactionTimeout
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	e := &Engine{cfg: cfg, watch: newWatchdog(cfg.Timeout, cfg.ConnectTimeout), growAfter: defaultGrowAfter}
	// Every client the engine opens is watched for silence.
	newClient := cfg.NewClient
	watched := func(extra ...kgo.Opt) (*kgo.Client, error) {
		cw := e.watch.client()
		cl, err := newClient(append(extra, kgo.WithHooks(cw))...)
		if err != nil {
			cw.OnClientClosed(nil)
			return nil, err
		}
		return cl, nil
	}
	cl, err := watched()
	if err != nil {
		return nil, err
	}
	e.cl, e.adm = cl, kadm.NewClient(cl)
	// The clients the engine opens for one operation (a scan, a replay's lanes) live for
	// seconds: they send no client metrics (KIP-714). Each would otherwise ask the broker for
	// a subscription and, where it has one, compress and push a final report as it closes.
	e.cfg.NewClient = func(extra ...kgo.Opt) (*kgo.Client, error) {
		return watched(append(extra, kgo.DisableClientMetrics())...)
	}
	return e, nil
}

// Close releases the engine's client.
func (e *Engine) Close() { e.cl.Close() }

// guard starts an operation under the silence watch (see watchdog.guard).
func (e *Engine) guard(ctx context.Context) (context.Context, func()) { return e.watch.guard(ctx) }

// LedgerTopic returns the ledger topic the engine uses.
func (e *Engine) LedgerTopic() string { return e.cfg.LedgerTopic }

// partRange is a half-open offset range [start, end) of one partition.
type partRange struct {
	p          int32
	start, end int64
}

// topicRanges returns the offset ranges of topic to read, narrowed by the selection's
// partition, offset and since filters (the rest are checked per record). A range ends at the
// last stable offset: everything decided, never waiting on an open transaction.
func (e *Engine) topicRanges(ctx context.Context, topic string, sel *Selection) ([]partRange, error) {
	ctx = fresh(ctx)
	// The listings are independent: they go out at once, each a round trip (and a metadata
	// lookup) of its own, which against a distant broker is what a read's start costs.
	var starts, ends, after kadm.ListedOffsets
	var startErr, endErr, afterErr error
	since := sel != nil && !sel.Since.IsZero()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ends, endErr = e.adm.ListCommittedOffsets(ctx, topic)
	}()
	if since {
		wg.Add(1)
		go func() {
			defer wg.Done()
			after, afterErr = e.adm.ListOffsetsAfterMilli(ctx, sel.Since.UnixMilli(), topic)
		}()
	}
	starts, startErr = e.adm.ListStartOffsets(ctx, topic)
	wg.Wait()
	if startErr != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, startErr)
	}
	if endErr != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, endErr)
	}
	if err := topicErr(topic, starts); err != nil {
		return nil, err
	}
	if err := topicErr(topic, ends); err != nil {
		return nil, err
	}
	if afterErr != nil {
		return nil, fmt.Errorf("list offsets of %s after %s: %w", topic, sel.Since.Format(time.RFC3339), afterErr)
	}
	var out []partRange
	for p, so := range starts[topic] {
		eo, ok := ends.Lookup(topic, p)
		if !ok {
			continue
		}
		r := partRange{p: p, start: so.Offset, end: eo.Offset}
		if sel != nil {
			if len(sel.Partitions) > 0 && !containsPartition(sel.Partitions, p) {
				continue
			}
			if sel.Offsets.Set {
				r.start = max(r.start, sel.Offsets.From)
				if sel.Offsets.To >= 0 {
					r.end = min(r.end, sel.Offsets.To+1)
				}
			}
			if ao, ok := after.Lookup(topic, p); ok && ao.Err == nil && ao.Offset >= 0 {
				r.start = max(r.start, ao.Offset)
			}
		}
		out = append(out, r)
	}
	if sel != nil {
		for _, p := range sel.Partitions {
			if _, ok := starts[topic][p]; !ok {
				return nil, fmt.Errorf("%w: %s has no partition %d (it has %d)", ErrBadSelection, topic, p, len(starts[topic]))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].p < out[j].p })
	return out, nil
}

// fresh makes kadm fetch metadata from the broker instead of its cache. The cache may say a
// topic does not exist for seconds after it was created (the ledger, on a first replay), and
// reading a ledger that "does not exist" as empty would replay everything again. kadm bypasses
// its cache whenever authorized operations are asked for.
func fresh(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }

func topicErr(topic string, l kadm.ListedOffsets) error {
	ps, ok := l[topic]
	if !ok {
		return fmt.Errorf("%s: %w", topic, ErrUnknownTopic)
	}
	for _, o := range ps {
		if o.Err != nil {
			if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("%s: %w", topic, ErrUnknownTopic)
			}
			return fmt.Errorf("%s[%d]: %w", topic, o.Partition, o.Err)
		}
	}
	return nil
}

// scan reads each range in partition order and calls fn for every data record in it (control
// records and aborted transactions never reach fn). fn returns false to stop the scan early.
// Memory stays at one fetch whatever the topic's size.
func (e *Engine) scan(ctx context.Context, topic string, ranges []partRange, fetch int32, fn func(*kgo.Record) (bool, error)) error {
	return e.scanWith(ctx, topic, ranges, fetch, false, fn, nil)
}

// scanAll reads all ranges at once, partitions interleaved (each still in offset order): fewer
// round trips than scan, for a replay, where the order across partitions does not matter.
func (e *Engine) scanAll(ctx context.Context, topic string, ranges []partRange, fetch int32, fn func(*kgo.Record) (bool, error)) error {
	return e.scanWith(ctx, topic, ranges, fetch, true, fn, nil)
}

// scanWith is scanAll (all) or scan, calling afterPoll, when not nil, after the records of each
// fetch: the moment to hand on what was gathered before the scan may wait for the next fetch.
func (e *Engine) scanWith(ctx context.Context, topic string, ranges []partRange, fetch int32, all bool,
	fn func(*kgo.Record) (bool, error), afterPoll func() error,
) error {
	if all {
		_, err := e.scanRanges(ctx, topic, ranges, fetch, fn, afterPoll)
		return err
	}
	for _, r := range ranges {
		more, err := e.scanRanges(ctx, topic, []partRange{r}, fetch, fn, afterPoll)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Fetch sizes (compressed bytes per fetch) for scans: browsing keeps one small fetch in memory.
// A replay or a ledger read takes smaller fetches still: a fetch decompresses to several times
// its size, and the scan reads every record of it right after; while that stays within the
// processor's cache, a replay of 200k dead letters takes about a fifth less time than with
// 4 MiB fetches (TestBenchReplayThroughput). Round trips are not what limits it: at 512 KiB
// per fetch and a 2 ms round trip, one broker still serves about 250 MB/s.
const (
	fetchBrowse int32 = 1 << 20
	fetchBulk   int32 = 512 << 10
)

func (e *Engine) scanRanges(ctx context.Context, topic string, ranges []partRange, fetch int32,
	fn func(*kgo.Record) (bool, error), afterPoll func() error,
) (bool, error) {
	sc := e.openReplayScan(ctx, topic, "", ranges, fetch)
	defer sc.close()
	return sc.run(ctx, fn, afterPoll)
}

// rangeScan is a consumer of some ranges of one topic. Once open it fetches in the background
// (one fetch ahead per broker) until run reads the records.
type rangeScan struct {
	e     *Engine
	topic string
	cl    *kgo.Client     // nil when every range is empty
	ends  map[int32]int64 // partitions still open, with their end offsets
	once  sync.Once
	// raw, when set, reads instead of cl (see rawScan), until it meets a batch it leaves to
	// franz-go's consumer.
	raw   *rawScan
	fetch int32
}

// openReplayScan opens the one reader every read of records goes through — a replay, its plan,
// list, stats, the TUI's index and windows, the ledger, counts: a rawScan, which hands what it
// has not read to franz-go's consumer (pooled, see fetchPool) if it meets a batch older than
// format v2. TestReaderMatchesConsumer holds it to what franz-go's read_committed consumer
// returns. With a topic ID (not ""), the scan fails rather than read another incarnation of the
// topic.
func (e *Engine) openReplayScan(ctx context.Context, topic, id string, ranges []partRange, fetch int32) *rangeScan {
	sc := &rangeScan{e: e, topic: topic, fetch: fetch}
	for _, r := range ranges {
		if r.start < r.end {
			sc.raw = e.openRawScan(ctx, topic, id, ranges, fetch)
			break
		}
	}
	return sc
}

// ErrTopicRecreated means a topic was deleted and created again while it was being read.
var ErrTopicRecreated = errors.New("topic was deleted and created again")

// topicID returns topic's ID as Kafka's tools print it (base64url), "" on a broker without
// topic IDs.
func (e *Engine) topicID(ctx context.Context, topic string) (string, error) {
	ids, err := e.topicIDs(ctx, topic)
	if err != nil {
		return "", err
	}
	id, ok := ids[topic]
	if !ok {
		return "", fmt.Errorf("%s: %w", topic, ErrUnknownTopic)
	}
	return id, nil
}

// topicIDs returns the IDs of topics (every topic when none is named) that exist.
func (e *Engine) topicIDs(ctx context.Context, topics ...string) (map[string]string, error) {
	tds, err := e.adm.ListTopics(fresh(ctx), topics...)
	if err != nil {
		return nil, fmt.Errorf("look up topic ids: %w", err)
	}
	out := map[string]string{}
	for t, td := range tds {
		if td.Err == nil {
			out[t] = idString(td.ID)
		}
	}
	return out, nil
}

// idString renders a topic ID as Kafka's tools do; the zero ID (none) is "".
func idString(id [16]byte) string {
	if id == ([16]byte{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// openScan opens franz-go's consumer of ranges, for what a rawScan leaves to it (batches older
// than format v2): it starts fetching at once. The caller must close it.
// With a pool, the scan's records come from it and must be recycled (see fetchPool).
func (e *Engine) openScan(topic string, ranges []partRange, fetch int32, pool *fetchPool) (*rangeScan, error) {
	ends := map[int32]int64{}
	starts := map[int32]kgo.Offset{}
	for _, r := range ranges {
		if r.start < r.end {
			ends[r.p] = r.end
			starts[r.p] = kgo.NewOffset().At(r.start)
		}
	}
	sc := &rangeScan{e: e, topic: topic, ends: ends}
	if len(ends) == 0 {
		return sc, nil
	}
	opts := []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records are kept so the scan sees every offset up to its end, even when the
		// last one is a transaction marker; they are skipped below.
		kgo.KeepControlRecords(),
		// One fetch in memory at a time. At fetchBrowse, 1 MiB compressed, JSON dead letters
		// decompress about tenfold, which keeps a browse near 50 MiB of heap. Kafka still
		// returns a larger record whole, so a big value never stalls the scan.
		kgo.FetchMaxPartitionBytes(fetch),
		// The partition limit bounds an answer; a request limit that binds first makes kfake,
		// the sandbox's broker, leave the aborted transactions of the partition it cut off
		// out of the answer (see rawScan.fetchRound). This one binds only past 64 MiB, below
		// what franz-go reads of one answer.
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
	if pool != nil {
		opts = append(opts, kgo.WithPools(pool))
	}
	cl, err := e.cfg.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	sc.cl = cl
	return sc, nil
}

// close stops the consumer; it may be called more than once.
func (sc *rangeScan) close() {
	if sc == nil {
		return
	}
	if sc.raw != nil {
		sc.raw.close()
	}
	if sc.cl != nil {
		sc.once.Do(sc.cl.Close)
	}
}

// run reads the scan's ranges and calls fn for every data record in them, afterPoll after the
// records of each fetch. It reports false when fn stopped it. It recycles every record once
// fn has returned (in a pooled scan, see fetchPool), so fn must not keep the record nor
// anything it shares.
func (sc *rangeScan) run(ctx context.Context, fn func(*kgo.Record) (bool, error), afterPoll func() error) (bool, error) {
	if sc.raw != nil {
		more, err := sc.raw.run(ctx, fn, afterPoll)
		if !errors.Is(err, errLegacyBatch) {
			return more, err
		}
		rest := sc.raw.remaining()
		sc.raw.close()
		sc.raw = nil
		sc.e.cfg.Logger.Debug("reading the rest with franz-go's consumer", "topic", sc.topic, "err", err)
		next, err := sc.e.openScan(sc.topic, rest, sc.fetch, &sc.e.pool)
		if err != nil {
			return false, err
		}
		sc.cl, sc.ends = next.cl, next.ends
	}
	e, topic, cl, ends := sc.e, sc.topic, sc.cl, sc.ends
	if len(ends) == 0 {
		return true, nil
	}
	done := func(p int32) {
		delete(ends, p)
		cl.PauseFetchPartitions(map[string][]int32{topic: {p}})
	}
	last := time.Now()
	for len(ends) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if ferr == nil {
				ferr = fmt.Errorf("read %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return false, ferr
		}
		progressed := false
		for it := fetches.RecordIter(); !it.Done(); {
			rec := it.Next()
			progressed = true
			p, off := rec.Partition, rec.Offset
			end, open := ends[p]
			if !open || off >= end {
				if open {
					done(p)
				}
				rec.Recycle()
				continue
			}
			more, err := true, error(nil)
			if !rec.Attrs.IsControl() {
				more, err = fn(rec)
			}
			rec.Recycle()
			if err != nil || !more {
				return more, err
			}
			if off >= end-1 {
				done(p)
			}
		}
		if afterPoll != nil {
			if err := afterPoll(); err != nil {
				return false, err
			}
		}
		if progressed {
			last = time.Now()
		} else if time.Since(last) > e.cfg.StallTimeout {
			return false, fmt.Errorf("read %s: no progress for %s before the end offsets %v (an open transaction that does not end, or an unreachable broker); nothing was changed",
				topic, e.cfg.StallTimeout, ends)
		}
	}
	return true, nil
}
