package sandbox

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestEnsureIdentityDropsThePlaceholder: a working copy that an earlier sandbox signed as
// "opsctl sandbox" loses that identity, so canary commits carry the operator; an identity the
// operator set is kept.
func TestEnsureIdentityDropsThePlaceholder(t *testing.T) {
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	ctx := context.Background()
	g := gitRunner{}
	for _, tt := range []struct{ name, email, wantName string }{
		{seedName, seedEmail, ""},
		{"Alice", "alice@example.com", "Alice"},
	} {
		dir := t.TempDir()
		if _, err := g.run(ctx, dir, "init", "--quiet"); err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"user.name": tt.name, "user.email": tt.email} {
			if _, err := g.run(ctx, dir, "config", "--local", k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := ensureIdentity(ctx, g, dir); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command("git", "-C", dir, "config", "--local", "user.name").Output()
		if got := strings.TrimSpace(string(out)); got != tt.wantName {
			t.Errorf("user.name after ensureIdentity = %q, want %q", got, tt.wantName)
		}
	}
}
