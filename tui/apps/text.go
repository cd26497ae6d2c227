package apps

import (
	"context"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Keys of the resource views.
var (
	KeyYAML = key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yaml"))
	KeyDiff = key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "diff with git"))
)

// Resource is one managed object's YAML (live, as the cluster has it) or its diff from git,
// read through argocd.Apps.ManagedResources as `opsctl apps diff` reads it, in a viewport that
// scrolls (↑↓/jk, pgup/pgdn, g/G). Every line from the server is sanitised, tab-expanded and
// cut to the width.
type Resource struct {
	o     Options
	ctx   context.Context
	app   string
	key   string // group/kind/namespace/name of the object
	diff  bool
	title string
	lines []string
	vp    viewport.Model
	w, h  int
}

type resourceMsg struct {
	owner *Resource
	res   *argocd.ManagedResource
}

func newResource(o Options, ctx context.Context, app string, r argocd.Resource, diff bool) *Resource {
	vp := view.NewViewport()
	what := "yaml "
	if diff {
		what = "diff "
	}
	return &Resource{o: o, ctx: ctx, app: app, key: resourceKey(r.Group, r.Kind, r.Namespace, r.Name), diff: diff,
		title: what + termsafe.Truncate(r.Kind+"/"+r.Name, 50), lines: []string{theme.Dim.Render("reading the object from Argo CD…")}, vp: vp}
}

func resourceKey(group, kind, namespace, name string) string {
	return group + "/" + kind + "/" + namespace + "/" + name
}

// Init reads the application's managed objects and keeps this one.
func (v *Resource) Init() tea.Cmd {
	ctx, apps, app, k := v.ctx, v.o.Apps, v.app, v.key
	return view.Do(func() (tea.Msg, error) {
		rs, err := apps.ManagedResources(ctx, app)
		if err != nil {
			return nil, err
		}
		for i := range rs {
			r := rs[i]
			if resourceKey(r.Group, r.Kind, r.Namespace, r.Name) == k {
				return resourceMsg{owner: v, res: &r}, nil
			}
		}
		return resourceMsg{owner: v}, nil
	})
}

// Update shows the object once read and scrolls.
func (v *Resource) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case resourceMsg:
		if msg.owner != v {
			return v, nil
		}
		v.lines = v.render(msg.res)
		v.layout()
		return v, nil
	}
	return v, view.Scroll(&v.vp, msg)
}

func (v *Resource) render(r *argocd.ManagedResource) []string {
	if r == nil {
		return []string{theme.Warning.Render("Argo CD does not list this object among the application's managed resources (a hook, or gone since)")}
	}
	if !v.diff {
		if r.Live == "" {
			return []string{theme.Warning.Render("not in the cluster: git has it, a sync would create it (d shows git's state)")}
		}
		return termsafe.Lines(strings.TrimRight(r.Live, "\n"))
	}
	d := r.Diff()
	if d == "" {
		return []string{theme.OK.Render("the cluster's object is as git renders it: no difference")}
	}
	var out []string
	for _, l := range termsafe.Lines(strings.TrimRight(d, "\n")) {
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			out = append(out, theme.Title.Render(l))
		case strings.HasPrefix(l, "@@"):
			out = append(out, theme.Dim.Render(l))
		case strings.HasPrefix(l, "+"):
			out = append(out, theme.OK.Render(l))
		case strings.HasPrefix(l, "-"):
			out = append(out, theme.Error.Render(l))
		default:
			out = append(out, l)
		}
	}
	return out
}

func (v *Resource) layout() {
	cut := make([]string, len(v.lines))
	for i, l := range v.lines {
		cut[i] = termsafe.Cut(l, max(v.w, 1))
	}
	v.vp.SetContent(strings.Join(cut, "\n"))
}

// View draws the viewport.
func (v *Resource) View() string { return v.vp.View() }

// Title names the view.
func (v *Resource) Title() string {
	return fmt.Sprintf("%s · %s", termsafe.Truncate(v.app, 40), v.title)
}

// SetSize sets the viewport's size.
func (v *Resource) SetSize(w, h int) {
	v.w, v.h = w, h
	v.vp.Width, v.vp.Height = w, h
	v.layout()
}

// Keys lists the bindings.
func (v *Resource) Keys() []key.Binding { return nil }

// Capturing is never true.
func (v *Resource) Capturing() bool { return false }
