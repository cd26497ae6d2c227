package canary

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

// CheckOptions are the inputs of `opsctl canary check`.
type CheckOptions struct {
	Factory *cmdutil.Factory
	Repo    RepoOptions
	Live    LiveOptions

	Service string
	Env     string
}

// NewCmdCheck returns `opsctl canary check SERVICE --env ENV`.
func NewCmdCheck(f *cmdutil.Factory, runF func(*CheckOptions) error) *cobra.Command {
	opts := &CheckOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "check SERVICE",
		Short: "Judge the running canary on the design's rollback and phase criteria (exit 0 only if all pass)",
		Long: `Evaluate the canary's gates on Prometheus: every rollback criterion of the design (5xx >= 3%
over 1 minute, v2 mean latency >= v1 + 200 ms, business errors >= 1%, canary pods not ready, CPU
> 80% or memory > 85% of limits) and the pass criteria of the canary's current phase.

Prints criterion, value, threshold and verdict. A criterion without data is "unknown", never
"pass". Exits 0 when every criterion passes and 1 otherwise. Queries come from the context's
prometheus section; prometheus.queries overrides any of them.`,
		Example: `  opsctl canary check payment --env prod
  opsctl canary check payment --env prod -o json`,
		Args: exactArgs(1, "one SERVICE (order, payment or product)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if err := validService(opts.Service); err != nil {
				return err
			}
			if err := validEnv(opts.Env, true); err != nil {
				return err
			}
			if opts.Repo.Open == nil {
				opts.Repo.Open = openFromFactory(f, &opts.Repo)
			}
			liveFromFactory(f, &opts.Live)
			if runF != nil {
				return runF(opts)
			}
			return checkRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Env, "env", "", "environment: dev or prod (required)")
	addRepoFlags(cmd, &opts.Repo)
	return cmd
}

func checkRun(ctx context.Context, opts *CheckOptions) error {
	f := opts.Factory
	repo, err := opts.Repo.Open(ctx)
	if err != nil {
		return err
	}
	defer repo.Close()
	st, err := canary.New(repo).Status(ctx, opts.Env, opts.Service)
	if err != nil {
		return err
	}
	if st.Phase == nil {
		return fmt.Errorf("no canary is running for %s/%s; nothing to check", opts.Service, opts.Env)
	}
	gates, err := opts.Live.Gates(opts.Env)
	if err != nil {
		return err
	}
	target := canary.GateTarget{Service: opts.Service, Env: opts.Env, Namespace: opts.Live.Namespace(opts.Env)}
	rep, err := gates.Evaluate(ctx, target, canary.GateCriteria(st.Phase.Number))
	if err != nil {
		return err
	}
	err = f.Write(rep, func(w io.Writer) error {
		fmt.Fprintf(w, "%s/%s: canary %s at %d%%, %s\n\n", opts.Service, opts.Env, st.Release.Canary.Tag, st.Release.Canary.Weight, st.Phase)
		if err := writeGateTable(f, w, rep); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "\nverdict: %s\n", rep.Verdict())
		return err
	})
	if err != nil {
		return err
	}
	if rep.Verdict() != canary.VerdictPass {
		return cmdutil.ErrSilent
	}
	return nil
}
