package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aymanbagabas/go-udiff"
	"sigs.k8s.io/yaml"
)

// ManagedResource is one object an application manages, with the state git renders for it
// (Target) and the state in the cluster (Live), both as YAML. Either is empty when the object
// exists on one side only (to create, or to prune). Strings come from the server and must go
// through termsafe before they reach a terminal.
type ManagedResource struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Target is the desired state rendered from git; Live is the cluster's, both normalised
	// by Argo CD (its ignoreDifferences and known defaults applied), as `argocd app diff`
	// compares them.
	Target string `json:"target,omitempty"`
	Live   string `json:"live,omitempty"`
	// Modified is Argo CD's verdict that the two differ.
	Modified bool `json:"modified"`
}

// Ref names the object as kubectl does: kind/name, with the group when there is one.
func (r ManagedResource) Ref() string {
	k := r.Kind
	if r.Group != "" {
		k += "." + r.Group
	}
	return k + "/" + r.Name
}

// Diff is the unified diff from git's state to the live one ("" when they are the same).
func (r ManagedResource) Diff() string {
	if r.Target == r.Live {
		return ""
	}
	name := r.Ref()
	return udiff.Unified("git/"+name, "live/"+name, r.Target, r.Live)
}

// Revision describes a commit an application deployed: who made it, when, and its message.
type Revision struct {
	Revision string    `json:"revision"`
	Author   string    `json:"author,omitempty"`
	Date     time.Time `json:"date,omitzero"`
	Message  string    `json:"message,omitempty"`
}

// Subject is the first line of the commit message.
func (r Revision) Subject() string {
	s, _, _ := strings.Cut(strings.TrimSpace(r.Message), "\n")
	return s
}

// RollbackOptions shape a rollback.
type RollbackOptions struct {
	// Prune deletes resources that the history entry's revision does not have.
	Prune bool
	// DryRun lets Argo CD validate the rollback without changing the cluster.
	DryRun bool
}

// ErrAutoSync means a rollback was refused because the application syncs automatically: Argo
// CD would refuse it too, and would sync straight back to git if it did not.
var ErrAutoSync = errors.New("auto-sync is enabled")

// CheckRollback refuses what Argo CD would: a rollback of an application that syncs itself,
// or to a history entry that does not exist.
func CheckRollback(a App, id int64) error {
	if a.AutoSync {
		return &Error{Kind: ErrAutoSync, Msg: fmt.Sprintf("rollback %s: auto-sync is on, so Argo CD refuses a rollback (it would sync back to git at once); "+
			"roll back in git instead (a revert, or `opsctl canary rollback`), or turn auto-sync off first; nothing was changed", a.Name)}
	}
	for _, h := range a.History {
		if h.ID == id {
			return nil
		}
	}
	ids := make([]string, 0, len(a.History))
	for _, h := range a.History {
		ids = append(ids, fmt.Sprint(h.ID))
	}
	return &Error{Msg: fmt.Sprintf("rollback %s: no history entry %d (entries: %s); nothing was changed", a.Name, id, strings.Join(ids, ", "))}
}

// stateYAML turns one of Argo CD's JSON states into YAML ("" and "null" are no object).
func stateYAML(js string) (string, error) {
	if js == "" || js == "null" {
		return "", nil
	}
	var v any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		return "", fmt.Errorf("a resource state is not JSON: %w", err)
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// WithCommits sets the Commit of each entry of history (a copy): the commit of every distinct
// revision, read newest first. A revision whose commit cannot be read keeps none; the first such
// error is returned beside what could be read (core mode answers none).
func WithCommits(ctx context.Context, c Apps, name string, history []Deployment) ([]Deployment, error) {
	commits, err := readCommits(ctx, c, name, history)
	out := append([]Deployment(nil), history...)
	for i := range out {
		if r, ok := commits[out[i].Revision]; ok {
			out[i].Commit = &r
		}
	}
	return out, err
}

// readCommits reads the commit of each distinct revision of history, by revision.
func readCommits(ctx context.Context, c Apps, name string, history []Deployment) (map[string]Revision, error) {
	out := map[string]Revision{}
	var first error
	for i := len(history) - 1; i >= 0; i-- {
		rev := history[i].Revision
		if _, done := out[rev]; done || rev == "" {
			continue
		}
		r, err := c.RevisionInfo(ctx, name, rev)
		if err != nil {
			if first == nil {
				first = err
			}
			if errors.Is(err, ErrNeedsServer) || ctx.Err() != nil {
				return out, first
			}
			continue
		}
		out[rev] = r
	}
	return out, first
}
