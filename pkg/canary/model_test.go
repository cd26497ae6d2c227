package canary

import (
	"errors"
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/gitops"
)

func rel(stable string, enabled bool, tag string, weight int) gitops.Release {
	return gitops.Release{StableRepository: "repo", StableTag: stable, Canary: gitops.Canary{Enabled: enabled, Tag: tag, Weight: weight}}
}

func TestOpNext(t *testing.T) {
	t.Parallel()
	off := rel("1.0.0", false, "", 0)
	at := func(w int) gitops.Release { return rel("1.0.0", true, "1.1.0", w) }
	tests := []struct {
		name    string
		cur     gitops.Release
		op      Op
		want    gitops.Release
		wantErr string
		is      error
	}{
		{name: "start", cur: off, op: Op{Action: ActionStart, Tag: "1.1.0"}, want: at(10)},
		{name: "start after a rollback keeps nothing of the old canary", cur: rel("1.0.0", false, "0.9.9", 0), op: Op{Action: ActionStart, Tag: "1.1.0"}, want: at(10)},
		{name: "start twice", cur: at(30), op: Op{Action: ActionStart, Tag: "1.2.0"}, wantErr: "already running (1.1.0 at 30%)", is: ErrInvalid},
		{name: "start without tag", cur: off, op: Op{Action: ActionStart}, wantErr: "needs the canary image tag", is: ErrInvalid},
		{name: "start with a bad tag", cur: off, op: Op{Action: ActionStart, Tag: "1.1.0 ; rm"}, wantErr: "not a valid image tag", is: ErrInvalid},
		{name: "start with the stable tag", cur: off, op: Op{Action: ActionStart, Tag: "1.0.0"}, wantErr: "already the stable tag", is: ErrInvalid},

		{name: "step 10 to 30", cur: at(10), op: Op{Action: ActionStep}, want: at(30)},
		{name: "step 30 to 50", cur: at(30), op: Op{Action: ActionStep}, want: at(50)},
		{name: "step 50 to 100", cur: at(50), op: Op{Action: ActionStep}, want: at(100)},
		{name: "step from a forced 20 goes to 30", cur: at(20), op: Op{Action: ActionStep}, want: at(30)},
		{name: "step from 0 goes to 10", cur: at(0), op: Op{Action: ActionStep}, want: at(10)},
		{name: "step at 100", cur: at(100), op: Op{Action: ActionStep}, wantErr: "promote it", is: ErrInvalid},
		{name: "step without canary", cur: off, op: Op{Action: ActionStep}, wantErr: "no canary is running", is: ErrInvalid},

		{name: "set next rung", cur: at(10), op: Op{Action: ActionSet, Weight: 30}, want: at(30)},
		{name: "set back down", cur: at(50), op: Op{Action: ActionSet, Weight: 10}, want: at(10)},
		{name: "set off the ladder", cur: at(10), op: Op{Action: ActionSet, Weight: 20}, wantErr: "not on the ladder 10 -> 30 -> 50 -> 100; use --force", is: ErrInvalid},
		{name: "set off the ladder forced", cur: at(10), op: Op{Action: ActionSet, Weight: 20, Force: true}, want: at(20)},
		{name: "set skipping phases", cur: at(10), op: Op{Action: ActionSet, Weight: 100}, wantErr: "skips the 30% phase", is: ErrInvalid},
		{name: "set skipping phases forced", cur: at(10), op: Op{Action: ActionSet, Weight: 100, Force: true}, want: at(100)},
		{name: "set above 100 even forced", cur: at(10), op: Op{Action: ActionSet, Weight: 101, Force: true}, wantErr: "outside 0-100", is: ErrInvalid},
		{name: "set negative", cur: at(10), op: Op{Action: ActionSet, Weight: -1, Force: true}, wantErr: "outside 0-100", is: ErrInvalid},
		{name: "set same", cur: at(30), op: Op{Action: ActionSet, Weight: 30}, wantErr: "already at 30%", is: gitops.ErrNoChange},
		{name: "set without canary", cur: off, op: Op{Action: ActionSet, Weight: 10}, wantErr: "no canary is running", is: ErrInvalid},

		{name: "promote at 100", cur: at(100), op: Op{Action: ActionPromote}, want: rel("1.1.0", false, "", 0)},
		{name: "promote early", cur: at(50), op: Op{Action: ActionPromote}, wantErr: "step it to 100%", is: ErrInvalid},
		{name: "promote early forced", cur: at(50), op: Op{Action: ActionPromote, Force: true}, want: rel("1.1.0", false, "", 0)},
		{name: "promote without canary", cur: off, op: Op{Action: ActionPromote, Force: true}, wantErr: "no canary is running", is: ErrInvalid},
		{name: "promote without tag", cur: rel("1.0.0", true, "", 100), op: Op{Action: ActionPromote}, wantErr: "without an image tag", is: ErrInvalid},

		{name: "rollback", cur: at(50), op: Op{Action: ActionRollback}, want: rel("1.0.0", false, "1.1.0", 0)},
		{name: "rollback an inconsistent state", cur: rel("1.0.0", false, "1.1.0", 40), op: Op{Action: ActionRollback}, want: rel("1.0.0", false, "1.1.0", 0)},
		{name: "rollback an enabled canary without tag", cur: rel("1.0.0", true, "", 10), op: Op{Action: ActionRollback}, want: rel("1.0.0", false, "", 0)},
		{name: "rollback nothing", cur: off, op: Op{Action: ActionRollback}, wantErr: "no canary is running", is: gitops.ErrNoChange},

		{name: "unknown action", cur: off, op: Op{Action: "pause"}, wantErr: "unknown action", is: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.op.Next(tt.cur)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if !errors.Is(err, tt.is) {
					t.Errorf("err = %v, want errors.Is %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPhaseOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c     gitops.Canary
		phase int
		ok    bool
	}{
		{gitops.Canary{}, 0, false},
		{gitops.Canary{Weight: 30}, 0, false},
		{gitops.Canary{Enabled: true, Tag: "x", Weight: 0}, 0, true},
		{gitops.Canary{Enabled: true, Tag: "x", Weight: 10}, 0, true},
		{gitops.Canary{Enabled: true, Tag: "x", Weight: 20}, 1, true},
		{gitops.Canary{Enabled: true, Tag: "x", Weight: 30}, 1, true},
		{gitops.Canary{Enabled: true, Tag: "x", Weight: 50}, 2, true},
		{gitops.Canary{Enabled: true, Tag: "x", Weight: 51}, 3, true},
		{gitops.Canary{Enabled: true, Tag: "x", Weight: 100}, 3, true},
	}
	for _, tt := range tests {
		p, ok := PhaseOf(tt.c)
		if ok != tt.ok || (ok && p.Number != tt.phase) {
			t.Errorf("PhaseOf(%+v) = %v, %v; want phase %d, %v", tt.c, p, ok, tt.phase, tt.ok)
		}
	}
	// The phase table is the seed's: each phase starts where the previous one ended, on the ladder.
	ph := Phases()
	for i, p := range ph {
		if p.Number != i || p.To != Ladder()[i] || (i > 0 && p.From != ph[i-1].To) || (i == 0 && p.From != 0) {
			t.Errorf("phase %d = %+v", i, p)
		}
	}
}
