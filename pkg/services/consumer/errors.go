package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/come2us/opsctl/pkg/event"
)

// Error codes the runtime assigns when a handler's error carries none.
const (
	CodeSchema  = "SCHEMA_INVALID"     // the value is not a valid event (event.ErrSchema)
	CodeTimeout = "PROCESSING_TIMEOUT" // an attempt ran out of time
	CodePanic   = "HANDLER_PANIC"      // the handler panicked
	CodeUnknown = "PROCESSING_FAILED"  // any other error
)

// Error is a processing failure with a stable error code — the errorCode of a dead letter and the
// error_code label of the failure metrics — and whether retrying can help: never (Permanent),
// surely once the cause passes (Transient), or maybe (neither).
type Error struct {
	Code      string
	Permanent bool
	Transient bool
	Err       error
}

// Error renders the code and the cause.
func (e *Error) Error() string { return e.Code + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as a failure no retry can fix (a business rule, a missing entity): the
// record goes to the dead-letter topic after this one attempt.
func Permanent(code string, err error) error {
	return &Error{Code: code, Permanent: true, Err: err}
}

// Retryable marks err as worth a few more tries with a code: the record is retried in place and
// dead-lettered when Config.Attempts tries failed.
func Retryable(code string, err error) error {
	return &Error{Code: code, Err: err}
}

// Transient marks err as trouble that passes by itself — a row lock, a timeout, a lost database
// or network connection — with a code: the record is retried in place, with backoff, for
// Config.RetryFor before it is dead-lettered.
func Transient(code string, err error) error {
	return &Error{Code: code, Transient: true, Err: err}
}

// CodeOf returns the error code of err: the outermost Error's code, else SCHEMA_INVALID for
// event.ErrSchema, PROCESSING_TIMEOUT for a deadline, PROCESSING_FAILED otherwise.
func CodeOf(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e) && e.Code != "":
		return e.Code
	case errors.Is(err, event.ErrSchema):
		return CodeSchema
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	}
	return CodeUnknown
}

// IsPermanent reports whether err must not be retried: an Error marked Permanent, or an
// invalid event.
func IsPermanent(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Permanent
	}
	return errors.Is(err, event.ErrSchema)
}

// IsTransient reports whether err is worth retrying for minutes: an Error marked Transient, or an
// attempt that ran out of time.
func IsTransient(err error) bool {
	var e *Error
	if errors.As(err, &e) && (e.Transient || e.Permanent) {
		return e.Transient
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// causeChain renders err and its causes, one per line with their Go types — the closest thing to
// a stack trace an operator reading the dead letter can use.
func causeChain(err error) string {
	var b strings.Builder
	for i := 0; err != nil && i < 16; i++ {
		if i > 0 {
			b.WriteString("\ncaused by ")
		}
		fmt.Fprintf(&b, "%T: %s", err, err.Error())
		err = errors.Unwrap(err)
	}
	return b.String()
}
