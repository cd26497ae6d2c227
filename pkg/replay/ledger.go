package replay

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Ledger record kinds.
const (
	KindReplay = "replay" // one dead letter replayed
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

// Entry is one ledger record's value (JSON). A replay entry is keyed by its dead letter's
// coordinate; a run entry by RunKey(runID), so compaction keeps each run's latest state.
type Entry struct {
	Kind string `json:"kind"`
	// RunID is the run that wrote the entry.
	RunID string `json:"runId"`
	// DLT is the dead-letter topic the run replays from.
	DLT   string    `json:"dlt"`
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

// RunKey is the ledger key of a run entry. It has two parts, a replay key three, so the two
// never collide.
func RunKey(runID string) string { return "run/" + runID }

func decodeEntry(key, value []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(value, &e); err != nil {
		return Entry{}, fmt.Errorf("ledger record %q: %w", clipKey(key), err)
	}
	switch e.Kind {
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
	run   string
}

// ledgerIndex holds the replays of one or more DLTs, read from the ledger. Memory grows with
// the number of replayed records (a few dozen bytes each), not with the ledger's byte size.
type ledgerIndex struct {
	// byDLT maps DLT topic → partition → offset → last replay.
	byDLT map[string]map[int32]map[int64]replayed
	// runs holds the latest run entry of each run, by run id.
	runs map[string]*Entry
	// runReplays counts the replay entries each run still has in the ledger.
	runReplays map[string]int
	// bad counts ledger records that could not be read (foreign or corrupt values).
	bad int
	// ids interns run ids: a million replays of one run share one string.
	ids map[string]string
}

func newLedgerIndex() *ledgerIndex {
	return &ledgerIndex{
		byDLT:      map[string]map[int32]map[int64]replayed{},
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
	case KindReplay:
		ps := ix.byDLT[e.From.Topic]
		if ps == nil {
			ps = map[int32]map[int64]replayed{}
			ix.byDLT[e.From.Topic] = ps
		}
		os := ps[e.From.Partition]
		if os == nil {
			os = map[int64]replayed{}
			ps[e.From.Partition] = os
		}
		if prev, ok := os[e.From.Offset]; ok && keepRuns {
			ix.runReplays[prev.run]--
		}
		os[e.From.Offset] = replayed{count: int32(e.ReplayCount), run: e.RunID}
		if keepRuns {
			ix.runReplays[e.RunID]++
		}
	case KindRun:
		if keepRuns {
			cp := e
			ix.runs[e.RunID] = &cp
		}
	}
}

func (ix *ledgerIndex) lookup(c Coord) (replayed, bool) {
	r, ok := ix.byDLT[c.Topic][c.Partition][c.Offset]
	return r, ok
}

func (ix *ledgerIndex) count(dltTopic string) int {
	n := 0
	for _, os := range ix.byDLT[dltTopic] {
		n += len(os)
	}
	return n
}
