package dlt_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// TestWrongArgumentCountIsAUsageError: a missing or extra argument is a usage error (exit 2),
// like a bad flag, and nothing contacts the broker.
func TestWrongArgumentCountIsAUsageError(t *testing.T) {
	h := newHarness(t)
	for _, args := range [][]string{
		{"dlt", "list"},
		{"dlt", "list", "a.DLT", "b.DLT"},
		{"dlt", "stats"},
		{"dlt", "show", "orders-failed.DLT", "0"},
		{"dlt", "replay", "--dry-run"},
		{"dlt", "topics", "orders-failed.DLT"},
		{"dlt", "history", "a.DLT", "b.DLT"},
		{"dlt", "outcome"},
		{"dlt", "outcome", "a", "b"},
	} {
		r := h.run(t, false, "", args...)
		if r.code != cmdutil.ExitUsage {
			t.Errorf("%s: exit %d (%v), want %d", strings.Join(args, " "), r.code, r.err, cmdutil.ExitUsage)
		}
	}
}

// TestDryRunExitsAsTheRunWould: a dry run whose plan refuses records exits 3, as the run
// itself would, and still changes nothing.
func TestDryRunExitsAsTheRunWould(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	noOrigin := replaytest.Saga(0, 99, "X", 1, replaytest.Base)
	noOrigin.Headers = nil
	replaytest.Produce(t, h.c, noOrigin)

	r := h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--dry-run")
	if r.code != cmdutil.ExitPartial || !strings.Contains(r.out, "no-target") || !strings.Contains(r.out, "Dry run: nothing was changed") {
		t.Fatalf("dry run with a refused record: exit %d (%v)\n%s", r.code, r.err, r.out)
	}
	if n := len(replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed)); n != 0 {
		t.Fatalf("the dry run replayed %d records", n)
	}
	// Without refusals a dry run exits 0.
	if r := h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--dry-run", "--partition", "1"); r.code != cmdutil.ExitOK {
		t.Fatalf("dry run without refusals: exit %d (%v)\n%s", r.code, r.err, r.out)
	}
}

// TestRefusedRequestPrintsNoRun: a request the rules refuse before anything starts (--to without
// an allowlist) says why, and prints no "Replay run … failed" for a run that never existed.
func TestRefusedRequestPrintsNoRun(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	for _, extra := range [][]string{{"--yes"}, {"--yes", "-o", "json"}} {
		args := append([]string{"dlt", "replay", "orders-failed.DLT", "--reason", "r", "--to", "payments-failed"}, extra...)
		r := h.run(t, false, "", args...)
		if r.code != cmdutil.ExitError || r.err == nil || !strings.Contains(r.err.Error(), "--to needs a topic allowlist") {
			t.Fatalf("%v: exit %d (%v)", extra, r.code, r.err)
		}
		if strings.Contains(r.out, "Replay run") || strings.Contains(r.out, "summary") || strings.Contains(r.out, "failed") {
			t.Fatalf("%v: a refused request printed a run summary:\n%s", extra, r.out)
		}
	}
	var runs []map[string]any
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "history", "-o", "json")), &runs); err != nil || len(runs) != 0 {
		t.Fatalf("history after refused requests: %v %v", runs, err)
	}
}

// TestFutureSinceWarnsAndRecordsNoRun: --since in the future warns; a replay that then has
// nothing to do changes nothing and records no empty run.
func TestFutureSinceWarnsAndRecordsNoRun(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	future := replaytest.Base.Add(48 * 3600e9).Format("2006-01-02T15:04:05Z") // the harness's now is Base+30m
	r := h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--since", future, "--reason", "r", "--yes")
	if r.code != cmdutil.ExitOK || !strings.Contains(r.errOut, "is in the future") || !strings.Contains(r.out, "Nothing to replay; nothing was changed.") {
		t.Fatalf("replay --since in the future: exit %d (%v)\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.out, r.errOut)
	}
	var runs []map[string]any
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "history", "-o", "json")), &runs); err != nil || len(runs) != 0 {
		t.Fatalf("a replay with --since in the future recorded runs: %v %v", runs, err)
	}
	for _, cmd := range []string{"list", "stats"} {
		r := h.run(t, false, "", "dlt", cmd, "orders-failed.DLT", "--since", future)
		if r.code != cmdutil.ExitOK || !strings.Contains(r.errOut, "is in the future") {
			t.Fatalf("%s --since in the future: exit %d (%v), stderr %q", cmd, r.code, r.err, r.errOut)
		}
	}
}

// TestJSONEscapesDEL: DEL (0x7f) in a dead letter's key, value and headers is escaped in -o
// json and -o yaml as every other control byte is.
func TestJSONEscapesDEL(t *testing.T) {
	h := newHarness(t)
	rec := &kgo.Record{
		Topic: event.DLT(event.TopicOrdersFailed), Partition: 0, Key: []byte("k\x7fey"), Timestamp: replaytest.Base,
		Value: []byte("{\"orderId\":\"o\x7f1\",\"errorCode\":\"CODE\x7f\",\"errorSource\":\"svc\x7f\",\"errorMessage\":\"m\x7f\"}"),
		Headers: []kgo.RecordHeader{
			{Key: dlt.HeaderOriginalTopic, Value: []byte(event.TopicOrdersFailed)},
			{Key: "note\x7f", Value: []byte("v\x7f")},
		},
	}
	replaytest.Produce(t, h.c, rec)
	for _, args := range [][]string{
		{"dlt", "list", "orders-failed.DLT", "-o", "json"},
		{"dlt", "list", "orders-failed.DLT", "-o", "yaml"},
		{"dlt", "stats", "orders-failed.DLT", "-o", "json"},
		{"dlt", "stats", "orders-failed.DLT", "-o", "yaml"},
		{"dlt", "show", "orders-failed.DLT", "0", "0", "-o", "json"},
		{"dlt", "show", "orders-failed.DLT", "0", "0", "-o", "yaml"},
		{"dlt", "show", "orders-failed.DLT", "0", "0"},
		{"dlt", "replay", "orders-failed.DLT", "--dry-run", "-o", "json"},
	} {
		assertTerminalSafe(t, strings.Join(args, " "), h.ok(t, args...))
	}
	// The escape keeps the JSON's meaning: the value reads back with its DEL.
	var row struct {
		ErrorCode string `json:"errorCode"`
	}
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "list", "orders-failed.DLT", "-o", "json")), &row); err != nil || row.ErrorCode != "CODE\x7f" {
		t.Fatalf("errorCode read back %q, %v", row.ErrorCode, err)
	}
}

// TestWhereWithAnUnknownNameIsAUsageError: `--where 'errorcode != "X"'` named nothing any
// record has and selected every record; it is a usage error that suggests errorCode, and
// nothing is replayed. A field only some records have is reported with counts.
func TestWhereWithAnUnknownNameIsAUsageError(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	for _, args := range [][]string{
		{"dlt", "replay", "orders-failed.DLT", "--where", `errorcode != "X"`, "--reason", "r", "--yes"},
		{"dlt", "replay", "orders-failed.DLT", "--where", `errorcode != "X"`, "--dry-run"},
		{"dlt", "list", "orders-failed.DLT", "--where", `errorcode != "X"`},
		{"dlt", "stats", "orders-failed.DLT", "--where", `errorcode != "X"`},
	} {
		r := h.run(t, false, "", args...)
		if r.code != cmdutil.ExitUsage || r.err == nil || !strings.Contains(r.err.Error(), "did you mean errorCode?") || !strings.Contains(r.err.Error(), "Nothing was changed") {
			t.Errorf("%s: exit %d (%v)\n%s", strings.Join(args, " "), r.code, r.err, r.out)
		}
		if strings.Contains(r.out, "orders-failed.DLT/") || strings.Contains(r.out, "product-service") {
			t.Errorf("%s printed records before refusing:\n%s", strings.Join(args, " "), r.out)
		}
	}
	if n := len(replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed)); n != 0 {
		t.Fatalf("a refused --where replayed %d records", n)
	}

	bare := &kgo.Record{Topic: "orders-failed.DLT", Partition: 0, Timestamp: replaytest.Base,
		Value:   []byte(`{"orderId":1,"errorSource":"product-service","errorCode":"X"}`),
		Headers: []kgo.RecordHeader{{Key: dlt.HeaderOriginalTopic, Value: []byte(event.TopicOrdersFailed)}}}
	replaytest.Produce(t, h.c, bare)
	r := h.run(t, false, "", "dlt", "list", "orders-failed.DLT", "--where", "quantity > 1")
	if r.err != nil || !strings.Contains(r.errOut, "names quantity, which 1 of the 13 records it was evaluated on lack") {
		t.Fatalf("list --where on a field one record lacks: %v\nstderr: %s", r.err, r.errOut)
	}
}
