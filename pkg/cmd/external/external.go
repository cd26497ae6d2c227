// Package external runs an opsctl subcommand that ships as a binary of its own, opsctl-NAME, as
// kubectl and gh run their plugins. `opsctl sandbox` is one: the sandbox links the SAGA services,
// the simulators, Helm and a PromQL engine, none of which the on-call console needs, so they live
// in opsctl-sandbox and opsctl only finds and starts it.
package external

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/cmdutil"
)

// Options are the inputs of an external subcommand.
type Options struct {
	Factory *cmdutil.Factory
	// Name is the subcommand; its binary is opsctl-<Name>.
	Name string
	// Install says how to get the binary, for the error when it is missing.
	Install string
	// Args are the subcommand's arguments, passed through untouched.
	Args []string

	// Executable returns opsctl's own path (os.Executable), whose directory is searched first.
	Executable func() (string, error)
	// LookPath searches PATH (exec.LookPath).
	LookPath func(string) (string, error)
	// Exec replaces this process with the binary (execve where the system has it), so the
	// subcommand owns the terminal, its signals and the exit code.
	Exec func(path string, argv, env []string) error
}

// NewCmd returns `opsctl NAME`, which runs opsctl-NAME with the arguments it was given. runF
// replaces the run in tests.
func NewCmd(f *cmdutil.Factory, name, short, install string, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f, Name: name, Install: install, Executable: os.Executable, LookPath: exec.LookPath, Exec: execBinary}
	return &cobra.Command{
		Use:   name + " [flags]",
		Short: short,
		Long: fmt.Sprintf(`%s.

This runs the opsctl-%[2]s binary, found next to opsctl or on PATH, with the same arguments;
"opsctl %[2]s --help" shows its flags.`, short, name),
		// Flags, --help included, belong to the binary.
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Args = args
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
}

// ErrNotInstalled means the subcommand's binary is neither next to opsctl nor on PATH.
var ErrNotInstalled = errors.New("not installed")

// Find returns the path of opsctl-<name>: beside opsctl's own binary first (a release archive and
// `go install` put them together), then on PATH.
func (o *Options) Find() (string, error) {
	bin := "opsctl-" + o.Name
	if self, err := o.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			self = resolved
		}
		candidate := filepath.Join(filepath.Dir(self), bin+exeSuffix)
		if st, err := os.Stat(candidate); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return candidate, nil
		}
	}
	if p, err := o.LookPath(bin); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("`opsctl %s` runs the %s binary, which is %w next to opsctl or on PATH; %s (nothing was started)", o.Name, bin, ErrNotInstalled, o.Install)
}

// Run finds the binary and hands the process over to it. The global --config, when given,
// travels with the arguments.
func Run(o *Options) error {
	path, err := o.Find()
	if err != nil {
		return err
	}
	argv := []string{path}
	if o.Factory != nil && o.Factory.ConfigPath != "" {
		argv = append(argv, "--config", o.Factory.ConfigPath)
	}
	argv = append(argv, o.Args...)
	err = o.Exec(path, argv, os.Environ())
	var xe *cmdutil.ExitStatusError
	if err != nil && !errors.As(err, &xe) {
		return fmt.Errorf("start %s: %w", path, err)
	}
	return err
}
