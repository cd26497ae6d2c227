package external

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/iostreams"
)

// install writes an executable named name into dir and returns its path.
func install(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name+exeSuffix)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

type execCall struct {
	path string
	argv []string
}

// options returns Options whose opsctl lives in selfDir and whose PATH is pathDir, recording the
// exec instead of doing it.
func options(t *testing.T, selfDir, pathDir string, calls *[]execCall, execErr error) *Options {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	return &Options{
		Factory:    &cmdutil.Factory{IOStreams: ios},
		Name:       "sandbox",
		Install:    "go install ./cmd/opsctl-sandbox",
		Executable: func() (string, error) { return filepath.Join(selfDir, "opsctl"+exeSuffix), nil },
		LookPath: func(name string) (string, error) {
			p := filepath.Join(pathDir, name+exeSuffix)
			if _, err := os.Stat(p); err != nil {
				return "", exec.ErrNotFound
			}
			return p, nil
		},
		Exec: func(path string, argv, _ []string) error {
			*calls = append(*calls, execCall{path, argv})
			return execErr
		},
	}
}

func TestFindPrefersTheBinaryBesideOpsctl(t *testing.T) {
	self, path := t.TempDir(), t.TempDir()
	beside := install(t, self, "opsctl-sandbox")
	install(t, path, "opsctl-sandbox")
	var calls []execCall
	got, err := options(t, self, path, &calls, nil).Find()
	if err != nil || got != beside {
		t.Fatalf("Find = %q, %v; want the one beside opsctl, %q", got, err, beside)
	}
}

func TestFindFallsBackToPath(t *testing.T) {
	self, path := t.TempDir(), t.TempDir()
	onPath := install(t, path, "opsctl-sandbox")
	// A file of that name that cannot be run is not the binary.
	if err := os.WriteFile(filepath.Join(self, "opsctl-sandbox"+exeSuffix), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var calls []execCall
	got, err := options(t, self, path, &calls, nil).Find()
	if exeSuffix == "" && (err != nil || got != onPath) {
		t.Fatalf("Find = %q, %v; want the one on PATH, %q", got, err, onPath)
	}
}

func TestMissingBinarySaysHowToInstallAndThatNothingStarted(t *testing.T) {
	var calls []execCall
	cmd := NewCmd(nil, "sandbox", "Run the platform", "go install ./cmd/opsctl-sandbox", nil)
	o := options(t, t.TempDir(), t.TempDir(), &calls, nil)
	err := Run(o)
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
	for _, want := range []string{"opsctl-sandbox", "go install ./cmd/opsctl-sandbox", "nothing was started"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(calls) != 0 {
		t.Fatalf("exec ran although the binary is missing: %v", calls)
	}
	if cmdutil.ExitCode(err) != cmdutil.ExitError {
		t.Fatalf("exit code %d", cmdutil.ExitCode(err))
	}
	if !cmd.DisableFlagParsing {
		t.Fatal("the subcommand's flags must reach its binary untouched")
	}
}

func TestArgumentsAndConfigTravelToTheBinary(t *testing.T) {
	self := t.TempDir()
	bin := install(t, self, "opsctl-sandbox")
	var calls []execCall
	o := options(t, self, t.TempDir(), &calls, nil)
	o.Factory.ConfigPath = "/tmp/opsctl-config.yaml"
	cmd := NewCmd(o.Factory, "sandbox", "Run the platform", "go install ./cmd/opsctl-sandbox", func(got *Options) error {
		o.Args = got.Args
		return Run(o)
	})
	cmd.SetArgs([]string{"--headless", "--state", "dir with space", "--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := []string{bin, "--config", "/tmp/opsctl-config.yaml", "--headless", "--state", "dir with space", "--help"}
	if len(calls) != 1 || calls[0].path != bin || !slices.Equal(calls[0].argv, want) {
		t.Fatalf("exec calls %+v, want %s %q", calls, bin, want)
	}
}

func TestExitStatusOfTheBinaryBecomesOpsctls(t *testing.T) {
	self := t.TempDir()
	install(t, self, "opsctl-sandbox")
	var calls []execCall
	o := options(t, self, t.TempDir(), &calls, &cmdutil.ExitStatusError{Code: 3})
	err := Run(o)
	if got := cmdutil.ExitCode(err); got != 3 {
		t.Fatalf("exit code %d, want the binary's 3 (err %v)", got, err)
	}
	ios, _, _, errOut := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios}
	cmd := NewCmd(f, "sandbox", "Run the platform", "", func(*Options) error { return err })
	cmd.SetArgs(nil)
	if code := cmdutil.Execute(t.Context(), cmd, f); code != 3 || errOut.Len() != 0 {
		t.Fatalf("Execute = %d with %q on stderr; want 3 and nothing printed (the binary spoke for itself)", code, errOut.String())
	}

	// An exec that fails to start is opsctl's error, naming the binary.
	o = options(t, self, t.TempDir(), &calls, errors.New("exec format error"))
	if err := Run(o); err == nil || !strings.Contains(err.Error(), "opsctl-sandbox") {
		t.Fatalf("err = %v", err)
	}
}
