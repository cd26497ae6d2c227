package replay

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/time/rate"

	"github.com/come2us/opsctl/pkg/dlt"
)

// TransactionalID is the transactional id every replay of dltTopic uses. One id per DLT is what
// makes a second run fence the first: Kafka allows one producer per transactional id.
func TransactionalID(dltTopic string) string { return "opsctl-replay/" + dltTopic }

// Summary is the outcome of one replay run.
type Summary struct {
	RunID  string `json:"runId"`
	Topic  string `json:"topic"`
	Status string `json:"status"`
	Counts
	Scanned         int64          `json:"scanned"`
	Limited         bool           `json:"limited,omitempty"`
	WhereErrors     int64          `json:"whereErrors,omitempty"`
	FirstWhereError string         `json:"firstWhereError,omitempty"`
	WhereMissing    []FieldMissing `json:"whereMissing,omitempty"`
	Started         time.Time      `json:"started"`
	Finished        time.Time      `json:"finished"`
	Error           string         `json:"error,omitempty"`
	// Note says something the operator should know about a run that did its job: that another
	// run took its transactional ids over after its last batch, say.
	Note string `json:"note,omitempty"`
	// CommitUnknown counts the failed records whose batch's commit has an unknown outcome (the
	// broker went silent, or the connection was lost, after the commit was sent): the next
	// run settles them from the ledger, replaying them only if the commit did not happen.
	CommitUnknown int `json:"commitUnknown,omitempty"`
}

// Partial reports whether some selected records were neither replayed nor already replayed.
func (s *Summary) Partial() bool { return s.Refused > 0 || s.Failed > 0 }

// item is one record on its way out.
type item struct {
	from  Coord
	stamp int64 // the dead letter's timestamp, Unix milliseconds
	out   *kgo.Record
	id    []byte // the replay id, as the x-opsctl-replay-id header carries it
	seq   uint32 // the replay id's sequence number within the run
	count int
	err   error // the record's own produce error in the last attempt
	// The outcome, set by the lane that commits the item's batch.
	replayed bool
	fail     error // why the record was not replayed
}

type run struct {
	e       *Engine
	req     *Request
	lanes   []*lane
	uuid    uuid.UUID
	id      string
	dltID   string       // the DLT's topic ID, "" on a broker without topic IDs
	seq     uint32       // replay ids handed out
	batches atomic.Int64 // batch entries written
	group   []byte       // x-opsctl-target-group's value, nil without --group
	total   int64        // offsets in the ranges the run reads
	slabs   slabs        // what newItem builds records in
	started time.Time
	sum     *Summary
	limiter *rate.Limiter
	limits  *batchLimits
	enc     *entryEncoder
}

// batchLimits holds each target topic's max.message.bytes, so a replay batch is never larger
// than the broker accepts (a batch the broker rejects would fail every record in it) and a
// record too large for its topic fails alone, with a reason, before it is sent.
type batchLimits struct {
	mu sync.Mutex
	m  map[string]int32
}

// defaultBatchMax is franz-go's and Kafka's default max.message.bytes.
const defaultBatchMax = 1_000_012

func (l *batchLimits) get(topic string) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v, ok := l.m[topic]; ok {
		return v
	}
	return defaultBatchMax
}

// learn looks the max.message.bytes of topics up once, in one request.
func (l *batchLimits) learn(ctx context.Context, e *Engine, topics ...string) {
	l.mu.Lock()
	var unknown []string
	for _, t := range topics {
		if _, known := l.m[t]; !known {
			unknown = append(unknown, t)
		}
	}
	l.mu.Unlock()
	if len(unknown) == 0 {
		return
	}
	limits := map[string]int32{}
	for _, t := range unknown {
		limits[t] = defaultBatchMax
	}
	if rcs, err := e.adm.DescribeTopicConfigs(ctx, unknown...); err == nil {
		for _, rc := range rcs {
			if _, asked := limits[rc.Name]; !asked {
				continue
			}
			for _, c := range rc.Configs {
				if c.Key == "max.message.bytes" && c.Value != nil {
					if n, err := strconv.ParseInt(*c.Value, 10, 32); err == nil && n >= 512 {
						limits[rc.Name] = int32(n)
					}
				}
			}
		}
	}
	l.mu.Lock()
	for t, limit := range limits {
		if _, known := l.m[t]; !known {
			l.m[t] = limit
		}
	}
	l.mu.Unlock()
}

// Replay replays the records req selects, exactly once across runs: records the ledger already
// has are skipped (unless Force), each batch of replayed records is committed together with
// its ledger entries in one transaction, and a concurrent run of the same DLT fences this one
// (ErrFenced). The Summary is returned even with an error and says how far the run got; what
// it reports as replayed is committed.
func (e *Engine) Replay(ctx context.Context, req Request) (*Summary, error) {
	ctx, done := e.guard(ctx)
	defer done()
	r := &run{e: e, req: &req, started: e.cfg.Now().UTC()}
	r.uuid = newRunID()
	r.id = r.uuid.String()
	r.sum = &Summary{RunID: r.id, Topic: req.Topic, Status: RunFailed, Started: r.started}
	err := explain(ctx, r.do(ctx))
	e.slabsReused.Add(int64(r.slabs.reusedCount()))
	r.sum.Finished = e.cfg.Now().UTC()
	if err != nil {
		r.sum.Error = err.Error()
	}
	return r.sum, err
}

func newRunID() uuid.UUID {
	if id, err := uuid.NewV7(); err == nil {
		return id
	}
	return uuid.New()
}

// do runs the replay: it looks the DLT up, reads the ranges to replay and starts fetching
// them while it takes the lanes' fences, reads the ledger, then scans and commits, and records
// the run's end.
func (r *run) do(ctx context.Context) error {
	if err := r.e.validate(r.req, true); err != nil {
		return err
	}
	// The lanes' producers connect while the DLT is looked up: their fences come next.
	closeLanes, err := r.openLanes(ctx)
	defer closeLanes()
	if err != nil {
		return err
	}
	// What the ledger holds decided already is read from the start, while the ranges are read
	// and the fences taken: it only reads, and a run that stops before its fences stops it.
	actx, stopAhead := context.WithCancel(ctx)
	defer stopAhead()
	ahead := r.e.readLedgerAhead(actx, r.req.Topic)
	topics, opened, err := r.prepare(ctx)
	if err != nil {
		stopAhead()
		ahead.wait()
		return err
	}
	// The fences are taken while the ranges are listed and their first fetch goes out; the
	// rest of the ledger is read once every lane is fenced, while lane 0 checks its fence.
	var txnTime time.Duration
	var fenceErr error
	lanesFenced, fenced := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(fenced)
		txnTime, fenceErr = r.takeFences(ctx, r.likelyTarget(topics), func() { close(lanesFenced) })
	}()
	ranges, pre, rangesErr := opened()
	defer pre.close()
	var ledger *ledgerIndex
	var ledgerErr error
	select {
	case <-lanesFenced:
		if rangesErr == nil {
			// Every earlier run's transactions are decided now; the ledger up to its high
			// watermark is the complete truth about what was replayed.
			ledger, ledgerErr = ahead.rest(ctx, r.e, r.req.Topic)
		}
		<-fenced
	case <-fenced:
	}
	if fenceErr != nil {
		stopAhead()
		ahead.wait()
		return fenceErr
	}
	if rangesErr != nil {
		stopAhead()
		ahead.wait()
		return r.finish(ctx, rangesErr)
	}
	if ledger == nil && ledgerErr == nil {
		ledger, ledgerErr = ahead.rest(ctx, r.e, r.req.Topic)
	}
	if ledgerErr != nil {
		return r.finish(ctx, ledgerErr)
	}
	ru := r.e.rulesWith(r.req, ledger, r.dltID, topics)
	batchCap, growCap := r.batchSizes(txnTime)

	// The scan runs ahead in its own goroutine while this one commits transactions, so network
	// waits on either side overlap.
	sctx, stopScan := context.WithCancel(ctx)
	defer stopScan()
	sc := newScanner(r, ru, ranges, pre, batchCap)
	go sc.run(sctx)
	cm := newCommitter(r, r.lanes[:r.e.lanesFor(txnTime)], batchCap, growCap)
	cm.loop(ctx, sc)
	stopScan()
	scan, scanErr := sc.wait()
	err = cm.err
	if err == nil { // the scan ended on its own: done, or stopped by an error or the caller's cancel
		err = cmp.Or(scanErr, ctx.Err())
	}
	err = cm.finish(ctx, err)
	r.sum.Scanned, r.sum.Limited = scan.Scanned, scan.Limited
	r.sum.WhereErrors, r.sum.FirstWhereError, r.sum.WhereMissing = scan.WhereErrors, scan.FirstWhereError, scan.WhereMissing
	r.progress(scan.Scanned)
	return r.finish(ctx, err)
}

// prepare checks what a run needs before it takes its fences — the DLT exists, the partitions
// the selection names exist, the fields a --where names exist — and has the ledger created if
// need be. It returns a listing of the cluster's topics (which incarnation of the DLT the run
// reads, and which targets exist), and opened, which returns the ranges the run replays and
// their scan, opened as soon as the ranges are known so that the first fetch is on its way
// while the run takes its fences and reads the ledger. The ranges are listed meanwhile, and
// opened must be called, whatever the error.
func (r *run) prepare(ctx context.Context) (kadm.TopicDetails, func() ([]partRange, *rangeScan, error), error) {
	e, req := r.e, r.req
	var topics kadm.TopicDetails
	var listErr error
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		topics, listErr = e.adm.ListTopics(fresh(ctx))
	}()
	var ranges []partRange
	var pre *rangeScan
	var rangesErr, openErr error
	known := make(chan struct{}) // closed once the ranges are listed (and checked)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		func() {
			defer close(known)
			if ranges, rangesErr = e.topicRanges(ctx, req.Topic, &req.Selection); rangesErr != nil {
				return
			}
			ranges, _ = bounded(ranges, req.Bound)
			for _, pr := range ranges {
				r.total += max(0, pr.end-pr.start)
			}
			rangesErr = e.checkWhere(ctx, req.Topic, ranges, &req.Selection)
		}()
		<-listed
		if td, ok := topics[req.Topic]; ok && td.Err == nil && rangesErr == nil && listErr == nil {
			pre, openErr = e.openWalk(ctx, req, idString(td.ID), ranges)
		}
	}()
	opened := func() ([]partRange, *rangeScan, error) {
		<-scanned
		return ranges, pre, cmp.Or(rangesErr, openErr)
	}
	fail := func(err error) (kadm.TopicDetails, func() ([]partRange, *rangeScan, error), error) {
		if _, pre, _ := opened(); pre != nil {
			pre.close()
		}
		return nil, nil, err
	}
	<-listed
	if listErr != nil {
		return fail(fmt.Errorf("look up topic ids: %w", listErr))
	}
	// The run replays the records of this incarnation of the DLT: its ledger entries say so,
	// and its scan stops if the topic is deleted and created again meanwhile.
	td, ok := topics[req.Topic]
	if !ok || td.Err != nil {
		return fail(fmt.Errorf("%s: %w", req.Topic, ErrUnknownTopic))
	}
	for _, p := range req.Selection.Partitions {
		if _, ok := td.Partitions[p]; !ok {
			return fail(fmt.Errorf("%w: %s has no partition %d (it has %d)", ErrBadSelection, req.Topic, p, len(td.Partitions)))
		}
	}
	r.dltID = idString(td.ID)
	if req.Selection.Where != nil && len(req.Selection.Where.fields) > 0 {
		// A --where that names a field no record has is refused before anything is written.
		<-known
		if rangesErr != nil {
			return fail(rangesErr)
		}
	}
	if ld, ok := topics[e.cfg.LedgerTopic]; !ok || ld.Err != nil {
		if err := e.createLedger(ctx); err != nil {
			return fail(err)
		}
	}
	return topics, opened, nil
}

// likelyTarget is the topic the run's records most likely go to, when it exists: the --to
// topic, or the DLT's name without its dead-letter suffix (orders.DLT's records were orders').
// Its max.message.bytes is looked up while the fences are taken, not when the first record
// needs it.
func (r *run) likelyTarget(topics kadm.TopicDetails) string {
	t := r.req.To
	if t == "" {
		t = r.e.cfg.DLTPattern.ReplaceAllString(r.req.Topic, "")
	}
	if td, ok := topics[t]; ok && td.Err == nil && t != r.req.Topic {
		return t
	}
	return ""
}

// openLanes opens the run's transactional producers (see replayLanes) and has each look up
// its transaction coordinator and connect to it meanwhile, so that a fence costs the round
// trips of the fence alone. The returned function closes them, whatever the error.
func (r *run) openLanes(ctx context.Context) (func(), error) {
	e, req := r.e, r.req
	r.limits = &batchLimits{m: map[string]int32{}}
	wctx, stopWarming := context.WithCancel(ctx)
	var warming sync.WaitGroup
	closeAll := func() {
		stopWarming()
		warming.Wait()
		for _, ln := range r.lanes {
			ln.cl.Close()
		}
	}
	// Every lane is fenced, even those this run will not commit on (see replayLanes).
	for k := range max(replayLanes, e.lanes) {
		cl, err := e.cfg.NewClient(
			kgo.TransactionalID(laneTransactionalID(req.Topic, k)),
			kgo.TransactionTimeout(e.cfg.TransactionTimeout),
			kgo.ProducerBatchMaxBytesFn(r.limits.get),
			// franz-go's default 10ms linger stays: without it, several produce requests per
			// partition go out at once, and kfake then rejected transactional batches under load
			// with OUT_OF_ORDER_SEQUENCE_NUMBER (failing the run safely, but failing it).
			kgo.MaxBufferedRecords(batchGrowth*e.cfg.BatchSize+16), // a lane's batch at most, grown
			kgo.RecordDeliveryTimeout(2*time.Minute),
		)
		if err != nil {
			return closeAll, err
		}
		r.lanes = append(r.lanes, newLane(r, cl))
		warming.Add(2)
		go func() {
			defer warming.Done()
			// Describing the transaction reads and changes nothing; franz-go keeps the
			// coordinator it found and the connection it opened for the fence. Its failure is
			// the fence's to report, with what it means: here it only costs the time saved.
			req := kmsg.NewPtrDescribeTransactionsRequest()
			req.TransactionalIDs = []string{laneTransactionalID(r.req.Topic, k)}
			if _, err := req.RequestWith(wctx, cl); err != nil {
				e.cfg.Logger.Debug("replay lane did not reach its coordinator ahead of its fence", "lane", k, "err", err)
			}
		}()
		go func() {
			defer warming.Done()
			warmConnections(wctx, cl)
		}()
	}
	return closeAll, nil
}

// warmConnections opens cl's connections to every broker ahead of its transactions: the one
// its metadata requests take and the one its records take. A connection costs a round trip
// of its own (the client and the broker agree on versions) before its first request; a lane's
// fence and its first batch would otherwise pay it to each broker they meet, one after the
// other. Failures are left to the requests that follow.
func warmConnections(ctx context.Context, cl *kgo.Client) {
	// Opening the produce connections looks the brokers up first, if need be.
	if err := cl.EnsureProduceConnectionIsOpen(ctx); err != nil {
		return
	}
	var wg sync.WaitGroup
	for _, b := range cl.DiscoveredBrokers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = b.Request(ctx, kmsg.NewPtrApiVersionsRequest())
		}()
	}
	wg.Wait()
}

// takeFences takes the lanes' fences: taking a lane's producer id makes Kafka abort whatever
// an earlier run of this DLT left open there and refuse that run from now on, and a
// transaction (the run-start entry) on the lane holds the fence. Lane 0's comes first and lane
// 0's again last, to check that no run started in between (see replayLanes). Between them,
// lane 1 takes its producer id, then every other lane takes its own at once: a run held in its
// fences therefore holds lanes 0 and 1 as a run that fences its lanes one by one would, and
// never a later lane before them. Then the run-start entries of lanes 1 and up and lane 0's
// check are committed at once. It returns the time a transaction takes, measured on the check
// and on lane 1's. target, when not "", is a topic whose max.message.bytes is looked up
// meanwhile. lanesFenced is called once every lane's producer id is taken, before the
// transactions that follow: every earlier run's transactions are decided from then on, and
// the ledger may be read meanwhile (nothing is committed before the check passes).
func (r *run) takeFences(ctx context.Context, target string, lanesFenced func()) (time.Duration, error) {
	e := r.e
	// The ledger's max.message.bytes bounds the batches' ledger entries, not the run-start
	// entry: it is looked up while the fences are taken, with the likely target's.
	learned := make(chan struct{})
	go func() {
		defer close(learned)
		learn := []string{e.cfg.LedgerTopic}
		if target != "" {
			learn = append(learn, target)
		}
		r.limits.learn(ctx, e, learn...)
	}()
	defer func() { <-learned }()
	start := r.runEntry(RunRunning, nil, nil)
	fence := func(ln *lane) error {
		// A record of its own for each lane, since a record being produced belongs to its
		// producer; its bytes, only read, are shared.
		start := &kgo.Record{Topic: start.Topic, Key: start.Key, Value: start.Value}
		return ln.transact(ctx, func() error { return ln.produceSync(ctx, start) })
	}
	if err := fence(r.lanes[0]); err != nil {
		return 0, r.fenceError(err)
	}
	if len(r.lanes) == 1 {
		return 0, nil
	}
	if _, _, err := r.lanes[1].cl.ProducerID(ctx); err != nil {
		return 0, r.fenceError(err)
	}
	all := func(lanes []*lane, each func(k int, ln *lane) error) error {
		errs := make([]error, len(lanes))
		var wg sync.WaitGroup
		for k, ln := range lanes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[k] = each(k, ln)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return r.fenceError(err)
			}
		}
		return nil
	}
	if err := all(r.lanes[2:], func(_ int, ln *lane) error {
		_, _, err := ln.cl.ProducerID(ctx)
		return err
	}); err != nil {
		return 0, err
	}
	lanesFenced()
	var check, lane1 time.Duration // lane 1's transaction, its producer id taken: a plain one
	err := all(r.lanes, func(k int, ln *lane) error {
		t0 := time.Now()
		err := fence(ln)
		switch k {
		case 0:
			check = time.Since(t0)
		case 1:
			lane1 = time.Since(t0)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	// The shorter of two transactions: a pause of the process (a busy machine) in one of
	// them does not make a near broker look far.
	return min(check, lane1), nil
}

// fenceError is what a run says when taking a fence failed: nothing was replayed either way.
func (r *run) fenceError(err error) error {
	// INVALID_TXN_STATE here is a commit refused because another run's fence aborted the
	// transaction in between.
	if isFenced(err) || errors.Is(err, kerr.InvalidTxnState) {
		return fmt.Errorf("%w: another replay of %s started at the same moment and took over; nothing was replayed", ErrFenced, r.req.Topic)
	}
	return fmt.Errorf("start replay run (write %s): %w; nothing was replayed", r.e.cfg.LedgerTopic, err)
}

// batchSizes sets the run's rate limiter and entry encoder up and returns a batch's size and
// the size a full batch may grow to, from the time a transaction took (txnTime).
func (r *run) batchSizes(txnTime time.Duration) (batchCap, growCap int) {
	e, req := r.e, r.req
	if req.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(req.Rate), max(1, min(e.cfg.BatchSize, int(req.Rate))))
	}
	batchCap = e.cfg.BatchSize
	if req.Rate > 0 {
		batchCap = max(1, min(batchCap, int(req.Rate))) // about a second of records per transaction
	}
	// A full batch keeps growing, up to growCap, while the lane the next batch would take is
	// still committing, when transactions are slow: the scan would otherwise wait for that
	// lane. A transaction costs the broker's round trips (produce, ledger, end), which the
	// last fence measured; against a broker some milliseconds away, fewer and larger
	// transactions make a replay faster (TestBenchReplayVariants, lanes=2 against
	// lanes=2+fixed, with -bench.latency). Against a near one (a fence well under a
	// millisecond), a busy lane means a busy processor, and larger batches only hold more
	// records in memory: a replay in its own process then took about a tenth longer.
	growCap = batchCap
	if req.Rate == 0 && !e.fixedBatches && txnTime >= e.growAfter {
		growCap = batchGrowth * batchCap
	}
	r.enc = newEntryEncoder(r.id, req.Topic, r.dltID, e.cfg.Actor, req.Reason, req.Group)
	if req.Group != "" {
		r.group = []byte(req.Group)
	}
	return batchCap, growCap
}

// batchGrowth is how many times BatchSize a batch may grow to while the next lane is busy;
// defaultGrowAfter, the transaction time (a lane's fence) from which batches grow.
const (
	batchGrowth      = 4
	defaultGrowAfter = time.Millisecond
)

func (r *run) progress(scanned int64) {
	if r.req.OnProgress != nil {
		r.req.OnProgress(Progress{Scanned: scanned, Counts: r.sum.Counts, Total: r.total})
	}
}

func (r *run) result(res Result) {
	if r.req.OnResult != nil {
		r.req.OnResult(res)
	}
}

func (r *run) failed(it *item, err error) {
	r.sum.Failed++
	if errors.Is(err, ErrCommitUnknown) {
		r.sum.CommitUnknown++
	}
	r.result(Result{From: it.from, Action: ActionFailed, Reason: err.Error(),
		Target: &Coord{Topic: it.out.Topic, Partition: -1, Offset: -1}, ReplayID: string(it.id), ReplayCount: it.count})
}

// finish writes the run-end entry (unless fenced: the fence belongs to another run now) and
// settles the summary's status.
func (r *run) finish(ctx context.Context, err error) error {
	err = explain(ctx, err)
	switch {
	case err == nil && r.sum.Partial():
		r.sum.Status = RunPartial
	case err == nil:
		r.sum.Status = RunCompleted
	case isFenced(err):
		r.sum.Status = RunFenced
		if !errors.Is(err, ErrFenced) {
			err = fmt.Errorf("%w: another replay of %s took over; nothing of this batch was applied", ErrFenced, r.req.Topic)
		}
		return err
	case errors.Is(err, context.Canceled):
		r.sum.Status = RunCancelled
	default:
		r.sum.Status = RunFailed
	}
	if errors.Is(err, ErrBrokerSilent) {
		// The run-end entry would wait on the silent broker too. The history shows the run as
		// "running", with the replays the ledger holds for it, as it shows a killed run.
		return err
	}
	var msg string
	if err != nil {
		msg = err.Error()
	}
	if r.e.beforeFinish != nil {
		r.e.beforeFinish(r.id)
	}
	counts := r.sum.Counts
	now := r.e.cfg.Now().UTC()
	end := r.runEntry(r.sum.Status, &counts, func(en *Entry) { en.Error, en.Finished = msg, &now })
	// Record the end even when the caller's context was cancelled (SIGINT), briefly.
	dctx, release := r.e.watch.detach(ctx)
	defer release()
	wctx, cancel := context.WithTimeout(dctx, 10*time.Second)
	defer cancel()
	ln := r.lanes[0]
	werr := ln.transact(wctx, func() error { return ln.produceSync(wctx, end) })
	if werr != nil && isFenced(werr) && err == nil {
		// Another run took the lanes over after this run's last batch committed: this run did
		// its whole job, and only its end entry lost the fence. The end entry needs none (its
		// key is this run's own), so it is written outside a transaction.
		r.sum.Note = fmt.Sprintf("another replay of %s started after this run's last batch and took over; every record reported replayed was applied", r.req.Topic)
		werr = r.e.produceEntry(wctx, end)
	}
	if werr != nil {
		r.e.cfg.Logger.Warn("could not record the end of the replay run in the ledger", "run", r.id, "err", werr)
	}
	return err
}

// produceEntry writes a ledger entry that needs no transaction, with the engine's own client.
func (e *Engine) produceEntry(ctx context.Context, rec *kgo.Record) error {
	if err := e.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("write %s: %w", e.cfg.LedgerTopic, err)
	}
	return nil
}

func (r *run) runEntry(status string, counts *Counts, edit func(*Entry)) *kgo.Record {
	en := Entry{
		Kind: KindRun, RunID: r.id, DLT: r.req.Topic, DLTID: r.dltID, Actor: r.e.cfg.Actor, Time: r.e.cfg.Now().UTC(),
		Reason: r.req.Reason, Status: status, Started: r.started, Selection: r.req.Selection.Describe(),
		To: r.req.To, Force: r.req.Force, Counts: counts, Group: r.req.Group,
	}
	if edit != nil {
		edit(&en)
	}
	b, _ := json.Marshal(en)
	return &kgo.Record{Topic: r.e.cfg.LedgerTopic, Key: []byte(RunKey(r.id)), Value: b}
}

func (r *run) newItem(rec *kgo.Record, from Coord, dec decision) *item {
	// The run's id (UUIDv7: time and random bits) with its last four bytes replaced by a
	// sequence number: unique per record, cheap, and sortable within a run. The id is made once
	// per record, so a batch retried within the run keeps its ids. The sequence number also
	// tells the slabs when the item's memory is free again (see slabs).
	r.seq++
	r.slabs.begin(r.seq)
	// Items, records, headers and bytes come from slabs, and the three header values of a
	// record share one buffer: a replay allocates a few times per slab, not per record.
	it, out := r.slabs.item()
	id := r.uuid
	binary.BigEndian.PutUint32(id[12:], r.seq)
	buf := r.slabs.carveBytes(36 + 10 + len(from.Topic) + 2 + 10 + 20)
	buf = appendUUID(buf, id)
	count := len(buf)
	buf = strconv.AppendInt(buf, int64(dec.count), 10)
	fromAt := len(buf)
	buf = appendCoord(buf, from)
	// One pass over the headers: room for all of them is carved, what is dropped given back.
	hs := r.slabs.carveHeaders(len(rec.Headers) + 4)
	hs = appendReplayHeaders(hs, rec.Headers, buf[fromAt:], buf[:count], buf[count:fromAt], r.group)
	r.slabs.uncarveHeaders(cap(hs) - len(hs))
	// The replayed record copies what it takes from the dead letter (key, value, the values of
	// the headers it keeps), so the dead letter goes back to the scan's pool once it is decided
	// (see fetchPool) instead of being held, with the dead-letter headers a replay drops,
	// until its batch commits.
	kept := len(hs) - 3 // the dead letter's headers come first, then the replay's own
	if r.group != nil {
		kept--
	}
	n := len(rec.Key) + len(rec.Value)
	for _, h := range hs[:kept] {
		n += len(h.Value)
	}
	own := r.slabs.carveBytes(n)
	own, out.Key = appendOwn(own, rec.Key)
	own, out.Value = appendOwn(own, rec.Value)
	for i := range hs[:kept] {
		own, hs[i].Value = appendOwn(own, hs[i].Value)
	}
	// Slabs hand out zero items and records (fresh, or cleared when released), so only the
	// fields that differ from zero are set: a
	// kgo.Record is large enough that writing it whole costs more than filling it in.
	out.Topic = dec.target
	out.Headers = hs[:len(hs):len(hs)]
	it.from, it.out, it.id, it.seq, it.count, it.stamp = from, out, buf[:count:count], r.seq, dec.count, rec.Timestamp.UnixMilli()
	return it
}

// appendOwn appends b to own, which has the room, and returns the copy: nil for nil (Kafka
// tells a null key, value or header value from an empty one).
func appendOwn(own, b []byte) ([]byte, []byte) {
	if b == nil {
		return own, nil
	}
	at := len(own)
	own = append(own, b...)
	return own, own[at:len(own):len(own)]
}

// keepHeader reports whether a replayed record keeps a header of its dead letter: business and
// trace headers yes; dead-letter metadata, earlier replay headers, and with a new group the
// old target group, no.
func keepHeader(key string, newGroup bool) bool {
	switch {
	case dlt.IsDeadLetterHeader(key):
	case key == dlt.HeaderReplayID, key == dlt.HeaderReplayCount, key == dlt.HeaderReplayedFrom:
	case key == dlt.HeaderTargetGroup && newGroup:
	default:
		return true
	}
	return false
}

// appendUUID appends id in its canonical text form.
func appendUUID(b []byte, id uuid.UUID) []byte {
	const hexDigits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

// appendCoord appends c as Coord.String renders it.
func appendCoord(b []byte, c Coord) []byte {
	b = append(b, c.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(c.Partition), 10)
	b = append(b, '/')
	return strconv.AppendInt(b, c.Offset, 10)
}

// Headers returns the headers of a replayed record: the original business and trace
// headers in their order, without dead-letter metadata (kafka_dlt-*, __connect.errors.*,
// x-original-topic) or earlier replay headers, then x-opsctl-replay-id, x-opsctl-replay-count,
// x-opsctl-replayed-from and, with a group, x-opsctl-target-group. Without a group a record
// keeps the target group an earlier replay gave it, so a replay never widens its audience
// silently.
func Headers(orig []kgo.RecordHeader, from Coord, replayID string, count int, group string) []kgo.RecordHeader {
	var g []byte
	if group != "" {
		g = []byte(group)
	}
	return appendReplayHeaders(make([]kgo.RecordHeader, 0, len(orig)+4), orig, []byte(from.String()), []byte(replayID),
		strconv.AppendInt(nil, int64(count), 10), g)
}

// appendReplayHeaders appends the replayed record's headers to out (see Headers).
func appendReplayHeaders(out, orig []kgo.RecordHeader, from, replayID, count, group []byte) []kgo.RecordHeader {
	for _, h := range orig {
		if keepHeader(h.Key, group != nil) {
			out = append(out, h)
		}
	}
	out = append(out,
		kgo.RecordHeader{Key: dlt.HeaderReplayID, Value: replayID},
		kgo.RecordHeader{Key: dlt.HeaderReplayCount, Value: count},
		kgo.RecordHeader{Key: dlt.HeaderReplayedFrom, Value: from},
	)
	if group != nil {
		out = append(out, kgo.RecordHeader{Key: dlt.HeaderTargetGroup, Value: group})
	}
	return out
}

// isFenced reports whether err means this producer lost its transactional id to a newer one.
func isFenced(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)
}

// recordLevel reports whether err concerns one record or its topic, not the transaction or
// the connection, so the rest of a batch can still be replayed.
func recordLevel(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage,
		kerr.InvalidTimestamp, kerr.TopicAuthorizationFailed, kerr.InvalidTopicException, kerr.UnknownTopicOrPartition} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ensureLedger creates the ledger topic, compacted, with three partitions, when it does not
// exist yet.
func (e *Engine) ensureLedger(ctx context.Context) error {
	ctx = fresh(ctx)
	tds, err := e.adm.ListTopics(ctx, e.cfg.LedgerTopic)
	if err != nil {
		return fmt.Errorf("look up ledger topic %s: %w", e.cfg.LedgerTopic, err)
	}
	if td, ok := tds[e.cfg.LedgerTopic]; ok && td.Err == nil {
		return nil
	}
	return e.createLedger(ctx)
}

// createLedger creates the ledger topic, compacted, with three partitions; one that exists
// already is left as it is.
func (e *Engine) createLedger(ctx context.Context) error {
	compact := "compact"
	// Three partitions, like every topic of the platform: ledger writes and reads spread over
	// them; entries of one dead letter always share a partition (same key).
	_, err := e.adm.CreateTopic(fresh(ctx), 3, -1, map[string]*string{"cleanup.policy": &compact}, e.cfg.LedgerTopic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create ledger topic %s (compacted): %w; nothing was replayed", e.cfg.LedgerTopic, err)
	}
	return nil
}
