//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gitops

import "os/exec"

// killTree leaves cmd as exec.CommandContext made it: cancelling kills git itself, and
// WaitDelay stops waiting for children that keep its pipes open.
func killTree(cmd *exec.Cmd) {}
