//go:build windows

package external

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"

	"github.com/come2us/opsctl/pkg/cmdutil"
)

const exeSuffix = ".exe"

// execBinary runs path as a child on this console (Windows has no execve); its exit code becomes
// opsctl's. Ctrl-C reaches both processes, and this one leaves it to the child.
func execBinary(path string, argv, env []string) error {
	signal.Ignore(os.Interrupt)
	c := exec.Command(path, argv[1:]...)
	c.Env, c.Stdin, c.Stdout, c.Stderr = env, os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &cmdutil.ExitStatusError{Code: ee.ExitCode()}
	}
	return err
}
