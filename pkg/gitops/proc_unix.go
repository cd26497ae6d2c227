//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gitops

import (
	"os/exec"
	"syscall"
)

// killTree runs cmd in a process group of its own and makes cancelling it kill the whole group:
// git hands network work to children (git-remote-https, ssh, hooks) that would otherwise
// outlive a killed git and keep a hung connection open.
func killTree(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		// A negative pid signals the group; the group id is git's pid.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
}
