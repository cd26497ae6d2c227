package canary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/rollout"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// LiveOptions open what the live side of a canary needs from the selected context
// (cmdutil.Live); NewCmd* fill them from the factory, and every field can be replaced.
type LiveOptions cmdutil.Live

// liveFromFactory resolves every LiveOptions field left nil from the selected context.
func liveFromFactory(f *cmdutil.Factory, o *LiveOptions) {
	l := cmdutil.Live(*o)
	f.FillLive(&l)
	*o = LiveOptions(l)
}

// gateSource is the canary policy's gate for the context: the design's criteria on the
// context's Prometheus. Without a Prometheus it fails, and the canary service refuses every
// gated change unless the gates are skipped with a reason.
func (o *LiveOptions) gateSource(report func(canary.GateReport)) canary.GateSource {
	return canary.EvaluatorGates(o.Gates, o.Namespace, report)
}

// argoConfigured reports whether the context names an Argo CD (server or core mode), which
// turns the live columns of `canary status` on by default.
func argoConfigured(f *cmdutil.Factory) bool {
	_, c, err := f.Context()
	return err == nil && (c.ArgoCD.Server != "" || c.ArgoCD.Core)
}

// follower builds the --wait follower: it opens Argo CD and the mesh when a change has been
// pushed and reports progress on stderr. The controller prefixes its errors with the pushed
// commit; when Argo CD cannot be reached the error also says that traffic still moves once
// Argo CD syncs, since the commit is on the branch it watches.
func (o *LiveOptions) follower(f *cmdutil.Factory, env string, timeout time.Duration) canary.Follower {
	return canary.FollowerFunc(func(ctx context.Context, p *canary.Plan, res gitops.Result) error {
		err := o.follow(ctx, f, env, timeout, p, res)
		if errors.Is(err, argocd.ErrUnreachable) {
			return fmt.Errorf("%w; traffic moves when Argo CD syncs that commit (check with `opsctl canary status %s --env %s`)", err, p.Service, env)
		}
		return err
	})
}

// follow opens Argo CD and the mesh and waits for the pushed change to arrive in both.
func (o *LiveOptions) follow(ctx context.Context, f *cmdutil.Factory, env string, timeout time.Duration, p *canary.Plan, res gitops.Result) error {
	apps, err := o.Apps(ctx)
	if err != nil {
		return fmt.Errorf("could not follow it in Argo CD: %w", err)
	}
	defer apps.Close()
	fw := &rollout.Follower{Apps: apps, Timeout: timeout, Progress: func(s string) {
		fmt.Fprintln(f.IOStreams.ErrOut, termsafe.String(s))
	}}
	r, err := o.Mesh(env)
	if err != nil {
		return fmt.Errorf("read the live VirtualService: %w", err)
	}
	fw.Routes = r
	fmt.Fprintf(f.IOStreams.ErrOut, "waiting up to %s for Argo CD and the mesh\n", timeout)
	return fw.Follow(ctx, p, res)
}

// writeGateTable prints a gate report: criterion, value, threshold, verdict (and why a verdict
// is unknown).
func writeGateTable(f *cmdutil.Factory, w io.Writer, rep canary.GateReport) error {
	t := f.NewTable(w, "CRITERION", "VALUE", "THRESHOLD", "VERDICT", "DETAIL")
	for _, r := range rep.Results {
		t.Row(r.Criterion.Name, r.Display, r.Criterion.ThresholdText(), string(r.Verdict), r.Detail)
	}
	return t.Flush()
}
