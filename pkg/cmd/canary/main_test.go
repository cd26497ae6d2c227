package canary_test

import (
	"os"
	"testing"

	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
)

// TestMain sets, once and before any test runs, the environment every test shares, so that the
// tests can run in parallel (t.Setenv is refused there). Fixed commit dates make hashes and ages
// reproducible; opsctl's own clones go to a cache directory of this run, not the user's (each
// remote is a temporary directory of its own, so two tests never share a clone); Argo CD
// credentials and config come only from the config file a test writes.
func TestMain(m *testing.M) {
	os.Exit(gitopstest.Main(m, func(dir string) map[string]string {
		return map[string]string{
			"GIT_AUTHOR_DATE":    "2026-11-25T10:00:00Z",
			"GIT_COMMITTER_DATE": "2026-11-25T10:00:00Z",
			"XDG_CACHE_HOME":     dir + "/cache",
			"ARGOCD_AUTH_TOKEN":  "",
			"ARGOCD_SERVER":      "",
			"ARGOCD_CONFIG_DIR":  dir + "/argocd",
		}
	}))
}
