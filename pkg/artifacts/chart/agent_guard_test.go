package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/come2us/opsctl/pkg/artifacts/chart"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
)

// TestAgentChartRunsTheCanaryGuard: each environment's agent guards the canaries of its own
// environment, with what the guard needs in its context (the GitOps repository it commits to,
// the cluster's Prometheus, the failure limit), a writable cache for its clone and the git
// credentials mounted; with canaryGuard.enabled false it is told not to.
func TestAgentChartRunsTheCanaryGuard(t *testing.T) {
	for _, env := range gitops.Environments() {
		t.Run(env, func(t *testing.T) {
			m := renderAgent(t, env, agentValues(t, env))
			ctr := chart.Of[*appsv1.Deployment](m)[0].Spec.Template.Spec.Containers[0]
			args := strings.Join(ctr.Args, " ")
			for _, want := range []string{"--canary-guard=always", "--canary-interval=30s", "--canary-envs=" + env} {
				if !strings.Contains(args, want) {
					t.Errorf("args %q lack %s", args, want)
				}
			}
			vars := map[string]string{}
			for _, e := range ctr.Env {
				vars[e.Name] = e.Value
			}
			if vars["XDG_CACHE_HOME"] != "/var/cache/opsctl" || vars["GIT_CONFIG_KEY_0"] != "credential.helper" ||
				vars["GIT_CONFIG_VALUE_0"] != "store --file=/etc/opsctl/git/credentials" {
				t.Errorf("env %v", vars)
			}
			mounts := map[string]bool{}
			for _, vm := range ctr.VolumeMounts {
				mounts[vm.MountPath] = !vm.ReadOnly
			}
			if writable, ok := mounts["/var/cache/opsctl"]; !ok || !writable {
				t.Errorf("no writable cache for the guard's clone: %v", mounts)
			}
			if _, ok := mounts["/etc/opsctl/git"]; !ok {
				t.Errorf("no git credentials mounted: %v", mounts)
			}

			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(configMap(t, m, "opsctl-agent-config", "config.yaml")), 0o600); err != nil {
				t.Fatal(err)
			}
			loaded, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			_, ctx, err := loaded.Resolve("")
			if err != nil {
				t.Fatal(err)
			}
			if ctx.GitOps.Repo == "" || ctx.GitOps.Branch != "main" || ctx.Prometheus.URL == "" || ctx.Canary.FailureLimit != 2 || len(ctx.Kafka.Brokers) != 2 {
				t.Errorf("the agent's context lacks what the guard needs: %+v", ctx)
			}
		})
	}
	off := strings.Replace(string(agentValues(t, "dev")), "canaryGuard:\n", "canaryGuard:\n  enabled: false\n", 1)
	m := renderAgent(t, "dev", []byte(off))
	ctr := chart.Of[*appsv1.Deployment](m)[0].Spec.Template.Spec.Containers[0]
	if args := strings.Join(ctr.Args, " "); !strings.Contains(args, "--canary-guard=never") || strings.Contains(args, "--canary-envs") {
		t.Errorf("disabled guard: args %q", args)
	}
}
