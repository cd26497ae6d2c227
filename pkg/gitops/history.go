package gitops

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Entry is one commit that touched a values file, with its opsctl trailers when it has them.
// Every string comes from git and may hold anything a committer typed: sanitise before
// printing to a terminal.
type Entry struct {
	Commit      string
	Author      string
	AuthorEmail string
	Time        time.Time
	Subject     string
	// Action, Service, Env, From, To and Reason are the Opsctl-* trailers; Action is empty
	// for commits not made by opsctl (a CI image bump, a hand edit).
	Action  string
	Service string
	Env     string
	From    string
	To      string
	Reason  string
}

// IsOpsctl reports whether the commit was made by opsctl.
func (e Entry) IsOpsctl() bool { return e.Action != "" }

// HistoryQuery selects History's commits. Empty Env or Service mean all.
type HistoryQuery struct {
	Env     string
	Service string
	// Limit caps the number of entries (0: 50).
	Limit int
	// OpsctlOnly keeps only commits with an Opsctl-Action trailer.
	OpsctlOnly bool
}

// History fetches and lists, newest first, the commits on the remote branch that touched the
// selected values files.
func (r *Repo) History(ctx context.Context, q HistoryQuery) ([]Entry, error) {
	scope := path.Join(r.root, "envs")
	switch {
	case q.Env != "" && q.Service != "":
		p, err := ValuesPath(r.root, q.Env, q.Service)
		if err != nil {
			return nil, err
		}
		scope = p
	case q.Env != "":
		if err := ValidateTarget(q.Env, Services()[0]); err != nil {
			return nil, err
		}
		scope = path.Join(r.root, "envs", q.Env)
	case q.Service != "":
		if err := ValidateTarget(Environments()[0], q.Service); err != nil {
			return nil, err
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	head, err := r.readHead(ctx)
	if err != nil {
		return nil, err
	}
	args := []string{head}
	if q.OpsctlOnly || (q.Service != "" && q.Env == "") {
		args = append(args, "--extended-regexp", "--grep=^"+TrailerAction+": ")
	}
	if q.Service == "" || q.Env != "" {
		args = append(args, "-n", strconv.Itoa(limit))
	}
	entries, err := r.log(ctx, args, scope)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", scope, err)
	}
	// A service across environments has no single directory; filter on the trailer.
	if q.Service != "" && q.Env == "" {
		kept := entries[:0]
		for _, e := range entries {
			if e.Service == q.Service {
				kept = append(kept, e)
			}
		}
		entries = kept
		if len(entries) > limit {
			entries = entries[:limit]
		}
	}
	return entries, nil
}

// LastChange returns the newest commit that touched the file of env/service on the remote
// branch, or ok=false if there is none.
func (r *Repo) LastChange(ctx context.Context, env, service string) (Entry, bool, error) {
	es, err := r.History(ctx, HistoryQuery{Env: env, Service: service, Limit: 1})
	if err != nil || len(es) == 0 {
		return Entry{}, false, err
	}
	return es[0], true, nil
}

const (
	fieldSep  = "\x1f"
	logFormat = "%H%x1f%an%x1f%ae%x1f%aI%x1f%s%x1f%(trailers:only,unfold)"
)

// log runs git log with args over paths and parses the entries.
func (r *Repo) log(ctx context.Context, args []string, paths ...string) ([]Entry, error) {
	full := append([]string{"log", "-z", "--no-color", "--format=" + logFormat}, args...)
	full = append(full, "--")
	full = append(full, paths...)
	out, err := r.git.run(ctx, nil, full...)
	if err != nil {
		return nil, err
	}
	return parseLog(string(out))
}

// parseLog parses the NUL-separated output of logFormat.
func parseLog(out string) ([]Entry, error) {
	var entries []Entry
	for _, rec := range strings.Split(out, "\x00") {
		rec = strings.TrimLeft(rec, "\n")
		if rec == "" {
			continue
		}
		f := strings.SplitN(rec, fieldSep, 6)
		if len(f) != 6 {
			return nil, fmt.Errorf("parse git log: record with %d fields", len(f))
		}
		t, err := time.Parse(time.RFC3339, f[3])
		if err != nil {
			return nil, fmt.Errorf("parse git log: commit %s: time %q: %w", ShortHash(f[0]), f[3], err)
		}
		e := Entry{Commit: f[0], Author: f[1], AuthorEmail: f[2], Time: t, Subject: f[4]}
		for _, line := range strings.Split(f[5], "\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case TrailerAction:
				e.Action = v
			case TrailerService:
				e.Service = v
			case TrailerEnv:
				e.Env = v
			case TrailerFrom:
				e.From = v
			case TrailerTo:
				e.To = v
			case TrailerReason:
				e.Reason = v
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
}
