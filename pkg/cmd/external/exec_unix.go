//go:build !windows

package external

import "syscall"

const exeSuffix = ""

// execBinary replaces this process with path: the terminal, signals and exit code are the
// subcommand's own, with nothing in between.
func execBinary(path string, argv, env []string) error {
	return syscall.Exec(path, argv, env)
}
