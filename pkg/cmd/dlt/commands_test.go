package dlt_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/come2us/opsctl/pkg/cmd/root"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/iostreams"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

func TestReadCommandsGolden(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	tests := []struct {
		name string
		args []string
	}{
		{"topics_table", []string{"dlt", "topics"}},
		{"topics_json", []string{"dlt", "topics", "-o", "json"}},
		{"stats_saga_table", []string{"dlt", "stats", "orders-failed.DLT"}},
		{"stats_saga_json", []string{"dlt", "stats", "orders-failed.DLT", "-o", "json"}},
		{"stats_spring_table", []string{"dlt", "stats", "payments-failed-dlt"}},
		{"stats_connect_table", []string{"dlt", "stats", "connect-orders-dlt"}},
		{"list_saga_table", []string{"dlt", "list", "orders-failed.DLT"}},
		{"list_where_table", []string{"dlt", "list", "orders-failed.DLT", "--where", `errorCode == "DB_LOCK_TIMEOUT" && quantity > 1`}},
		{"list_filters_table", []string{"dlt", "list", "orders-failed.DLT", "--partition", "1", "--offset", "1-3", "--since", "2026-11-25T03:02:00Z", "--until", "5m"}},
		{"list_saga_json", []string{"dlt", "list", "orders-failed.DLT", "--limit", "2", "-o", "json"}},
		{"list_spring_table", []string{"dlt", "list", "payments-failed-dlt"}},
		{"list_connect_json", []string{"dlt", "list", "connect-orders-dlt", "-o", "json"}},
		{"show_saga_table", []string{"dlt", "show", "orders-failed.DLT", "1", "0"}},
		{"show_saga_reveal_table", []string{"dlt", "show", "orders-failed.DLT", "1", "0", "--reveal"}},
		{"show_saga_json", []string{"dlt", "show", "orders-failed.DLT", "1", "0", "-o", "json"}},
		{"show_spring_table", []string{"dlt", "show", "payments-failed-dlt", "1", "0"}},
		{"show_connect_table", []string{"dlt", "show", "connect-orders-dlt", "0", "2"}},
		{"show_connect_yaml", []string{"dlt", "show", "connect-orders-dlt", "0", "2", "-o", "yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name, h.ok(t, tt.args...))
		})
	}
}

func TestShowMasksSecrets(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	for _, args := range [][]string{
		{"dlt", "show", "orders-failed.DLT", "1", "0"},
		{"dlt", "show", "orders-failed.DLT", "1", "0", "-o", "json"},
		{"dlt", "list", "orders-failed.DLT", "-o", "json"},
		{"dlt", "show", "payments-failed-dlt", "1", "0", "-o", "yaml"},
	} {
		out := h.ok(t, args...)
		if strings.Contains(out, "ABCDEFGH") || strings.Contains(out, "SECRETKEY") {
			t.Errorf("%v shows a payment key in full:\n%s", args, out)
		}
		revealed := h.ok(t, append(args, "--reveal")...)
		if !strings.Contains(revealed, "ABCDEFGH") && !strings.Contains(revealed, "SECRETKEY") {
			t.Errorf("%v --reveal does not show the payment key", args)
		}
	}
}

func TestReplayCommand(t *testing.T) {
	h := newHarness(t)
	h.seed(t)

	// A dry run prints the plan and writes nothing, with or without --reason, even read-only.
	golden(t, "replay_dry_run_table", h.ok(t, "dlt", "replay", "orders-failed.DLT", "--dry-run", "--group", event.GroupProductService))
	golden(t, "replay_dry_run_json", h.ok(t, "dlt", "replay", "orders-failed.DLT", "--dry-run", "--where", `errorCode == "STOCK_ROW_MISSING"`, "-o", "json"))
	h.ok(t, "dlt", "replay", "orders-failed.DLT", "--dry-run", "--readonly")
	if n := len(replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed)); n != 0 {
		t.Fatalf("dry runs replayed %d records", n)
	}

	// Scripts must confirm with --yes; a terminal is asked, and "n" changes nothing.
	r := h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--reason", "INC-42")
	if !errors.Is(r.err, cmdutil.ErrConfirmationNeeded) || r.code != cmdutil.ExitError {
		t.Fatalf("replay without --yes and without a terminal: %v (exit %d)", r.err, r.code)
	}
	r = h.run(t, true, "n\n", "dlt", "replay", "orders-failed.DLT", "--reason", "INC-42")
	if r.err == nil || !strings.Contains(r.err.Error(), "nothing was changed") || !strings.Contains(r.out, "Plan: replay 12 of 12") {
		t.Fatalf("declined replay: %v\n%s", r.err, r.out)
	}
	if n := len(replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed)); n != 0 {
		t.Fatalf("a declined replay replayed %d records", n)
	}

	// Confirmed on a terminal: plan, prompt, summary; progress goes to stderr only.
	r = h.run(t, true, "y\n", "dlt", "replay", "orders-failed.DLT", "--reason", "INC-42: lock fixed", "--limit", "5")
	if r.err != nil {
		t.Fatalf("replay: %v\n%s%s", r.err, r.out, r.errOut)
	}
	golden(t, "replay_tty_confirmed", r.out)
	if !strings.Contains(r.errOut, "replaying orders-failed.DLT") {
		t.Errorf("no progress bar on the terminal's stderr: %q", r.errOut)
	}

	// Scripted, NDJSON: one line per record and a summary line; no progress.
	r = h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--reason", "INC-42: the rest", "--yes", "-o", "json")
	if r.err != nil || r.errOut != "" {
		t.Fatalf("scripted replay: %v, stderr %q", r.err, r.errOut)
	}
	lines := ndjson(t, r.out)
	if len(lines) != 13 || lines[12]["type"] != "summary" || lines[12]["replayed"] != 7.0 || lines[12]["skippedAlreadyReplayed"] != 5.0 {
		t.Fatalf("NDJSON %d lines, last %v", len(lines), lines[len(lines)-1])
	}
	var skipped, replayed int
	for _, l := range lines[:12] {
		switch l["action"] {
		case "skipped":
			skipped++
		case "replayed":
			replayed++
			if l["target"].(map[string]any)["topic"] != event.TopicOrdersFailed {
				t.Errorf("result %v", l)
			}
		}
	}
	if skipped != 5 || replayed != 7 {
		t.Fatalf("per-record lines: %d skipped, %d replayed", skipped, replayed)
	}

	// Run again with --yes: no plan, a run that skips everything; exit 0, nothing duplicated,
	// and the run is in the history.
	r = h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--reason", "again", "--yes")
	if r.err != nil || !strings.Contains(r.out, "Nothing to replay: 12 records already replayed, 0 refused.") {
		t.Fatalf("rerun: %v\n%s", r.err, r.out)
	}
	if got := replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed); len(got) != 12 {
		t.Fatalf("%d records on %s after replaying 12 dead letters", len(got), event.TopicOrdersFailed)
	}
	// Without --yes the plan comes first: it finds nothing to replay, and the command stops
	// there without starting a run.
	r = h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--reason", "again")
	if r.err != nil || !strings.Contains(r.out, "Nothing to replay; nothing was changed.") {
		t.Fatalf("planned rerun: %v\n%s", r.err, r.out)
	}

	golden(t, "history_table", h.ok(t, "dlt", "history", "orders-failed.DLT"))
	var runs []map[string]any
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "history", "-o", "json")), &runs); err != nil || len(runs) != 3 {
		t.Fatalf("history json: %d runs, %v", len(runs), err)
	}
	golden(t, "topics_after_replay", h.ok(t, "dlt", "topics"))
}

func TestReplayRulesAndExitCodes(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	noOrigin := replaytest.Saga(0, 99, "X", 1, replaytest.Base)
	noOrigin.Headers = nil
	replaytest.Produce(t, h.c, noOrigin)

	tests := []struct {
		name string
		args []string
		code int
		want string // in the error or the output
	}{
		{"no reason", []string{"replay", "orders-failed.DLT", "--yes"}, cmdutil.ExitUsage, "--reason is required"},
		{"bad --since", []string{"replay", "orders-failed.DLT", "--since", "yesterday", "--dry-run"}, cmdutil.ExitUsage, "neither a duration"},
		{"bad --where", []string{"list", "orders-failed.DLT", "--where", "errorCode ==="}, cmdutil.ExitUsage, "not a valid expression"},
		{"bad --offset", []string{"list", "orders-failed.DLT", "--offset", "9-3"}, cmdutil.ExitUsage, "end is before start"},
		{"bad --header", []string{"list", "orders-failed.DLT", "--header", "novalue"}, cmdutil.ExitUsage, "want key=value"},
		{"no such partition", []string{"list", "orders-failed.DLT", "--partition", "7"}, cmdutil.ExitUsage, "has no partition 7"},
		{"bad show offset", []string{"show", "orders-failed.DLT", "0", "x"}, cmdutil.ExitUsage, "not an offset"},
		{"show missing record", []string{"show", "orders-failed.DLT", "0", "999"}, cmdutil.ExitError, "no record at that offset"},
		{"unknown topic", []string{"stats", "nope.DLT"}, cmdutil.ExitError, "topic does not exist"},
		{"--readonly", []string{"replay", "orders-failed.DLT", "--reason", "r", "--yes", "--readonly"}, cmdutil.ExitError, "read-only"},
		{"read-only context", []string{"replay", "orders-failed.DLT", "--reason", "r", "--yes", "--context", "frozen"}, cmdutil.ExitError, "read-only"},
		{"--to without an allowlist", []string{"replay", "orders-failed.DLT", "--reason", "r", "--yes", "--to", "payments-failed"}, cmdutil.ExitError, "--to needs a topic allowlist"},
		{"--to off the allowlist", []string{"replay", "orders-failed.DLT", "--reason", "r", "--yes", "--to", "payments-paid", "--context", "strict"}, cmdutil.ExitError, "not on the context's allowlist"},
		{"refused record makes it partial", []string{"replay", "orders-failed.DLT", "--reason", "r", "--yes"}, cmdutil.ExitPartial, "no original topic"},
		{"all refused: nothing replayed, partial", []string{"replay", "orders-failed.DLT", "--reason", "r", "--yes", "--offset", "4", "--partition", "0"}, cmdutil.ExitPartial, "Nothing to replay"},
		{"allowlist + --to", []string{"replay", "payments-failed-dlt", "--reason", "r", "--yes", "--to", "payments-failed", "--context", "strict"}, cmdutil.ExitOK, "replayed                   4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.run(t, false, "", append([]string{"dlt"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d: %v\n%s", r.code, tt.code, r.err, r.out)
			}
			text := r.out + r.errOut
			if r.err != nil {
				text += r.err.Error()
			}
			if !strings.Contains(text, tt.want) {
				t.Fatalf("output does not say %q:\n%s", tt.want, text)
			}
		})
	}
	// The read-only refusals wrote nothing: the only replays are the ones the test allowed.
	got := replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed)
	if len(got) != 12 {
		t.Fatalf("%d records replayed to %s, want the 12 of the partial run", len(got), event.TopicOrdersFailed)
	}
}

// TestHostileRecordsNeverReachTheTerminalRaw runs every read command over dead letters full of
// escape sequences, invalid UTF-8, truncated headers, empty, null and 1 MiB values.
func TestHostileRecordsNeverReachTheTerminalRaw(t *testing.T) {
	h := newHarness(t)
	replaytest.Produce(t, h.c, replaytest.Hostile(0, replaytest.Base)...)
	var all []string
	for _, args := range [][]string{
		{"dlt", "topics"},
		{"dlt", "topics", "-o", "json"},
		{"dlt", "stats", "orders-failed.DLT"},
		{"dlt", "stats", "orders-failed.DLT", "-o", "yaml"},
		{"dlt", "list", "orders-failed.DLT"},
		{"dlt", "list", "orders-failed.DLT", "-o", "json"},
		{"dlt", "list", "orders-failed.DLT", "-o", "yaml"},
		{"dlt", "list", "orders-failed.DLT", "--where", `orderId contains "pwned"`},
		{"dlt", "replay", "orders-failed.DLT", "--dry-run"},
	} {
		r := h.run(t, true, "", args...)
		// The dry run refuses the record without an original topic: exit 3, as the run would.
		if r.err != nil && !(args[1] == "replay" && r.code == cmdutil.ExitPartial) {
			t.Fatalf("%v: %v", args, r.err)
		}
		assertTerminalSafe(t, strings.Join(args, " "), r.out)
		all = append(all, r.out)
	}
	for off := 0; off < 5; off++ {
		for _, o := range []string{"table", "json", "yaml"} {
			args := []string{"dlt", "show", "orders-failed.DLT", "0", string(rune('0' + off)), "-o", o}
			r := h.run(t, true, "", args...)
			if r.err != nil {
				t.Fatalf("%v: %v", args, r.err)
			}
			assertTerminalSafe(t, strings.Join(args, " "), r.out)
			all = append(all, r.out)
		}
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{`\x1b[31mred`, `\x1b]0;pwned\x07`, `\u202egnp.exe`, "[truncated: showing", "0xff00c3", "want 4 bytes, got 2"} {
		if !strings.Contains(joined, want) {
			t.Errorf("escaped form %q not shown anywhere", want)
		}
	}
	// A 1 MiB value is cut for display with a marker; -o json carries it whole.
	r := h.run(t, false, "", "dlt", "show", "orders-failed.DLT", "0", "4")
	if len(r.out) > 200<<10 || !strings.Contains(r.out, "[truncated: showing") {
		t.Fatalf("1 MiB value shown in %d bytes", len(r.out))
	}
	var rec struct {
		Value struct {
			Size int `json:"size"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "show", "orders-failed.DLT", "0", "4", "-o", "json")), &rec); err != nil || rec.Value.Size != 1<<20 {
		t.Fatalf("json show of the 1 MiB value: size %d, %v", rec.Value.Size, err)
	}
	// And a replay of the hostile records sends the bytes back unchanged (the target carries
	// 1 MiB values, so its max.message.bytes is raised as it would be in production).
	setMaxMessageBytes(t, h, event.TopicOrdersFailed, 2<<20)
	r = h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--reason", "hostile", "--yes", "-o", "json")
	if r.code != cmdutil.ExitPartial {
		t.Fatalf("replaying hostile records: exit %d (%v), want 3 for the one without an original topic\n%s", r.code, r.err, r.out)
	}
	assertTerminalSafe(t, "replay -o json", r.out)
	src := map[string]string{}
	for _, rec := range replaytest.Hostile(0, replaytest.Base) {
		src[string(rec.Key)] = string(rec.Value)
	}
	landed := replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed)
	if len(landed) != 4 {
		t.Fatalf("%d hostile records replayed, want the 4 with an original topic", len(landed))
	}
	for _, rec := range landed {
		if src[string(rec.Key)] != string(rec.Value) {
			t.Errorf("replayed value of key %q changed (%d bytes, want %d)", rec.Key, len(rec.Value), len(src[string(rec.Key)]))
		}
		if _, ok := headerOf(rec, dlt.HeaderReplayedFrom); !ok {
			t.Errorf("replayed record %q lacks %s", rec.Key, dlt.HeaderReplayedFrom)
		}
	}
}

func TestListStreamsWithBoundedOutputPerRecord(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	out := h.ok(t, "dlt", "list", "orders-failed.DLT", "-o", "json")
	lines := ndjson(t, out)
	if len(lines) != 12 {
		t.Fatalf("%d NDJSON lines, want 12", len(lines))
	}
	for i, l := range lines {
		if l["errorSource"] != "product-service" || l["originalTopic"] != event.TopicOrdersFailed {
			t.Fatalf("line %d: %v", i, l)
		}
		if v, ok := l["value"].(map[string]any); !ok || v["quantity"] == nil {
			t.Fatalf("line %d has no decoded value: %v", i, l)
		}
	}
	// Partition order, then offset order.
	var last [2]float64
	for _, l := range lines {
		cur := [2]float64{l["partition"].(float64), l["offset"].(float64)}
		if cur[0] < last[0] || (cur[0] == last[0] && cur[1] < last[1]) {
			t.Fatalf("not in partition/offset order: %v after %v", cur, last)
		}
		last = cur
	}
}

func setMaxMessageBytes(t *testing.T, h *harness, topic string, n int) {
	t.Helper()
	v := strconv.Itoa(n)
	adm := kadm.NewClient(replaytest.Client(t, h.c))
	rs, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &v}}, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// TestReplayWithYesOnATerminal: with --yes there is no plan; the progress bar on stderr counts
// the offsets read against those in range, and stdout gets only the summary.
func TestReplayWithYesOnATerminal(t *testing.T) {
	h := newHarness(t)
	h.seed(t)
	r := h.run(t, true, "", "dlt", "replay", "orders-failed.DLT", "--reason", "INC-42", "--yes")
	if r.err != nil {
		t.Fatalf("replay: %v\n%s%s", r.err, r.out, r.errOut)
	}
	if !strings.Contains(r.errOut, "] 12/12") {
		t.Errorf("stderr has no finished progress bar of 12 offsets:\n%q", r.errOut)
	}
	if strings.Contains(r.out, "Plan:") || !strings.Contains(r.out, "replayed                   12") {
		t.Errorf("stdout:\n%s", r.out)
	}
	if n := len(replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed)); n != 12 {
		t.Fatalf("replayed %d records, want 12", n)
	}
}

// brokenPipe is a stdout whose reader has gone away.
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, errors.New("write |1: broken pipe") }

// TestReplayResultsThatCannotBeWrittenFailTheCommand: results that cannot be written (a closed
// pipe) fail the command in every machine-readable format, per-record lines included.
func TestReplayResultsThatCannotBeWrittenFailTheCommand(t *testing.T) {
	for _, output := range []string{"json", "yaml"} {
		t.Run(output, func(t *testing.T) {
			h := newHarness(t)
			h.seed(t)
			ios, _, _, errOut := iostreams.Test()
			ios.Out = brokenPipe{}
			f := &cmdutil.Factory{IOStreams: ios, ConfigPath: h.cfg, Now: func() time.Time { return replaytest.Base.Add(30 * time.Minute) }}
			cmd := root.NewCmdRoot(f)
			cmd.SetArgs([]string{"dlt", "replay", "orders-failed.DLT", "--reason", "INC-7", "--yes", "-o", output})
			cmd.SetOut(ios.Out)
			cmd.SetErr(errOut)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err := cmd.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), "broken pipe") {
				t.Fatalf("-o %s to a closed stdout: %v", output, err)
			}
		})
	}
}
