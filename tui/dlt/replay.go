package dlt

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/modal"
	"github.com/come2us/opsctl/tui/view"
)

// replayFlow is `r` (or `R`) from key press to result: the request built from the selection, the
// plan computed in the background, the dialog, the run and its progress, the outcome.
type replayFlow struct {
	dry    bool
	req    replay.Request
	what   string
	plan   *replay.Plan
	modal  *modal.Model
	events chan tea.Msg
}

type planMsg struct {
	flow *replayFlow
	plan *replay.Plan
	err  error
}

type replayProgressMsg struct {
	flow *replayFlow
	p    replay.Progress
}

type replayDoneMsg struct {
	flow *replayFlow
	sum  *replay.Summary
	err  error
}

// request turns the selection into a replay request: everything matching the filter (bounded
// by the offsets the index covered), the selected records, or the record under the cursor.
func (r *Records) request() (replay.Request, string, error) {
	req := replay.Request{Topic: r.topic}
	var where string
	var what string
	switch {
	case r.all:
		where = r.filter().Where()
		if len(r.excluded) > 0 {
			ex := coordsWhere(r.excluded)
			if where == "" {
				where = "!(" + ex + ")"
			} else {
				where = "(" + where + ") && !(" + ex + ")"
			}
		}
		req.Bound = r.idx.ends
		what = fmt.Sprintf("%s dead letters (everything matching", count(int64(r.selectedCount())))
		if d := r.filter().Describe(); d != "" {
			what += " " + d
		}
		what += ")"
	case len(r.sel) > 0:
		where = coordsWhere(r.sel)
		req.Selection.Partitions, req.Selection.Offsets = span(r.sel)
		what = fmt.Sprintf("%s selected dead letters", count(int64(len(r.sel))))
		if len(r.sel) == 1 {
			what = "1 selected dead letter"
		}
	default:
		c, ok := r.cursorCoord()
		if !ok {
			return req, "", errors.New("nothing to replay: select records with space or a")
		}
		one := map[replay.Coord]bool{c: true}
		where = coordsWhere(one)
		req.Selection.Partitions, req.Selection.Offsets = span(one)
		what = "the dead letter at " + coordKey(c)
	}
	if where != "" {
		w, err := replay.CompileWhere(where)
		if err != nil {
			return req, "", err
		}
		req.Selection.Where = w
	}
	return req, what, nil
}

// coordsWhere is the --where expression selecting exactly the coordinates in set.
func coordsWhere(set map[replay.Coord]bool) string {
	byPart := map[int32][]int64{}
	for c := range set {
		byPart[c.Partition] = append(byPart[c.Partition], c.Offset)
	}
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var ors []string
	for _, p := range parts {
		offs := byPart[p]
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		ss := make([]string, len(offs))
		for i, o := range offs {
			ss[i] = strconv.FormatInt(o, 10)
		}
		ors = append(ors, fmt.Sprintf("(meta.partition == %d && meta.offset in [%s])", p, strings.Join(ss, ", ")))
	}
	return strings.Join(ors, " || ")
}

// span narrows a scan to the partitions and the offset range the coordinates lie in.
func span(set map[replay.Coord]bool) ([]int32, replay.OffsetRange) {
	seen := map[int32]bool{}
	var parts []int32
	r := replay.OffsetRange{Set: true, From: -1}
	for c := range set {
		if !seen[c.Partition] {
			seen[c.Partition] = true
			parts = append(parts, c.Partition)
		}
		if r.From < 0 || c.Offset < r.From {
			r.From = c.Offset
		}
		r.To = max(r.To, c.Offset)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	return parts, r
}

func (r *Records) beginReplay(dry bool) tea.Cmd {
	req, what, err := r.request()
	if err != nil {
		return view.Error(err)
	}
	fl := &replayFlow{dry: dry, req: req, what: what}
	r.flow = fl
	ctx, be := r.ctx, r.o.Backend
	verb := "planning the replay of "
	if dry {
		verb = "dry run: planning the replay of "
	}
	return tea.Batch(view.Status(verb+what+"…"), func() tea.Msg {
		p, err := be.Plan(ctx, req)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return planMsg{flow: fl, plan: p, err: err}
	})
}

// planLines describe a plan: counts, where the records go, what is refused and why.
func planLines(topic, what string, p *replay.Plan) []string {
	lines := []string{
		fmt.Sprintf("from %s: %s", topic, what),
		fmt.Sprintf("selected %s · to replay %s · already replayed %s · refused %s",
			count(p.Selected), count(p.Replay), count(p.Skipped), count(p.Refused)),
	}
	for _, t := range p.Targets {
		var spans []string
		for _, s := range t.Partitions {
			r := strconv.FormatInt(s.First, 10)
			if s.Last != s.First {
				r += "-" + strconv.FormatInt(s.Last, 10)
			}
			spans = append(spans, fmt.Sprintf("p%d %s (%d)", s.Partition, r, s.Count))
		}
		lines = append(lines, fmt.Sprintf("→ %s  %s  from %s", t.Topic, count(t.Count), strings.Join(spans, ", ")))
	}
	for _, rf := range p.Refusals {
		var samples []string
		for _, c := range rf.Samples {
			samples = append(samples, coordKey(c))
		}
		lines = append(lines, fmt.Sprintf("✗ refused %s (%s): %s  e.g. %s", count(rf.Count), rf.Code, rf.Reason, strings.Join(samples, ", ")))
	}
	if p.WhereErrors > 0 {
		lines = append(lines, fmt.Sprintf("! %d records could not be matched: %s", p.WhereErrors, p.FirstWhereError))
	}
	return lines
}

var groupName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

func validGroup(s string) error {
	if s == "" || groupName.MatchString(s) {
		return nil
	}
	return fmt.Errorf("%q is not a consumer group name (letters, digits, . _ -)", s)
}

func validReason(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("a reason is required: it is recorded in the replay ledger")
	}
	return nil
}

func (r *Records) updateFlow(msg tea.Msg) (tea.Cmd, bool) {
	fl := r.flow
	switch msg := msg.(type) {
	case planMsg:
		if msg.flow != fl {
			return nil, false
		}
		if msg.err != nil {
			r.flow = nil
			return view.Error(fmt.Errorf("plan the replay: %w; nothing was changed", msg.err)), true
		}
		fl.plan = msg.plan
		lines := planLines(r.topic, fl.what, msg.plan)
		if fl.dry {
			fl.modal = modal.New("Dry run: replay "+termsafe.String(fl.what), lines...)
			fl.modal.Finish(false, "dry run: nothing was replayed or written to the ledger")
			return view.Status(""), true
		}
		if msg.plan.Replay == 0 {
			fl.modal = modal.New("Nothing to replay", lines...)
			fl.modal.Finish(true, "no selected record can be replayed; nothing was changed")
			return view.Status(""), true
		}
		lines = append(lines, "exactly once: each batch and its ledger entries commit together")
		fl.modal = modal.New(fmt.Sprintf("Replay %s?", plural(msg.plan.Replay, "dead letter")), lines...).
			Action("replay").
			Field("Target group", "optional: only this consumer group processes them", "", validGroup).
			Field("Reason", "why, recorded in the ledger", "", validReason)
		return view.Status(""), true
	case replayProgressMsg:
		if msg.flow != fl {
			return nil, false
		}
		p := msg.p
		done := int64(p.Replayed + p.Skipped + p.Refused + p.Failed)
		frac := -1.0
		if fl.plan.Selected > 0 {
			frac = float64(done) / float64(fl.plan.Selected)
		}
		fl.modal.Progress(frac, fmt.Sprintf("replayed %d · skipped %d · refused %d · failed %d  (scanned %s)",
			p.Replayed, p.Skipped, p.Refused, p.Failed, count(p.Scanned)))
		return view.Listen(r.ctx, fl.events), true
	case replayDoneMsg:
		if msg.flow != fl {
			return nil, false
		}
		r.finishReplay(msg)
		return r.loadMarks(), true
	case tea.KeyMsg:
		if fl.modal == nil {
			return nil, true // planning: keys wait
		}
		out, cmd := fl.modal.Update(msg)
		switch out {
		case modal.Cancelled:
			r.flow = nil
			return view.Status("replay cancelled; nothing was changed"), true
		case modal.Closed:
			r.flow = nil
			return nil, true
		case modal.Confirmed:
			if fl.dry {
				r.flow = nil
				return nil, true
			}
			return r.runReplay(fl.modal.Value(0), fl.modal.Value(1)), true
		}
		return cmd, true
	}
	return nil, false
}

func (r *Records) runReplay(group, reason string) tea.Cmd {
	fl := r.flow
	req := fl.req
	req.Group, req.Reason = group, reason
	// Replay exactly what the plan saw: records that arrive later wait for the next look.
	req.Bound = fl.plan.EndOffsets
	fl.modal.Start("replaying…")
	fl.modal.Progress(0, "")
	fl.events = make(chan tea.Msg, 16)
	ctx, be, ch := r.ctx, r.o.Backend, fl.events
	req.OnProgress = func(p replay.Progress) {
		select {
		case ch <- replayProgressMsg{flow: fl, p: p}:
		default: // the screen is behind; the next report carries the newer figures
		}
	}
	go func() {
		sum, err := be.Replay(ctx, req)
		select {
		case ch <- replayDoneMsg{flow: fl, sum: sum, err: err}:
		case <-ctx.Done():
		}
	}()
	return view.Listen(ctx, ch)
}

func (r *Records) finishReplay(m replayDoneMsg) {
	fl := r.flow
	s := m.sum
	if s == nil {
		fl.modal.Finish(true, "replay failed: "+errText(m.err))
		return
	}
	fl.modal.Progress(1, "")
	lines := []string{
		fmt.Sprintf("replayed %d · already replayed %d · refused %d · failed %d", s.Replayed, s.Skipped, s.Refused, s.Failed),
		fmt.Sprintf("run %s %s", s.RunID, s.Status),
	}
	if m.err != nil {
		lines = append(lines, errText(m.err))
	}
	failed := m.err != nil || s.Partial()
	fl.modal.Finish(failed, lines...)
	if !failed {
		r.all, r.sel, r.excluded = false, map[replay.Coord]bool{}, map[replay.Coord]bool{}
	}
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// plural renders "1 dead letter", "3 dead letters".
func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return count(n) + " " + what + "s"
}
