package replay

import (
	"bytes"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"io"
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
	// encoding/json/v2: member names match exactly and may not repeat, as in the fast path.
	if err := jsonv2.Unmarshal(value, &e); err != nil {
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
	if from, ok := ParseCoord(string(key)); ok {
		// The fast path for the bulk of the ledger: a replay entry, read without a full decode.
		if runID, dltTopic, count, ok := scanReplayEntry(value); ok {
			if wantDLT == "" || dltTopic == wantDLT {
				ix.addReplay(from, ix.intern(runID), count, keepRuns)
			}
			return
		}
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
		ix.addReplay(*e.From, e.RunID, e.ReplayCount, keepRuns)
	case KindRun:
		if keepRuns {
			cp := e
			ix.runs[e.RunID] = &cp
		}
	}
}

func (ix *ledgerIndex) addReplay(from Coord, runID string, count int, keepRuns bool) {
	ps := ix.byDLT[from.Topic]
	if ps == nil {
		ps = map[int32]map[int64]replayed{}
		ix.byDLT[from.Topic] = ps
	}
	os := ps[from.Partition]
	if os == nil {
		os = map[int64]replayed{}
		ps[from.Partition] = os
	}
	if prev, ok := os[from.Offset]; ok && keepRuns {
		ix.runReplays[prev.run]--
	}
	os[from.Offset] = replayed{count: int32(count), run: runID}
	if keepRuns {
		ix.runReplays[runID]++
	}
}

// scanReplayEntry reads the fields a ledger index needs from a replay entry (kind "replay",
// runId, dlt, replayCount) without decoding the rest. ok is false for anything else — another
// kind, a malformed value — which then takes the full decode.
func scanReplayEntry(value []byte) (runID, dltTopic string, count int, ok bool) {
	if runID, dltTopic, count, ok = ownReplayEntry(value); ok {
		return runID, dltTopic, count, ok
	}
	return tokenReplayEntry(value)
}

// ownReplayEntry reads an entry laid out exactly as entryEncoder writes it — kind, runId and
// dlt first, replayCount last — with byte comparisons, after checking the value is valid JSON.
// A string cannot hide these markers: inside a JSON string every quote is escaped.
func ownReplayEntry(value []byte) (runID, dltTopic string, count int, ok bool) {
	const head = `{"kind":"replay","runId":"`
	rest, found := bytes.CutPrefix(value, []byte(head))
	if !found {
		return "", "", 0, false
	}
	id, rest, found := bytes.Cut(rest, []byte(`","dlt":"`))
	if !found || bytes.ContainsAny(id, "\\\"") || len(id) == 0 {
		return "", "", 0, false
	}
	topic, _, found := bytes.Cut(rest, []byte(`"`))
	if !found || bytes.IndexByte(topic, '\\') >= 0 {
		return "", "", 0, false
	}
	i := bytes.LastIndex(value, []byte(`},"replayCount":`))
	if i < 0 || value[len(value)-1] != '}' {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(string(value[i+len(`},"replayCount":`) : len(value)-1]))
	if err != nil || n < 0 || !jsontext.Value(value).IsValid() { // no duplicate names, valid UTF-8, as the full decode
		return "", "", 0, false
	}
	return string(id), string(topic), n, true
}

func tokenReplayEntry(value []byte) (runID, dltTopic string, count int, ok bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(value))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return "", "", 0, false
	}
	var kind string
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return "", "", 0, false
		}
		name := tok.String() // a token is only valid until the next read
		switch name {
		case "kind", "runId", "dlt":
			tok, err := dec.ReadToken()
			if err != nil || tok.Kind() != '"' {
				return "", "", 0, false
			}
			switch name {
			case "kind":
				kind = tok.String()
			case "runId":
				runID = tok.String()
			default:
				dltTopic = tok.String()
			}
		case "replayCount":
			tok, err := dec.ReadToken()
			if err != nil || tok.Kind() != '0' {
				return "", "", 0, false
			}
			n, err := strconv.Atoi(tok.String())
			if err != nil {
				return "", "", 0, false
			}
			count = n
		default:
			if err := dec.SkipValue(); err != nil {
				return "", "", 0, false
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return "", "", 0, false
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return "", "", 0, false
	}
	return runID, dltTopic, count, kind == KindReplay && runID != ""
}

// entryEncoder writes the replay entries of one run. What does not change within a run (kind,
// run id, DLT, actor, reason, group) is encoded once; per record only the time, replay id,
// target and count are appended. The result decodes exactly as Entry.
type entryEncoder struct{ prefix []byte }

func newEntryEncoder(runID, dltTopic, actor, reason, group string) *entryEncoder {
	b, _ := json.Marshal(struct {
		Kind   string `json:"kind"`
		RunID  string `json:"runId"`
		DLT    string `json:"dlt"`
		Actor  string `json:"actor"`
		Reason string `json:"reason"`
		Group  string `json:"group,omitempty"`
	}{KindReplay, runID, dltTopic, actor, reason, group})
	return &entryEncoder{prefix: b[:len(b)-1]}
}

// replay returns the value of one replay entry; at is the time already formatted as RFC 3339.
func (enc *entryEncoder) replay(at, replayID string, target Coord, count int) []byte {
	b := make([]byte, 0, len(enc.prefix)+160+len(target.Topic))
	b = append(b, enc.prefix...)
	b = append(b, `,"time":"`...)
	b = append(b, at...)
	b = append(b, `","replayId":`...)
	b = appendJSONString(b, replayID)
	b = append(b, `,"target":{"topic":`...)
	b = appendJSONString(b, target.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(target.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, target.Offset, 10)
	b = append(b, `},"replayCount":`...)
	b = strconv.AppendInt(b, int64(count), 10)
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	if out, err := jsontext.AppendQuote(b, s); err == nil {
		return out
	}
	q, _ := json.Marshal(s) // invalid UTF-8: json.Marshal replaces it
	return append(b, q...)
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
