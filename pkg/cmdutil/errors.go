package cmdutil

import (
	"errors"
	"fmt"
)

// Exit codes of every opsctl command.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitUsage   = 2
	ExitPartial = 3
)

// FlagError is a usage error: bad flags or arguments. It exits 2.
type FlagError struct{ err error }

func (e *FlagError) Error() string { return e.err.Error() }
func (e *FlagError) Unwrap() error { return e.err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{err: fmt.Errorf(format, args...)}
}

// ErrSilent means the command already told the user what went wrong; exit 1 without another
// message.
var ErrSilent = errors.New("silent error")

// PartialError means the command did part of its job — some records were skipped, refused or
// failed — and already reported which. It exits 3.
type PartialError struct{ Summary string }

func (e *PartialError) Error() string { return "partial: " + e.Summary }

// ExitStatusError carries the exit code of a program that ran in opsctl's place (an external
// subcommand on a system without execve), which has already said what it had to: opsctl exits
// with Code and prints nothing more.
type ExitStatusError struct{ Code int }

func (e *ExitStatusError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ErrReadonly is returned by every mutating command under --readonly (or a read-only context).
var ErrReadonly = errors.New("refused: opsctl runs read-only (--readonly or a read-only context); nothing was changed")

// ErrConfirmationNeeded is returned when a mutating command needs confirmation but cannot ask.
var ErrConfirmationNeeded = errors.New("confirmation needed: stdin is not a terminal, so pass --yes to proceed (nothing was changed)")

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	var fe *FlagError
	var pe *PartialError
	var xe *ExitStatusError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &xe):
		return xe.Code
	case errors.As(err, &fe):
		return ExitUsage
	case errors.As(err, &pe):
		return ExitPartial
	}
	return ExitError
}
