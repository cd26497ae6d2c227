package canary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/mesh"
	"github.com/come2us/opsctl/pkg/rollout"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// StatusOptions are the inputs of `opsctl canary status`.
type StatusOptions struct {
	Factory *cmdutil.Factory
	Repo    RepoOptions
	// Service and Env narrow the listing; empty means all.
	Service string
	Env     string
	// Live adds what Argo CD and the mesh report, and whether they agree with git.
	LiveColumns bool
	Live        LiveOptions
}

// NewCmdStatus returns `opsctl canary status [SERVICE] [--env ENV]`.
func NewCmdStatus(f *cmdutil.Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Show stable and canary tags, weight, phase and the last change",
		Example: `  opsctl canary status
  opsctl canary status payment --env prod -o json`,
		Args: maxArgs(1, "one SERVICE (order, payment or product)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Service = args[0]
				if err := validService(opts.Service); err != nil {
					return err
				}
			}
			if err := validEnv(opts.Env, false); err != nil {
				return err
			}
			if opts.Repo.Open == nil {
				opts.Repo.Open = openFromFactory(f, &opts.Repo)
			}
			if !cmd.Flags().Changed("live") {
				opts.LiveColumns = argoConfigured(f)
			}
			liveFromFactory(f, &opts.Live)
			if runF != nil {
				return runF(opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Env, "env", "", "environment: dev or prod (default: both)")
	cmd.Flags().BoolVar(&opts.LiveColumns, "live", false, "add the live VirtualService weight and whether git, Argo CD and the mesh agree (default: on when the context configures Argo CD)")
	addRepoFlags(cmd, &opts.Repo)
	return cmd
}

// statusJSON is the -o json/yaml form of one service's status.
type statusJSON struct {
	Env         string      `json:"env"`
	Service     string      `json:"service"`
	Application string      `json:"application"`
	Stable      imageJSON   `json:"stable"`
	Canary      canaryJSON  `json:"canary"`
	Phase       *phaseJSON  `json:"phase,omitempty"`
	Commit      string      `json:"commit"`
	LastChange  *changeJSON `json:"lastChange,omitempty"`
	Warnings    []string    `json:"warnings,omitempty"`
	// Live is what Argo CD and the mesh report and the drift verdict (with --live).
	Live *rollout.Agreement `json:"live,omitempty"`
}

type imageJSON struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
}

type canaryJSON struct {
	Enabled bool   `json:"enabled"`
	Tag     string `json:"tag"`
	Weight  int    `json:"weight"`
}

type phaseJSON struct {
	Number   int    `json:"number"`
	From     int    `json:"from"`
	To       int    `json:"to"`
	Action   string `json:"action"`
	Criteria string `json:"criteria"`
}

type changeJSON struct {
	Commit  string    `json:"commit"`
	Author  string    `json:"author"`
	Email   string    `json:"email"`
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	Action  string    `json:"action,omitempty"`
	Env     string    `json:"env,omitempty"`
	Service string    `json:"service,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

func toChangeJSON(e gitops.Entry) *changeJSON {
	return &changeJSON{Commit: e.Commit, Author: e.Author, Email: e.AuthorEmail, Time: e.Time.UTC(), Subject: e.Subject,
		Action: e.Action, Env: e.Env, Service: e.Service, From: e.From, To: e.To, Reason: e.Reason}
}

func toStatusJSON(s canary.Status) statusJSON {
	r := s.Release
	out := statusJSON{
		Env: s.Env, Service: s.Service, Application: gitops.ApplicationName(s.Service, s.Env),
		Stable: imageJSON{Repository: r.StableRepository, Tag: r.StableTag},
		Canary: canaryJSON{Enabled: r.Canary.Enabled, Tag: r.Canary.Tag, Weight: r.Canary.Weight},
		Commit: s.Commit, Warnings: s.Warnings,
	}
	if s.Phase != nil {
		p := *s.Phase
		out.Phase = &phaseJSON{Number: p.Number, From: p.From, To: p.To, Action: p.Action, Criteria: p.Criteria}
	}
	if s.LastChange != nil {
		out.LastChange = toChangeJSON(*s.LastChange)
	}
	return out
}

func statusRun(ctx context.Context, opts *StatusOptions) error {
	f := opts.Factory
	repo, err := opts.Repo.Open(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	ctrl := canary.New(repo)

	envs, services := gitops.Environments(), gitops.Services()
	if opts.Env != "" {
		envs = []string{opts.Env}
	}
	if opts.Service != "" {
		services = []string{opts.Service}
	}
	var rows []statusJSON
	var failed []string
	var lv *liveView
	if opts.LiveColumns {
		lv = &liveView{opts: &opts.Live, readers: map[string]*mesh.Reader{}, readerErr: map[string]error{}}
		defer lv.close()
	}
	for _, env := range envs {
		for _, svc := range services {
			st, err := ctrl.Status(ctx, env, svc)
			if err != nil {
				// One broken file must not hide the others.
				fmt.Fprintf(f.IOStreams.ErrOut, "%s/%s: %s\n", svc, env, strings.TrimRight(termsafe.Block(err.Error()), "\n"))
				failed = append(failed, svc+"/"+env)
				continue
			}
			row := toStatusJSON(st)
			if lv != nil {
				ag := lv.compare(ctx, st)
				row.Live = &ag
			}
			rows = append(rows, row)
		}
	}
	if rows == nil {
		rows = []statusJSON{}
	}
	err = f.Write(rows, func(w io.Writer) error { return statusTable(f, w, rows) })
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		if len(rows) == 0 {
			return cmdutil.ErrSilent
		}
		return &cmdutil.PartialError{Summary: fmt.Sprintf("could not read %s", strings.Join(failed, ", "))}
	}
	if lv != nil && errors.Is(lv.appsErr, argocd.ErrUnreachable) {
		// The git columns are right; the live ones are unknown, and the exit code says so.
		return &cmdutil.PartialError{Summary: "live columns unknown: " + termsafe.String(lv.appsErr.Error())}
	}
	return nil
}

func statusTable(f *cmdutil.Factory, w io.Writer, rows []statusJSON) error {
	now := f.Now()
	header := []string{"ENV", "SERVICE", "STABLE", "CANARY", "WEIGHT", "PHASE", "LAST CHANGE"}
	live := len(rows) > 0 && rows[0].Live != nil
	if live {
		header = []string{"ENV", "SERVICE", "STABLE", "CANARY", "WEIGHT", "LIVE", "PHASE", "DRIFT", "LAST CHANGE"}
	}
	t := f.NewTable(w, header...)
	for _, r := range rows {
		canaryTag, weight, phase := "-", "-", "-"
		if r.Canary.Enabled {
			canaryTag = r.Canary.Tag
			weight = fmt.Sprintf("%d%%", r.Canary.Weight)
		}
		if r.Phase != nil {
			phase = fmt.Sprintf("%d (%d%%->%d%%)", r.Phase.Number, r.Phase.From, r.Phase.To)
		}
		last := "-"
		if c := r.LastChange; c != nil {
			what := c.Subject
			if c.Action != "" {
				what = c.Action
				if c.Reason != "" {
					what += ": " + c.Reason
				}
			}
			last = fmt.Sprintf("%s %s %s ago %s", shortCommit(c.Commit), c.Author, age(now, c.Time), termsafe.Truncate(what, 60))
		}
		if len(r.Warnings) > 0 {
			last += " (!) " + strings.Join(r.Warnings, "; ")
		}
		if !live {
			t.Row(r.Env, r.Service, r.Stable.Tag, canaryTag, weight, phase, last)
			continue
		}
		liveWeight := "?"
		if r.Live.LiveV2 != nil {
			liveWeight = fmt.Sprintf("%d%%", *r.Live.LiveV2)
		}
		drift := string(r.Live.Verdict)
		if r.Live.Detail != "" {
			drift += ": " + r.Live.Detail
		}
		t.Row(r.Env, r.Service, r.Stable.Tag, canaryTag, weight, liveWeight, phase, drift, last)
	}
	return t.Flush()
}

// liveView reads Argo CD once and each environment's mesh once for a status listing.
type liveView struct {
	opts      *LiveOptions
	apps      argocd.Apps
	appsErr   error
	opened    bool
	readers   map[string]*mesh.Reader
	readerErr map[string]error
}

func (v *liveView) compare(ctx context.Context, st canary.Status) rollout.Agreement {
	if !v.opened {
		v.opened = true
		v.apps, v.appsErr = v.opts.Apps(ctx)
	}
	r, ok := v.readers[st.Env]
	if !ok && v.readerErr[st.Env] == nil {
		r, v.readerErr[st.Env] = v.opts.Mesh(st.Env)
		v.readers[st.Env] = r
	}
	var routes rollout.Routes
	if r != nil {
		routes = r
	}
	return rollout.Observe(ctx, v.apps, v.appsErr, routes, v.readerErr[st.Env], st.Env, st.Service, st.Commit, st.Release)
}

func (v *liveView) close() {
	if v.apps != nil {
		v.apps.Close()
	}
}
