package replay

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Ledger record kinds.
const (
	KindBatch  = "batch"  // the dead letters one replay transaction replayed (or a part of them)
	KindReplay = "replay" // one dead letter replayed (written by earlier versions; still read)
	KindRun    = "run"    // one replay run: written when it starts and again when it ends
)

// Run statuses in the ledger.
const (
	RunRunning   = "running"   // started; a run that never ended (killed) keeps this status
	RunCompleted = "completed" // every selected record was replayed or already had been
	RunPartial   = "partial"   // some records were refused or failed
	RunFenced    = "fenced"    // another run of the same DLT took over
	RunFailed    = "failed"    // stopped by an error
	RunCancelled = "cancelled" // interrupted (SIGINT)
)

// Coord names one record.
type Coord struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// String renders the coordinate as "topic/partition/offset", the ledger key and the
// x-opsctl-replayed-from header value.
func (c Coord) String() string {
	return c.Topic + "/" + strconv.FormatInt(int64(c.Partition), 10) + "/" + strconv.FormatInt(c.Offset, 10)
}

// ParseCoord reads "topic/partition/offset". Topic names cannot contain '/', so the form is
// unambiguous.
func ParseCoord(s string) (Coord, bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" {
		return Coord{}, false
	}
	p, err1 := strconv.ParseInt(parts[1], 10, 32)
	o, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Coord{}, false
	}
	return Coord{Topic: parts[0], Partition: int32(p), Offset: o}, true
}

// Entry is one ledger record's value (JSON). A batch entry is keyed by BatchKey: it lists the
// dead letters one transaction replayed, committed in that transaction. A run entry is keyed
// by RunKey(runID), so compaction keeps each run's latest state. A replay entry (one dead
// letter, keyed by its coordinate) is the format of earlier versions, still read.
type Entry struct {
	Kind string `json:"kind"`
	// RunID is the run that wrote the entry.
	RunID string `json:"runId"`
	// DLT is the dead-letter topic the run replays from.
	DLT string `json:"dlt"`
	// DLTID is the topic ID of the DLT when the run started (Kafka's, base64url as its tools
	// print it): a topic deleted and created again under the same name has another, and its
	// records are other records at the same offsets. Empty on a broker without topic IDs and
	// in entries written before the ledger recorded them.
	DLTID string    `json:"dltId,omitempty"`
	Actor string    `json:"actor"`
	Time  time.Time `json:"time"`
	// Reason is the operator's --reason.
	Reason string `json:"reason"`

	// Replay entries.
	ReplayID    string `json:"replayId,omitempty"`
	From        *Coord `json:"from,omitempty"`
	Target      *Coord `json:"target,omitempty"`
	ReplayCount int    `json:"replayCount,omitempty"`
	Group       string `json:"group,omitempty"`

	// Batch entries: the target topics, the meaning of each row's columns (BatchColumns), and
	// one row per dead letter replayed.
	Targets []string     `json:"targets,omitempty"`
	Columns []string     `json:"columns,omitempty"`
	Replays BatchReplays `json:"replays,omitempty"`
	// Stamps, in a batch entry written without a topic ID, holds each row's dead-letter
	// timestamp (Unix milliseconds), in row order: on a broker without topic IDs it tells a
	// replayed dead letter from another record at the same offset of a recreated DLT.
	Stamps []int64 `json:"stamps,omitempty"`

	// Run entries.
	Status    string     `json:"status,omitempty"`
	Started   time.Time  `json:"started,omitzero"`
	Finished  *time.Time `json:"finished,omitempty"`
	Selection string     `json:"selection,omitempty"`
	To        string     `json:"to,omitempty"`
	Force     bool       `json:"force,omitempty"`
	Counts    *Counts    `json:"counts,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// Counts are the tallies of a run.
type Counts struct {
	Selected int `json:"selected"`
	Replayed int `json:"replayed"`
	Skipped  int `json:"skippedAlreadyReplayed"`
	Refused  int `json:"refused"`
	Failed   int `json:"failed"`
}

// RunKey is the ledger key of a run entry. It has two parts, a replay key three and a batch key
// five, so they never collide.
func RunKey(runID string) string { return "run/" + runID }

// BatchKey is the ledger key of a run's n-th batch entry: "dlt/run/<runID>/<n>". It starts with
// the DLT, so a reader interested in one DLT skips the others' entries by key.
func BatchKey(dltTopic, runID string, n int) string {
	return dltTopic + "/run/" + runID + "/" + strconv.Itoa(n)
}

// BatchColumns names the columns of a batch entry's rows, in order. The replay id of a row is
// the run id (a UUID) with its last four bytes replaced by replayIdSeq, big-endian.
var BatchColumns = []string{"partition", "offset", "target", "targetPartition", "targetOffset", "replayCount", "replayIdSeq"}

// batchColumnsJSON is BatchColumns as a batch entry writes it.
var batchColumnsJSON, _ = json.Marshal(BatchColumns)

// BatchReplay is one row of a batch entry: a dead letter of the entry's DLT and where its
// replay went (Target indexes the entry's Targets).
type BatchReplay struct {
	Partition       int32
	Offset          int64
	Target          int
	TargetPartition int32
	TargetOffset    int64
	ReplayCount     int
	Seq             uint32
}

// BatchReplays are a batch entry's rows, in JSON an array of arrays of seven integers.
type BatchReplays []BatchReplay

// UnmarshalJSONFrom reads the rows: the decoder checks the array is valid JSON, then parseRows
// reads it in one pass (a ledger read decodes a row per record ever replayed, and token by
// token this was most of a rerun's time), rejecting any row that is not seven integers in range.
func (rs *BatchReplays) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		*rs = nil
		return err
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	out, err := parseRows(raw, (*rs)[:0])
	if err != nil {
		return err
	}
	*rs = out
	return nil
}

// parseRows appends the rows of raw, a valid JSON value, to out.
func parseRows(raw []byte, out []BatchReplay) ([]BatchReplay, error) {
	i := 0
	peek := func() byte { // the next byte that is not white space, 0 at the end
		for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
			i++
		}
		if i < len(raw) {
			return raw[i]
		}
		return 0
	}
	if peek() != '[' {
		return nil, errors.New("replays: not an array")
	}
	i++
	if peek() == ']' {
		return out, nil
	}
	for {
		if peek() != '[' {
			return nil, errors.New("replays: a row is not an array")
		}
		i++
		var v [7]int64
		for col := 0; ; col++ {
			if col == 0 && peek() == ']' {
				return nil, fmt.Errorf("replays: row %d has no columns", len(out))
			}
			if col == len(v) {
				return nil, fmt.Errorf("replays: row %d has more than %d columns", len(out), len(v))
			}
			peek()
			start := i
			for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
				v[col] = v[col]*10 + int64(raw[i]-'0')
				i++
				if i-start > 18 {
					return nil, fmt.Errorf("replays: row %d: column %s is out of range", len(out), BatchColumns[col])
				}
			}
			if i == start || (i < len(raw) && (raw[i] == '.' || raw[i] == 'e' || raw[i] == 'E')) {
				return nil, fmt.Errorf("replays: row %d: column %s is not a non-negative integer", len(out), BatchColumns[col])
			}
			c := peek()
			i++
			if c == ']' {
				if col != len(v)-1 {
					return nil, fmt.Errorf("replays: row %d has %d columns, not %d", len(out), col+1, len(v))
				}
				break
			}
			if c != ',' {
				return nil, fmt.Errorf("replays: row %d is malformed", len(out))
			}
		}
		if v[0] > math.MaxInt32 || v[3] > math.MaxInt32 || v[5] > math.MaxInt32 || v[6] > math.MaxUint32 || v[2] > math.MaxInt32 {
			return nil, fmt.Errorf("replays: row %d: a column is out of range", len(out))
		}
		out = append(out, BatchReplay{Partition: int32(v[0]), Offset: v[1], Target: int(v[2]), TargetPartition: int32(v[3]),
			TargetOffset: v[4], ReplayCount: int(v[5]), Seq: uint32(v[6])})
		c := peek()
		i++
		if c == ']' {
			return out, nil
		}
		if c != ',' {
			return nil, errors.New("replays: rows are malformed")
		}
	}
}

func decodeEntry(key, value []byte) (Entry, error) {
	var e Entry
	// encoding/json/v2: member names match exactly and may not repeat, as in the fast path.
	if err := jsonv2.Unmarshal(value, &e); err != nil {
		return Entry{}, fmt.Errorf("ledger record %q: %w", clipKey(key), err)
	}
	switch e.Kind {
	case KindBatch:
		if e.RunID == "" || e.DLT == "" {
			return Entry{}, fmt.Errorf("ledger record %q: a batch entry without a run id or DLT", clipKey(key))
		}
		if len(e.Stamps) > 0 && len(e.Stamps) != len(e.Replays) {
			return Entry{}, fmt.Errorf("ledger record %q: %d stamps for %d rows", clipKey(key), len(e.Stamps), len(e.Replays))
		}
		for i, r := range e.Replays {
			if r.Target >= len(e.Targets) {
				return Entry{}, fmt.Errorf("ledger record %q: row %d names target %d of %d", clipKey(key), i, r.Target, len(e.Targets))
			}
			if r.ReplayCount < 1 {
				return Entry{}, fmt.Errorf("ledger record %q: row %d has replay count %d", clipKey(key), i, r.ReplayCount)
			}
		}
	case KindReplay:
		c, ok := ParseCoord(string(key))
		if !ok {
			return Entry{}, fmt.Errorf("ledger record %q: a replay entry needs a topic/partition/offset key", clipKey(key))
		}
		e.From = &c
	case KindRun:
		if e.RunID == "" {
			return Entry{}, fmt.Errorf("ledger record %q: a run entry without a run id", clipKey(key))
		}
	default:
		return Entry{}, fmt.Errorf("ledger record %q: unknown kind %q", clipKey(key), e.Kind)
	}
	return e, nil
}

func clipKey(k []byte) string {
	if len(k) > 80 {
		return string(k[:80]) + "…"
	}
	return string(k)
}

// replayed is what a run needs to know about one dead letter's last replay.
type replayed struct {
	count int32 // x-opsctl-replay-count the replay carried
	set   bool  // in an offsetTable's slice: a replay is recorded at this offset
	run   string
	// stamp is the dead letter's timestamp (Unix milliseconds) when the replay was recorded
	// without a topic ID, else 0: the record at the offset now is the one replayed only if
	// it carries the same.
	stamp int64
}

// offsets are the replays recorded for the dead letters of one DLT incarnation: partition →
// offset → last replay.
type offsets map[int32]*offsetTable

// offsetTable is one partition's replays, by offset. The offsets a DLT's runs replayed lie
// close together (a run replays ranges of the DLT), so they are kept in a slice indexed from
// the lowest: an insert or a lookup, once per record a replay reads, costs an index where a
// map costs a hash, and the slice grows by copying where a map of a million entries is
// rebuilt. Offsets so far from the others that the slice would be mostly empty go to a map.
type offsetTable struct {
	base   int64
	dense  []replayed // dense[o-base], where set
	n      int        // the entries set in dense
	sparse map[int64]replayed
}

// minDense is the length the slice may always have, however few of its entries are set.
const minDense = 1024

// get returns the replay recorded at offset o; t may be nil (none).
func (t *offsetTable) get(o int64) (replayed, bool) {
	if t == nil {
		return replayed{}, false
	}
	if i := o - t.base; i >= 0 && i < int64(len(t.dense)) {
		r := t.dense[i]
		return r, r.set
	}
	r, ok := t.sparse[o]
	return r, ok
}

// put records r at offset o, in place of what was there.
func (t *offsetTable) put(o int64, r replayed) {
	r.set = true
	if i := o - t.base; i >= 0 && i < int64(len(t.dense)) {
		if !t.dense[i].set {
			t.n++
		}
		t.dense[i] = r
		return
	}
	if _, ok := t.sparse[o]; ok {
		t.sparse[o] = r
		return
	}
	lo, hi := o, o+1
	if len(t.dense) > 0 {
		lo, hi = min(lo, t.base), max(hi, t.base+int64(len(t.dense)))
	}
	if hi-lo > max(minDense, 4*int64(t.n+len(t.sparse)+1)) {
		// Too far from the others for now: the slice would be mostly empty.
		if t.sparse == nil {
			t.sparse = map[int64]replayed{}
		}
		t.sparse[o] = r
		return
	}
	t.grow(lo, hi)
	t.dense[o-t.base] = r
	t.n++
}

// grow widens the slice to cover [lo, hi) at least, doubling it at least, so that it grows a
// few times whatever the order the offsets come in, and moves the entries of the map it now
// covers into it.
func (t *offsetTable) grow(lo, hi int64) {
	n := int64(len(t.dense))
	switch {
	case n == 0:
		t.base, t.dense = lo, make([]replayed, max(hi-lo, 64))
	case lo >= t.base:
		t.dense = append(t.dense, make([]replayed, max(hi-t.base, 2*n)-n)...)
	default:
		// Room below as large as what is kept (offsets are never negative).
		base := lo - min(n, max(lo, 0))
		grown := make([]replayed, max(hi, t.base+n)-base)
		copy(grown[t.base-base:], t.dense)
		t.base, t.dense = base, grown
	}
	for o, r := range t.sparse {
		if i := o - t.base; i >= 0 && i < int64(len(t.dense)) {
			t.dense[i] = r
			t.n++
			delete(t.sparse, o)
		}
	}
}

// len returns the number of offsets with a replay recorded.
func (t *offsetTable) len() int {
	if t == nil {
		return 0
	}
	return t.n + len(t.sparse)
}

// each calls fn for every offset with a replay recorded.
func (t *offsetTable) each(fn func(o int64)) {
	if t == nil {
		return
	}
	for i, r := range t.dense {
		if r.set {
			fn(t.base + int64(i))
		}
	}
	for o := range t.sparse {
		fn(o)
	}
}

// ledgerIndex holds the replays of one or more DLTs, read from the ledger. Memory grows with
// the number of replayed records (a few dozen bytes each), not with the ledger's byte size.
//
// Replays are kept per DLT incarnation, by the topic ID the run recorded: a DLT deleted and
// created again starts its offsets at 0 again, and its records are not the ones replayed.
// Entries without a topic ID (written before the ledger recorded them, or on a broker without
// topic IDs) are kept apart; see view for whom they are taken to belong to.
type ledgerIndex struct {
	// byDLT maps DLT topic → topic ID ("" for entries without one) → replays.
	byDLT map[string]map[string]offsets
	// firstID holds, per DLT, the earliest run that recorded a topic ID.
	firstID map[string]idRun
	// runs holds the latest run entry of each run, by run id.
	runs map[string]*Entry
	// runReplays counts the replay entries each run still has in the ledger.
	runReplays map[string]int
	// rows, when not nil, collects where the replays of the runs it names went (see runRows).
	rows map[string]*runRows
	// bad counts ledger records that could not be read (foreign or corrupt values).
	bad int
	// ids interns run ids: a million replays of one run share one string.
	ids map[string]string
}

// idRun is a run that recorded the topic ID of its DLT.
type idRun struct {
	started time.Time
	run, id string
}

func newLedgerIndex() *ledgerIndex {
	return &ledgerIndex{
		byDLT:      map[string]map[string]offsets{},
		firstID:    map[string]idRun{},
		runs:       map[string]*Entry{},
		runReplays: map[string]int{},
		ids:        map[string]string{},
	}
}

func (ix *ledgerIndex) intern(s string) string {
	if v, ok := ix.ids[s]; ok {
		return v
	}
	ix.ids[s] = s
	return s
}

func (ix *ledgerIndex) add(key, value []byte, wantDLT string, keepRuns bool) {
	if wantDLT != "" && !strings.HasPrefix(string(key), wantDLT+"/") && !strings.HasPrefix(string(key), "run/") {
		return // another DLT's replay: skip before paying for JSON
	}
	e, err := decodeEntry(key, value)
	if err != nil {
		ix.bad++
		return
	}
	if wantDLT != "" && e.DLT != wantDLT {
		return
	}
	e.RunID = ix.intern(e.RunID)
	switch e.Kind {
	case KindBatch:
		e.DLTID = ix.intern(e.DLTID)
		if rr := ix.rows[e.RunID]; rr != nil {
			for _, r := range e.Replays {
				rr.add(e.Targets[r.Target], r.TargetPartition, r.TargetOffset)
			}
		}
		for i, r := range e.Replays {
			var stamp int64
			if len(e.Stamps) > 0 {
				stamp = e.Stamps[i]
			}
			ix.addReplay(e.DLTID, Coord{Topic: e.DLT, Partition: r.Partition, Offset: r.Offset}, e.RunID, r.ReplayCount, stamp, keepRuns)
		}
	case KindReplay:
		if rr := ix.rows[e.RunID]; rr != nil && e.Target != nil {
			rr.add(e.Target.Topic, e.Target.Partition, e.Target.Offset)
		}
		ix.addReplay("", *e.From, e.RunID, e.ReplayCount, 0, keepRuns)
	case KindRun:
		if e.DLTID != "" {
			f, ok := ix.firstID[e.DLT]
			if !ok || e.Started.Before(f.started) || (e.Started.Equal(f.started) && e.RunID < f.run) {
				ix.firstID[e.DLT] = idRun{started: e.Started, run: e.RunID, id: e.DLTID}
			}
		}
		if keepRuns {
			cp := e
			ix.runs[e.RunID] = &cp
		}
	}
}

func (ix *ledgerIndex) addReplay(id string, from Coord, runID string, count int, stamp int64, keepRuns bool) {
	incs := ix.byDLT[from.Topic]
	if incs == nil {
		incs = map[string]offsets{}
		ix.byDLT[from.Topic] = incs
	}
	ps := incs[id]
	if ps == nil {
		ps = offsets{}
		incs[id] = ps
	}
	os := ps[from.Partition]
	if os == nil {
		os = &offsetTable{}
		ps[from.Partition] = os
	}
	if prev, ok := os.get(from.Offset); ok {
		// Every replay counts one higher than the one before, so the highest count is the
		// latest replay, whatever order the ledger's partitions were read in.
		if int(prev.count) >= count {
			return
		}
		if keepRuns {
			ix.runReplays[prev.run]--
		}
	}
	os.put(from.Offset, replayed{count: int32(count), run: runID, stamp: stamp})
	if keepRuns {
		ix.runReplays[runID]++
	}
}

// batchRow is what a batch entry records about one replayed dead letter.
type batchRow struct {
	from   Coord
	target Coord
	count  int
	seq    uint32
	stamp  int64 // the dead letter's timestamp, Unix milliseconds (written without a topic ID)
}

// batch returns the value of one batch entry holding rows; at is the time already formatted as
// RFC 3339.
func (enc *entryEncoder) batch(at string, rows []batchRow) []byte {
	var targets []string
	index := map[string]int{}
	for _, r := range rows {
		if _, ok := index[r.target.Topic]; !ok {
			index[r.target.Topic] = len(targets)
			targets = append(targets, r.target.Topic)
		}
	}
	b := make([]byte, 0, len(enc.batchPrefix)+200+48*len(rows))
	b = append(b, enc.batchPrefix...)
	b = append(b, `,"time":"`...)
	b = append(b, at...)
	b = append(b, `","targets":[`...)
	for i, t := range targets {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t)
	}
	b = append(b, `],"columns":`...)
	b = append(b, batchColumnsJSON...)
	b = append(b, `,"replays":[`...)
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(r.from.Partition), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, r.from.Offset, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(index[r.target.Topic]), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.target.Partition), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, r.target.Offset, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(r.count), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(r.seq), 10)
		b = append(b, ']')
	}
	b = append(b, ']')
	if enc.stamps {
		b = append(b, `,"stamps":[`...)
		for i, r := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, r.stamp, 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// maxBatchRows bounds the rows of one batch entry (a ledger topic with a small
// max.message.bytes gets fewer per entry).
const maxBatchRows = 2000

// entryEncoder writes the replay entries of one run. What does not change within a run (kind,
// run id, DLT, actor, reason, group) is encoded once; per record only the time, replay id,
// target and count are appended. The result decodes exactly as Entry.
// Without the DLT's topic ID (dltID ""), batch entries carry each row's dead-letter timestamp.
type entryEncoder struct {
	batchPrefix []byte
	stamps      bool
}

func newEntryEncoder(runID, dltTopic, dltID, actor, reason, group string) *entryEncoder {
	return &entryEncoder{batchPrefix: headerJSON(KindBatch, runID, dltTopic, dltID, actor, reason, group), stamps: dltID == ""}
}

// headerJSON is the start of an entry, without its closing brace.
func headerJSON(kind, runID, dltTopic, dltID, actor, reason, group string) []byte {
	b, _ := json.Marshal(struct {
		Kind   string `json:"kind"`
		RunID  string `json:"runId"`
		DLT    string `json:"dlt"`
		DLTID  string `json:"dltId,omitempty"`
		Actor  string `json:"actor"`
		Reason string `json:"reason"`
		Group  string `json:"group,omitempty"`
	}{kind, runID, dltTopic, dltID, actor, reason, group})
	return b[:len(b)-1]
}

func appendJSONString(b []byte, s string) []byte {
	if out, err := jsontext.AppendQuote(b, s); err == nil {
		return out
	}
	q, _ := json.Marshal(s) // invalid UTF-8: json.Marshal replaces it
	return append(b, q...)
}

// ledgerView is what the ledger says about the dead letters of one DLT incarnation.
type ledgerView struct {
	cur    offsets // entries recorded with its topic ID
	legacy offsets // entries recorded without a topic ID, when they are taken to be its
}

// view returns the replays of the incarnation of dltTopic whose topic ID is id ("" on a broker
// without topic IDs). Entries recorded without a topic ID are taken to be the replays of the
// incarnation the DLT's first ID-recording run saw: they were written before it, and the DLT
// is assumed not to have been recreated in between. Until such a run exists they are taken to
// be the current incarnation's. Either way a ledger written before topic IDs were recorded
// never makes a record be replayed twice; the price is that a DLT recreated before the first
// ID-recording run has its new records at those offsets taken as replayed (a --force replay
// of them is the way out).
func (ix *ledgerIndex) view(dltTopic, id string) ledgerView {
	incs := ix.byDLT[dltTopic]
	v := ledgerView{cur: incs[id]}
	if f, ok := ix.firstID[dltTopic]; id != "" && (!ok || f.id == id) {
		v.legacy = incs[""]
	}
	return v
}

// lookup returns the last replay of the dead letter at partition p, offset o, when one is
// recorded. A replay recorded with a stamp (no topic ID) is the record's only if stamp, its
// timestamp in Unix milliseconds, is the same; stamp < 0 skips that check.
func (v ledgerView) lookup(p int32, o, stamp int64) (replayed, bool) {
	r, ok := v.cur[p].get(o)
	if l, lok := v.legacy[p].get(o); lok && (!ok || l.count > r.count) {
		r, ok = l, true
	}
	if ok && r.stamp != 0 && stamp >= 0 && r.stamp != stamp {
		return replayed{}, false // another record at the same offset: the DLT was recreated
	}
	return r, ok
}

// count returns how many dead letters of the incarnation the ledger records as replayed.
func (v ledgerView) count() int {
	n := 0
	for p, os := range v.cur {
		n += os.len()
		v.legacy[p].each(func(o int64) {
			if _, dup := os.get(o); !dup {
				n++
			}
		})
	}
	for p, os := range v.legacy {
		if _, seen := v.cur[p]; !seen {
			n += os.len()
		}
	}
	return n
}

// runRows is where one run's replayed records went: target topic → partition → offsets,
// ascending once sorted has run.
type runRows struct {
	targets map[string]map[int32][]int64
	n       int
}

func newRunRows() *runRows { return &runRows{targets: map[string]map[int32][]int64{}} }

func (rr *runRows) add(topic string, p int32, o int64) {
	ps := rr.targets[topic]
	if ps == nil {
		ps = map[int32][]int64{}
		rr.targets[topic] = ps
	}
	ps[p] = append(ps[p], o)
	rr.n++
}

// sorted sorts every partition's offsets.
func (rr *runRows) sorted() {
	for _, ps := range rr.targets {
		for _, os := range ps {
			slices.Sort(os)
		}
	}
}

// has reports whether the run wrote a replayed record at topic/p/o.
func (rr *runRows) has(topic string, p int32, o int64) bool {
	_, ok := slices.BinarySearch(rr.targets[topic][p], o)
	return ok
}
