package dlt_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/redrive"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// The standard fixtures under the default policy, 30 minutes after they were stamped: the 8
// DB_LOCK_TIMEOUT SAGA dead letters and the 4 Spring lock failures are due; STOCK_ROW_MISSING
// (no rule) and the Connect conversion errors (held) wait for an operator.
const dueUnderDefault = 12

func TestRedriveCommand(t *testing.T) {
	h := newHarness(t)
	h.seed(t)

	// A dry run plans and writes nothing, even read-only.
	golden(t, "redrive_dry_run_table", h.ok(t, "dlt", "redrive", "--policy", "default", "--once", "--dry-run", "--readonly"))
	if n := len(replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed)); n != 0 {
		t.Fatalf("a dry run replayed %d records", n)
	}
	// Read-only refuses a real pass.
	if r := h.run(t, false, "", "dlt", "redrive", "--policy", "default", "--once", "--readonly"); r.err == nil || r.code != cmdutil.ExitError {
		t.Fatalf("read-only pass: %v", r.err)
	}

	// One pass: a run per rule and DLT with records due, the rule as reason.
	r := h.run(t, false, "", "dlt", "redrive", "--policy", "default", "--once")
	if r.err != nil {
		t.Fatalf("pass: %v\n%s%s", r.err, r.out, r.errOut)
	}
	golden(t, "redrive_pass_table", r.out)
	var rep redrive.Report
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "redrive", "--policy", "default", "--once", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Redriven() != 0 || len(rep.Runs) == 0 {
		t.Errorf("second pass: %+v, want nothing redriven", rep)
	}
	got := map[string]int{}
	for _, topic := range []string{event.TopicOrdersFailed, event.TopicPaymentsFailed} {
		got[topic] = len(replaytest.ReadCommitted(t, h.c, topic))
	}
	if got[event.TopicOrdersFailed] != 8 || got[event.TopicPaymentsFailed] != 4 {
		t.Errorf("replayed %v, want 8 to orders-failed and 4 to payments-failed", got)
	}

	var runs []struct {
		Actor, Reason, Status, Selection string
		Counts                           struct{ Replayed int }
	}
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "history", "-o", "json")), &runs); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, run := range runs {
		if _, ok := redrive.IsRedrive(run.Reason); !ok || run.Actor != "oncall@laptop" || run.Status != "completed" || !strings.Contains(run.Selection, "meta.errorCode in") {
			t.Errorf("history: %+v", run)
		}
		total += run.Counts.Replayed
	}
	if total != dueUnderDefault {
		t.Errorf("history counts %d redriven, want %d", total, dueUnderDefault)
	}
}

func TestRedrivePolicySources(t *testing.T) {
	h := newHarness(t)
	h.seed(t)

	// No policy anywhere: a usage error saying where one can come from.
	r := h.run(t, false, "", "dlt", "redrive", "--once")
	if r.code != cmdutil.ExitUsage || !strings.Contains(r.err.Error(), "--policy FILE") || !strings.Contains(r.err.Error(), "nothing was changed") {
		t.Fatalf("no policy: exit %d, %v", r.code, r.err)
	}

	// A bad file: refused with every line and reason, nothing written.
	bad := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - name: locks\n    topics: [\"*.DLT\"]\n    errorCodes: [DB_LOCK_TIMEOUT]\n    backoff: [5m, 1m]\n    rate: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = h.run(t, false, "", "dlt", "redrive", "--policy", bad, "--once")
	if r.code != cmdutil.ExitUsage || !strings.Contains(r.err.Error(), "line 5: backoff step 2 (1m0s) is shorter") || !strings.Contains(r.err.Error(), "line 6: rate 0") {
		t.Fatalf("bad policy: exit %d, %v", r.code, r.err)
	}

	// The context's own redrive section; its problems would name the config file's lines.
	cfg, err := os.ReadFile(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	withPolicy := string(cfg) + "  locks-only:\n    kafka: {brokers: [\"" + h.c.ListenAddrs()[0] + "\"]}\n" +
		"    redrive:\n      rules:\n        - name: locks\n          topics: [\"orders-failed.DLT\"]\n          errorCodes: [DB_LOCK_TIMEOUT]\n"
	if err := os.WriteFile(h.cfg, []byte(withPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	var rep redrive.Report
	if err := json.Unmarshal([]byte(h.ok(t, "--context", "locks-only", "dlt", "redrive", "--once", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Redriven() != 8 {
		t.Errorf("the context's policy redrove %d, want the 8 lock timeouts of orders-failed.DLT", rep.Redriven())
	}
	if out := h.ok(t, "dlt", "redrive", "--print-default-policy"); out != string(redrive.DefaultText()) {
		t.Errorf("--print-default-policy printed:\n%s", out)
	}
}
