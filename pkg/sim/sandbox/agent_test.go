package sandbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/redrive"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/sim/sandbox"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAgentRedrivesTheFaultWindows runs the sandbox with its agent: the lock timeouts the
// product-restore fault window dead-letters are redriven by the built-in policy, as runs of
// opsctl-agent@sandbox, and the DLT screens' data (the ledger's replayed count, the history)
// shows them. The agent's clock runs two minutes ahead, past the policy's one-minute minimum
// age, instead of the test waiting for it.
func TestAgentRedrivesTheFaultWindows(t *testing.T) {
	gitopstest.Isolate(t)
	sb, err := sandbox.Start(context.Background(), sandbox.Config{Rate: 8, DeclineRatio: 0.5, FaultWindows: true, FaultLength: 3 * time.Second,
		ScrapeInterval: 500 * time.Millisecond, Agent: true, AgentClock: func() time.Time { return time.Now().Add(2 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := sb.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	newClient := func(extra ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(sb.Brokers...)}, extra...)...)
	}
	e, err := replay.New(replay.Config{NewClient: newClient, Actor: "test@sandbox", Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const dlt = "orders-failed.DLT"
	var runs []replay.Run
	for {
		all, err := e.History(ctx, dlt)
		if err != nil {
			t.Fatal(err)
		}
		runs = runs[:0]
		replayed := 0
		for _, r := range all {
			if rule, ok := redrive.IsRedrive(r.Reason); ok && rule == "transient-db" && strings.HasPrefix(r.Actor, "opsctl-agent@") {
				runs = append(runs, r)
				replayed += r.Counts.Replayed
			}
		}
		if replayed > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the agent redrove nothing from %s: runs %+v; agent %+v", dlt, all, sb.Agent.Status())
		case <-time.After(200 * time.Millisecond):
		}
	}
	topics, err := e.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range topics {
		if ti.Topic == dlt && ti.Replayed == 0 {
			t.Errorf("the DLT screen's REPLAYED count of %s is 0 after the agent's runs %+v", dlt, runs)
		}
	}
	if st := sb.Agent.Status(); st.Role != "single" || !strings.HasPrefix(st.Identity, "opsctl-agent@sandbox/") {
		t.Errorf("agent status %+v", st)
	}
}
