package root

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/iostreams"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Now: time.Now, ConfigPath: filepath.Join(t.TempDir(), "config.yaml")}
	cmd := NewCmdRoot(f)
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"version"}, cmdutil.ExitOK},
		{[]string{"version", "-o", "xml"}, cmdutil.ExitUsage},
		{[]string{"--no-such-flag"}, cmdutil.ExitUsage},
		{[]string{"config", "use-context", "nope"}, cmdutil.ExitError},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := run(t, tt.args...)
			if got := cmdutil.ExitCode(err); got != tt.code {
				t.Fatalf("exit code %d, want %d (err %v)", got, tt.code, err)
			}
		})
	}
	if cmdutil.ExitCode(&cmdutil.PartialError{Summary: "2 refused"}) != cmdutil.ExitPartial {
		t.Fatal("partial error does not exit 3")
	}
	if cmdutil.ExitCode(cmdutil.ErrReadonly) != cmdutil.ExitError {
		t.Fatal("readonly refusal does not exit 1")
	}
}

func TestVersionJSON(t *testing.T) {
	out, _, err := run(t, "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil || v["version"] == "" || v["goVersion"] == "" {
		t.Fatalf("version json %q: %v", out, err)
	}
}

func TestReadonlyGuard(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Readonly: true, ConfigPath: filepath.Join(t.TempDir(), "c.yaml")}
	if err := f.CheckWritable(); !errors.Is(err, cmdutil.ErrReadonly) {
		t.Fatalf("CheckWritable = %v", err)
	}
	f.Readonly = false
	if err := f.Confirm("do it?", false); !errors.Is(err, cmdutil.ErrConfirmationNeeded) {
		t.Fatalf("confirm without a terminal = %v", err)
	}
	ios.SetTTY(true)
	if _, err := ios.In.(interface{ WriteString(string) (int, error) }).WriteString("n\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Confirm("do it?", false); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("declined confirm = %v", err)
	}
}

// TestNoArgsWithoutTerminal: opsctl with no command prints its help when stdin or stdout is
// not a terminal (a pipe, a script), and an unknown command is a usage error.
func TestNoArgsWithoutTerminal(t *testing.T) {
	out, _, err := run(t)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Usage:") || !strings.Contains(out, "tui") {
		t.Fatalf("no help printed:\n%s", out)
	}
	_, _, err = run(t, "frobnicate")
	if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
		t.Fatalf("unknown command: %v (exit %d)", err, cmdutil.ExitCode(err))
	}
}

// TestConsoleLinksNoServicesOrSimulators keeps the on-call binary small and quick to start: the
// SAGA services, the sandbox's simulators, Helm, the PromQL engine and kfake ship in their own
// binaries (cmd/services/*, cmd/opsctl-sandbox); opsctl reaches the services only through their
// API packages.
func TestConsoleLinksNoServicesOrSimulators(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list opsctl's packages")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/come2us/opsctl/cmd/opsctl").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/come2us/opsctl/"
	forbidden := []string{
		mod + "pkg/services", mod + "pkg/sim", mod + "pkg/artifacts", mod + "pkg/cmd/sandbox",
		"helm.sh/helm", "github.com/prometheus/prometheus/promql", "github.com/twmb/franz-go/pkg/kfake",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			// A service's API package (orderapi) and the HTTP contract under it are what the
			// console may use.
			if (dep == f || strings.HasPrefix(dep, f+"/")) && !strings.HasSuffix(dep, "api") {
				t.Errorf("opsctl links %s", dep)
			}
		}
	}
}

// TestCommandPackagesStandAlone: a command package never imports another (the root assembles
// them; shared openers live beside the Factory in pkg/cmdutil), so each can be read, tested
// and changed on its own, as in cli/cli.
func TestCommandPackagesStandAlone(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list opsctl's packages")
	}
	const cmdPkgs = "github.com/come2us/opsctl/pkg/cmd/"
	out, err := exec.Command(gobin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/come2us/opsctl/pkg/cmd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := fields[0]
		if pkg == cmdPkgs+"root" || pkg == cmdPkgs+"man" {
			continue
		}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, cmdPkgs) && !strings.HasPrefix(imp, pkg+"/") {
				t.Errorf("%s imports %s", strings.TrimPrefix(pkg, cmdPkgs), strings.TrimPrefix(imp, cmdPkgs))
			}
		}
	}
}
