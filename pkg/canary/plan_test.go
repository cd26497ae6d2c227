package canary

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/goldentest"
)

func snapshotOf(t *testing.T, env, svc string, mutate func(*gitops.Release)) gitops.Snapshot {
	t.Helper()
	p, err := gitops.ValuesPath(gitops.DefaultRoot, env, svc)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "..", p))
	if err != nil {
		t.Fatal(err)
	}
	r, err := gitops.ReadRelease(data)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		to := r
		mutate(&to)
		if data, err = gitops.EditRelease(data, to); err != nil {
			t.Fatal(err)
		}
		r = to
	}
	return gitops.Snapshot{Env: env, Service: svc, Path: p, Commit: "0123456789abcdef0123456789abcdef01234567", Data: data, Release: r}
}

func TestPlanDiffGolden(t *testing.T) {
	t.Parallel()
	running := func(w int) func(*gitops.Release) {
		return func(r *gitops.Release) { r.Canary = gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: w} }
	}
	tests := []struct {
		name    string
		mutate  func(*gitops.Release)
		op      Op
		summary string
	}{
		{"start", nil, Op{Action: ActionStart, Tag: "1.1.0"}, "order/prod: start canary 1.1.0 at 10% (phase 0: deploy v2, VirtualService weight 10%)"},
		{"step", running(10), Op{Action: ActionStep}, "order/prod: canary 1.1.0 10% -> 30% (phase 1: check the main API responses)"},
		{"set-forced", running(30), Op{Action: ActionSet, Weight: 40, Force: true}, "order/prod: canary 1.1.0 30% -> 40% (phase 2: real user traffic) [forced]"},
		{"promote", running(100), Op{Action: ActionPromote}, "order/prod: promote 1.1.0 to stable (was 1.0.0); canary off"},
		{"rollback", running(50), Op{Action: ActionRollback}, "order/prod: roll back canary 1.1.0: 50% -> 0%, all traffic to v1 (1.0.0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snap := snapshotOf(t, "prod", "order", tt.mutate)
			before := bytes.Clone(snap.Data)
			p, err := NewPlan(snap, tt.op, "error rate flat for 15m")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(snap.Data, before) {
				t.Fatal("planning modified the snapshot")
			}
			if got := p.Summary(); got != tt.summary {
				t.Errorf("summary %q, want %q", got, tt.summary)
			}
			c := p.Change()
			if c.Action != tt.op.Action.Trailer() || c.From != snap.Release || c.To != p.To || c.BaseCommit != snap.Commit ||
				c.Reason != "error rate flat for 15m" || !strings.HasPrefix(c.Subject, "canary order/prod: ") {
				t.Errorf("change %+v", c)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("change does not validate: %v", err)
			}
			golden(t, tt.name, []byte(p.Diff()))
		})
	}
}

func TestNewPlanRefuses(t *testing.T) {
	t.Parallel()
	snap := snapshotOf(t, "dev", "payment", nil)
	if _, err := NewPlan(snap, Op{Action: ActionStart, Tag: "2.0.0"}, ""); !errors.Is(err, gitops.ErrInvalidChange) || !strings.Contains(err.Error(), "reason is required") {
		t.Errorf("missing reason: %v", err)
	}
	if _, err := NewPlan(snap, Op{Action: ActionStep}, "r"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "payment/dev") {
		t.Errorf("step without canary: %v", err)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Equal(t, name, got)
}
