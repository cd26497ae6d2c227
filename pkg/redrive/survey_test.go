package redrive

import (
	"context"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

func TestSurvey(t *testing.T) {
	t.Parallel()
	c := replaytest.NewCluster(t)
	t0 := base()
	clk := newClock(t0)
	replaytest.Produce(t, c,
		replaytest.Saga(0, 1, "DB_LOCK_TIMEOUT", 1, t0.Add(-3*time.Hour)), // redriven, then fails again
		replaytest.Saga(1, 2, "DB_LOCK_TIMEOUT", 1, t0.Add(-2*time.Hour)), // redriven
		replaytest.Saga(2, 3, "DB_TIMEOUT", 1, t0.Add(-10*time.Second)),   // waiting for minAge
		replaytest.Saga(0, 4, "STOCK_SHORT", 1, t0.Add(-90*time.Minute)),  // operator
		replaytest.Saga(1, 5, "NEW_CODE", 1, t0.Add(-30*time.Minute)),     // operator
	)
	e := newEngine(t, c, clk)
	p := Default()
	if rep := pass(t, e, p, clk); rep.Redriven() != 2 {
		t.Fatalf("redrove %d, want 2", rep.Redriven())
	}
	// One of them fails again with a business error: it came back, and waits for an operator.
	if n := failAgain(t, c, 1, "ORDER_ALREADY_FAILED", t0.Add(time.Second)); n != 2 {
		t.Fatalf("%d replayed records", n)
	}
	clk.Set(t0.Add(2 * time.Second))
	s, err := TakeSurvey(context.Background(), e, p, clk.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var st *DLTState
	for i := range s.DLTs {
		if s.DLTs[i].Topic == ordersDLT {
			st = &s.DLTs[i]
		}
	}
	if st == nil {
		t.Fatalf("no %s in %+v", ordersDLT, s.DLTs)
	}
	// failAgain made two new dead letters (both replays failed again).
	want := DLTState{Topic: ordersDLT, Records: 7, LastHour: 4, Oldest: t0.Add(-3 * time.Hour), Replayed: 2,
		Operator: 4, OperatorOldest: t0.Add(-90 * time.Minute), Waiting: 1, Due: 0, Redriven: 2, CameBack: 2}
	if !st.Oldest.Equal(want.Oldest) || !st.OperatorOldest.Equal(want.OperatorOldest) {
		t.Errorf("oldest %s / operator oldest %s, want %s / %s", st.Oldest, st.OperatorOldest, want.Oldest, want.OperatorOldest)
	}
	st.Oldest, st.OperatorOldest, want.Oldest, want.OperatorOldest = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if *st != want {
		t.Errorf("survey of %s:\n got %+v\nwant %+v", ordersDLT, *st, want)
	}
	// Outside the window, redrive runs no longer count.
	s, err = TakeSurvey(context.Background(), e, p, t0.Add(48*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range s.DLTs {
		if d.Redriven != 0 || d.CameBack != 0 {
			t.Errorf("%s counts redrives outside the window: %+v", d.Topic, d)
		}
	}
}
