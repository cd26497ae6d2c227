package cmdutil

import (
	"context"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/kube"
	"github.com/come2us/opsctl/pkg/mesh"
)

// Live opens what the live side of a canary needs from the selected context: Argo CD, the mesh
// of an environment, and the Prometheus the gates read. Every field can be replaced.
type Live struct {
	Apps  func(ctx context.Context) (argocd.Apps, error)
	Mesh  func(env string) (*mesh.Reader, error)
	Gates func(env string) (*canary.GateEvaluator, error)
	// Namespace is the workloads' namespace of env (the context's kube.namespace, else
	// come2us-<env>).
	Namespace func(env string) string
}

// FillLive resolves every field of o left nil from the selected context.
func (f *Factory) FillLive(o *Live) {
	if o.Apps == nil {
		o.Apps = func(ctx context.Context) (argocd.Apps, error) {
			_, c, err := f.Context()
			if err != nil {
				return nil, err
			}
			ao := argocd.FromContext(c)
			ao.Actor = f.Actor()
			if f.Now != nil {
				ao.Now = f.Now
			}
			return argocd.New(ctx, ao)
		}
	}
	if o.Mesh == nil {
		o.Mesh = func(env string) (*mesh.Reader, error) {
			_, c, err := f.Context()
			if err != nil {
				return nil, err
			}
			return mesh.FromConfig(c.Kube, env)
		}
	}
	if o.Namespace == nil {
		o.Namespace = func(env string) string {
			if _, c, err := f.Context(); err == nil {
				return kube.Namespace(c.Kube, env)
			}
			return kube.Namespace(config.Kube{}, env)
		}
	}
	if o.Gates == nil {
		o.Gates = func(env string) (*canary.GateEvaluator, error) {
			_, c, err := f.Context()
			if err != nil {
				return nil, err
			}
			if c.Prometheus.URL == "" {
				return nil, canary.ErrNoPrometheus
			}
			var opts []canary.GateOption
			if d := c.PrometheusTimeout(); d > 0 {
				opts = append(opts, canary.GateWithDeadline(d))
			}
			// Pod readiness straight from Kubernetes when the kube context works; else the
			// gates fall back to kube-state-metrics in Prometheus.
			if r, err := o.Mesh(env); err == nil {
				opts = append(opts, canary.GateWithReadiness(r))
			}
			return canary.NewGateEvaluator(c.Prometheus, opts...)
		}
	}
}

// Live returns the live-side openers resolved from the selected context, as the canary
// commands, the TUI's canary board and the agent's guard use them.
func (f *Factory) Live() Live {
	var o Live
	f.FillLive(&o)
	return o
}
