package config

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/iostreams"
)

const file = `# team contexts
current-context: prod
contexts:
  prod: # MSK
    kafka: {brokers: [b-1:9098], sasl: {mechanism: PLAIN, username: ops, password: hunter2hunter2}}
    argocd: {server: argocd.example.com, token: eyJhbGciOiJIUzI1NiJ9.secret}
    readonly: true
  sandbox:
    simulated: true
    kafka: {brokers: [127.0.0.1:39092]}
`

// factory returns a Factory over a copy of file, printing in output, and the file's path.
func factory(t *testing.T, output string) (*cmdutil.Factory, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	ios, _, _, _ := iostreams.Test()
	return &cmdutil.Factory{IOStreams: ios, Now: time.Now, ConfigPath: p, Output: output}, p
}

// run executes `config ARGS...` and returns what it printed.
func run(t *testing.T, f *cmdutil.Factory, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	f.IOStreams.Out = &out
	cmd := NewCmdConfig(f)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestGetContexts(t *testing.T) {
	t.Parallel()
	f, _ := factory(t, cmdutil.OutputTable)
	out, err := run(t, f, "get-contexts")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"*", "prod", "sandbox (simulated)", "[b-1:9098]", "true"} {
		if !strings.Contains(out, want) {
			t.Errorf("get-contexts lacks %q:\n%s", want, out)
		}
	}
}

func TestUseContextKeepsTheFile(t *testing.T) {
	t.Parallel()
	f, p := factory(t, cmdutil.OutputTable)
	out, err := run(t, f, "use-context", "sandbox")
	if err != nil || !strings.Contains(out, `Switched to context "sandbox".`) {
		t.Fatalf("use-context: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(p)
	if want := strings.Replace(file, "current-context: prod", "current-context: sandbox", 1); string(b) != want {
		t.Fatalf("file after use-context:\n%s", b)
	}
}

func TestUseContextUnknownChangesNothing(t *testing.T) {
	t.Parallel()
	f, p := factory(t, cmdutil.OutputTable)
	_, err := run(t, f, "use-context", "staging")
	if err == nil || !strings.Contains(err.Error(), `context "staging" is not in`) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("unknown context: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != file {
		t.Fatalf("file changed:\n%s", b)
	}
	if _, err := run(t, f, "use-context"); cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("use-context without a name: %v, want a usage error", err)
	}
}

func TestViewMasksSecrets(t *testing.T) {
	t.Parallel()
	for _, output := range []string{cmdutil.OutputTable, cmdutil.OutputJSON} {
		f, _ := factory(t, output)
		out, err := run(t, f, "view")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "hunter2hunter2") || strings.Contains(out, "eyJhbGciOiJIUzI1NiJ9.secret") {
			t.Fatalf("%s view prints a secret:\n%s", output, out)
		}
		if !strings.Contains(out, "prod") || !strings.Contains(out, "b-1:9098") {
			t.Fatalf("%s view:\n%s", output, out)
		}
	}
}
