package argocd

import (
	"fmt"
	"sync"

	"github.com/sirupsen/logrus"
)

// Argo CD's API client logs through logrus' standard logger and, on some paths, calls its
// Fatal functions: when argocd-server does not answer the version probe, NewClientWithContext
// retries over gRPC-Web and its *OrDie helper calls log.Fatalf ("dial unix .../argocd-*.sock:
// i/o timeout"), which would end opsctl — the TUI included — with a raw log line. A library
// must not be able to do that: the standard logger's fatal level raises a typed panic instead,
// before anything is written, and every call that may reach such a path runs under guard,
// which turns the panic into an error.

// fatalLogError is a fatal log of the Argo CD client, caught before it ended the process.
type fatalLogError struct{ msg string }

func (e *fatalLogError) Error() string { return e.msg }

// libraryFatal is the panic value that replaces a fatal log.
type libraryFatal struct{ msg string }

var fatalGuardOnce sync.Once

// installFatalGuard makes logrus' standard logger panic with libraryFatal instead of writing a
// fatal line and exiting. It changes process-wide state, once, on purpose: no part of opsctl
// may be ended by a library's log call.
func installFatalGuard() {
	fatalGuardOnce.Do(func() {
		l := logrus.StandardLogger()
		l.AddHook(fatalHook{})
		// Reached only if something calls Exit without logging at the fatal level first.
		l.ExitFunc = func(code int) {
			panic(libraryFatal{msg: fmt.Sprintf("the Argo CD client asked to exit with code %d", code)})
		}
	})
}

// fatalHook raises libraryFatal for a fatal entry, before logrus writes it.
type fatalHook struct{}

// Levels selects the fatal level only; other levels are logged as the library wants.
func (fatalHook) Levels() []logrus.Level { return []logrus.Level{logrus.FatalLevel} }

// Fire panics with the entry's message; guard recovers it.
func (fatalHook) Fire(e *logrus.Entry) error { panic(libraryFatal{msg: e.Message}) }

// guard runs fn, a call into Argo CD's client, and returns a fatal log of the library as a
// *fatalLogError instead of letting it end the process. Any other panic is re-raised.
func guard(fn func() error) (err error) {
	installFatalGuard()
	defer func() {
		if r := recover(); r != nil {
			lf, ok := r.(libraryFatal)
			if !ok {
				panic(r)
			}
			err = &fatalLogError{msg: lf.msg}
		}
	}()
	return fn()
}
