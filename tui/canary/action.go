package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/modal"
	"github.com/come2us/opsctl/tui/view"
)

// action is one n/s/w/p/b from key press to result: for n an image tag prompt, for w a weight
// prompt, then a plan computed in the background, then the confirmation naming the commit, then
// the push and the follow.
type action struct {
	env, svc string
	op       canary.Op
	modal    *modal.Model
	asking   bool // the image tag prompt of n, the weight prompt of w
	plan     *canary.Plan
	where    string
	events   chan tea.Msg
	commit   string
	last     string
}

type planMsg struct {
	act   *action
	plan  *canary.Plan
	where string
	err   error
}

type progressMsg struct {
	act *action
	p   Progress
}

type doneMsg struct {
	act *action
	out *canary.Outcome
	err error
}

// begin starts an action on row r.
func (b *Board) begin(r Row, op canary.Op) tea.Cmd {
	if r.Err != nil {
		return view.Error(fmt.Errorf("%s/%s cannot be read: %w", r.Service, r.Env, r.Err))
	}
	if op.Action == canary.ActionStart {
		if c := r.Status.Release.Canary; c.Enabled {
			return view.Error(fmt.Errorf("a canary of %s/%s is already running (%s at %d%%): promote or roll it back first; nothing was changed",
				r.Service, r.Env, termsafe.String(c.Tag), c.Weight))
		}
	}
	a := &action{env: r.Env, svc: r.Service, op: op}
	b.act = a
	if op.Action == canary.ActionStart {
		a.asking = true
		a.modal = modal.New(fmt.Sprintf("Start a canary of %s/%s", r.Service, r.Env),
			fmt.Sprintf("all traffic on %s now; v2 gets the first step of the ladder (10%%), then 30 → 50 → 100", termsafe.Dash(termsafe.String(r.Status.Release.StableTag)))).
			Action("plan").
			Field("Image tag", "the canary's image tag, e.g. 1.2.0", "", func(s string) error {
				if !gitops.ValidTag(strings.TrimSpace(s)) {
					return fmt.Errorf("%q is not a valid image tag", s)
				}
				return nil
			})
		return nil
	}
	if op.Action == canary.ActionSet {
		cur := r.Status.Release.Canary.Weight
		a.asking = true
		a.modal = modal.New(fmt.Sprintf("Set the canary weight of %s/%s", r.Service, r.Env),
			fmt.Sprintf("now %d%% on v2; the ladder is 10 → 30 → 50 → 100", cur)).
			Action("plan").
			Field("Weight %", "e.g. 30", "", func(s string) error { _, err := atoi(s); return err })
		return nil
	}
	return b.plan(a)
}

func (b *Board) plan(a *action) tea.Cmd {
	ctx, be := b.ctx, b.o.Backend
	return tea.Batch(view.Status(fmt.Sprintf("planning canary %s of %s/%s…", a.op.Action, a.svc, a.env)), func() tea.Msg {
		p, where, err := be.Plan(ctx, a.env, a.svc, a.op)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return planMsg{act: a, plan: p, where: where, err: err}
	})
}

// updateAction handles the messages and keys of the running action; handled is false for
// everything else (board loads keep arriving while a dialog is open).
func (b *Board) updateAction(msg tea.Msg) (tea.Cmd, bool) {
	a := b.act
	switch msg := msg.(type) {
	case planMsg:
		if msg.act != a {
			return nil, false
		}
		if msg.err != nil {
			b.act = nil
			err := msg.err
			if errors.Is(err, canary.ErrInvalid) || errors.Is(err, gitops.ErrNoChange) {
				err = fmt.Errorf("%w; nothing was changed", err)
			}
			return view.Error(err), true
		}
		a.plan, a.where = msg.plan, msg.where
		a.modal = confirmModal(msg.plan, msg.where, b.o.Backend)
		return view.Status(""), true
	case progressMsg:
		if msg.act != a {
			return nil, false
		}
		if msg.p.Commit != "" {
			a.commit = msg.p.Commit
		}
		a.last = msg.p.Line
		a.modal.Progress(msg.p.Frac, msg.p.Line)
		a.modal.Log(msg.p.Line)
		return view.Listen(b.ctx, a.events), true
	case doneMsg:
		if msg.act != a {
			return nil, false
		}
		b.finish(a, msg)
		return b.load(), true
	case tea.KeyMsg:
		if a.modal == nil {
			return nil, true // planning: keys wait
		}
		out, cmd := a.modal.Update(msg)
		switch out {
		case modal.Cancelled:
			b.act = nil
			return view.Status("cancelled; nothing was changed"), true
		case modal.Closed:
			b.act = nil
			return nil, true
		case modal.Confirmed:
			if a.asking {
				if a.op.Action == canary.ActionStart {
					a.op.Tag = strings.TrimSpace(a.modal.Value(0))
				} else {
					w, _ := atoi(a.modal.Value(0))
					a.op.Weight = w
				}
				a.asking = false
				a.modal = nil
				return b.plan(a), true
			}
			return b.execute(a, a.modal.Value(0)), true
		}
		return cmd, true
	}
	return nil, false
}

// confirmModal names everything the change will do: the summary, the commit subject and
// trailers, where it is pushed and the diff, and asks for the reason.
func confirmModal(p *canary.Plan, where string, be Backend) *modal.Model {
	title := map[canary.Action]string{
		canary.ActionStep: "Step", canary.ActionSet: "Set the weight of", canary.ActionPromote: "Promote",
		canary.ActionRollback: "Roll back", canary.ActionStart: "Start a canary of",
	}[p.Op.Action]
	lines := []string{
		p.Summary(),
		"commit   " + p.Subject(),
		fmt.Sprintf("trailers %s: %s · %s: %s", gitops.TrailerAction, p.Op.Action.Trailer(), gitops.TrailerService, p.Service),
		fmt.Sprintf("         %s: %s · %s: (the reason below)", gitops.TrailerEnv, p.Env, gitops.TrailerReason),
		fmt.Sprintf("         %s: %s", gitops.TrailerFrom, p.From),
		fmt.Sprintf("         %s: %s", gitops.TrailerTo, p.To),
		fmt.Sprintf("push to  %s (base %s), Argo CD app %s", where, short(p.Base.Commit), gitops.ApplicationName(p.Service, p.Env)),
	}
	if p.Op.Action.Gated() {
		if bb, ok := be.(*backend); ok && bb.d.Gates == nil {
			lines = append(lines, "gate     no Prometheus in this context: the change will be refused")
		} else {
			lines = append(lines, "gate     the rollback and phase criteria are checked before the push")
		}
	}
	lines = append(lines, diffBody(p.Diff()))
	m := modal.New(fmt.Sprintf("%s %s/%s?", title, p.Service, p.Env), lines...).
		Action("commit and push").
		Field("Reason", "why, recorded in the commit", "", gitops.ValidateReason)
	if p.Op.Action == canary.ActionRollback {
		m.Danger()
	}
	return m
}

// diffBody keeps the hunk headers and the changed lines of the diff: on a small screen the
// lines that change matter, not their context or the file header the commit line names.
func diffBody(d string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "--- "), strings.HasPrefix(l, "+++ "):
		case strings.HasPrefix(l, "@@"), strings.HasPrefix(l, "-"), strings.HasPrefix(l, "+"):
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (b *Board) execute(a *action, reason string) tea.Cmd {
	a.modal.Start("committing " + termsafe.String(a.plan.Subject()))
	a.modal.Progress(0.05, "")
	a.events = make(chan tea.Msg, 32)
	ctx, be, plan, ch := b.ctx, b.o.Backend, a.plan, a.events
	go func() {
		out, err := be.Execute(ctx, plan, reason, func(p Progress) {
			select {
			case ch <- progressMsg{act: a, p: p}:
			case <-ctx.Done():
			}
		})
		select {
		case ch <- doneMsg{act: a, out: out, err: err}:
		case <-ctx.Done():
		}
	}()
	return view.Listen(ctx, ch)
}

func (b *Board) finish(a *action, msg doneMsg) {
	switch {
	case msg.out == nil && msg.err != nil:
		a.modal.Finish(true, "nothing was pushed: "+msg.err.Error())
	case msg.err != nil:
		a.modal.Finish(true, fmt.Sprintf("pushed %s (%s)", short(msg.out.Result.Commit), msg.out.Plan.Subject()),
			"but: "+msg.err.Error())
	default:
		lines := []string{fmt.Sprintf("pushed %s (%s)", short(msg.out.Result.Commit), msg.out.Plan.Subject())}
		if msg.out.Result.AlreadyApplied {
			lines[0] = fmt.Sprintf("the canary is already off at %s; nothing was pushed", short(msg.out.Result.Commit))
		}
		if a.last != "" && !strings.HasPrefix(a.last, "pushed") {
			lines = append(lines, a.last)
		}
		a.modal.Progress(1, "")
		a.modal.Finish(false, lines...)
	}
}
