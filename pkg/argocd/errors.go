package argocd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors callers branch on. Every error this package returns for these states wraps
// one of them in an *Error whose message is a single line saying what happened and what to do.
var (
	// ErrNoServer means no Argo CD server is configured and core mode is off.
	ErrNoServer = errors.New("no Argo CD server configured")
	// ErrUnreachable means the server (or, in core mode, the Kubernetes API) did not answer.
	ErrUnreachable = errors.New("Argo CD unreachable")
	// ErrUnauthenticated means the server rejected the token, or no token was given.
	ErrUnauthenticated = errors.New("Argo CD token rejected")
	// ErrTokenExpired means the token's expiry has passed; it also matches ErrUnauthenticated.
	ErrTokenExpired = fmt.Errorf("%w: expired", ErrUnauthenticated)
	// ErrPermissionDenied means the token is valid but may not do this.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrAppNotFound means no application of that name exists (in the configured project).
	ErrAppNotFound = errors.New("application not found")
	// ErrOperationInProgress means a sync was refused because another operation runs.
	ErrOperationInProgress = errors.New("another operation is already in progress")
)

// Error is a failure talking to Argo CD, reduced to one line.
type Error struct {
	// Kind is the sentinel this error matches with errors.Is (nil for other failures).
	Kind error
	// Msg is the whole one-line message.
	Msg string
	// Cause is the underlying error, kept for logs and errors.As; it is not printed.
	Cause error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is match the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// endpoint describes where requests go, for messages.
type endpoint struct {
	// what is "Argo CD at host:port" or "the Kubernetes API at https://..." (core mode).
	what string
	// login is the advice for a rejected credential.
	login string
	// project scopes applications, for the not-found message.
	project string
	// timeout is how long one request may take, for the "did not answer" message (0: unknown).
	timeout time.Duration
}

// inTime says how long the server had: "within 15s", or "in time" when unknown.
func (ep endpoint) inTime() string {
	if ep.timeout > 0 {
		return fmt.Sprintf("within %s", ep.timeout)
	}
	return "in time"
}

// wrap turns err from operation op on application app (may be empty) into an *Error. Context
// cancellation passes through unchanged so callers can tell an interrupt from a failure.
func (ep endpoint) wrap(op, app string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	subject := op
	if app != "" {
		subject = fmt.Sprintf("%s %s", op, app)
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return ep.fromStatus(subject, app, st, err)
	}
	if isAPIStatus(err) {
		return ep.fromKube(subject, app, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: ErrUnreachable, Msg: fmt.Sprintf("%s: %s did not answer %s", subject, ep.what, ep.inTime()), Cause: err}
	}
	if cause := dialCause(err); cause != "" {
		return &Error{Kind: ErrUnreachable, Msg: fmt.Sprintf("cannot reach %s: %s", ep.what, cause), Cause: err}
	}
	return &Error{Msg: fmt.Sprintf("%s: %s", subject, oneLine(err.Error())), Cause: err}
}

func isAPIStatus(err error) bool {
	var s apierrors.APIStatus
	return errors.As(err, &s)
}

func (ep endpoint) fromStatus(subject, app string, st *status.Status, err error) error {
	msg := oneLine(st.Message())
	switch st.Code() {
	case codes.Unavailable:
		cause := dialCause(err)
		if cause == "" {
			cause = "connection lost"
		}
		return &Error{Kind: ErrUnreachable, Msg: fmt.Sprintf("cannot reach %s: %s", ep.what, cause), Cause: err}
	case codes.DeadlineExceeded:
		return &Error{Kind: ErrUnreachable, Msg: fmt.Sprintf("%s: %s did not answer %s", subject, ep.what, ep.inTime()), Cause: err}
	case codes.Unauthenticated:
		if strings.Contains(strings.ToLower(msg), "expired") {
			return &Error{Kind: ErrTokenExpired, Msg: fmt.Sprintf("%s rejected the token: it has expired; %s", ep.what, ep.login), Cause: err}
		}
		return &Error{Kind: ErrUnauthenticated, Msg: fmt.Sprintf("%s rejected the token: %s; %s", ep.what, tokenReason(msg), ep.login), Cause: err}
	case codes.NotFound:
		if app != "" {
			return ep.notFound(app, err)
		}
	case codes.PermissionDenied:
		if app != "" {
			return &Error{Kind: ErrPermissionDenied, Msg: fmt.Sprintf("%s: permission denied by %s (Argo CD also answers this for an application that does not exist)", subject, ep.what), Cause: err}
		}
		return &Error{Kind: ErrPermissionDenied, Msg: fmt.Sprintf("%s: permission denied by %s", subject, ep.what), Cause: err}
	case codes.FailedPrecondition:
		if strings.Contains(msg, "another operation is already in progress") {
			return &Error{Kind: ErrOperationInProgress, Msg: fmt.Sprintf("%s: another operation is already in progress; nothing was started", subject), Cause: err}
		}
	}
	return &Error{Msg: fmt.Sprintf("%s: %s", subject, msg), Cause: err}
}

func (ep endpoint) fromKube(subject, app string, err error) error {
	switch {
	case apierrors.IsNotFound(err) && app != "":
		return ep.notFound(app, err)
	case apierrors.IsUnauthorized(err):
		return &Error{Kind: ErrUnauthenticated, Msg: fmt.Sprintf("%s rejected the credentials of the kube context; %s", ep.what, ep.login), Cause: err}
	case apierrors.IsForbidden(err):
		return &Error{Kind: ErrPermissionDenied, Msg: fmt.Sprintf("%s: permission denied by %s", subject, ep.what), Cause: err}
	case apierrors.IsConflict(err):
		return &Error{Msg: fmt.Sprintf("%s: the application changed meanwhile; nothing was changed, try again", subject), Cause: err}
	}
	return &Error{Msg: fmt.Sprintf("%s: %s", subject, oneLine(err.Error())), Cause: err}
}

func (ep endpoint) notFound(app string, err error) error {
	where := ep.what
	if ep.project != "" {
		where += fmt.Sprintf(" (project %s)", ep.project)
	}
	return &Error{Kind: ErrAppNotFound, Msg: fmt.Sprintf("application %q not found in %s", app, where), Cause: err}
}

// tokenReason condenses argocd-server's Unauthenticated messages ("no session information",
// "invalid session: token signature is invalid") to what an operator needs.
func tokenReason(msg string) string {
	l := strings.ToLower(msg)
	switch {
	case strings.Contains(l, "no session"):
		return "no token was sent"
	case msg == "":
		return "invalid token"
	}
	return "invalid token (" + msg + ")"
}

// dialCause extracts the reason a connection failed ("connection refused", "no such host",
// "i/o timeout") from a dial error, or "" when err is not one.
func dialCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return "DNS lookup failed for " + dns.Name
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "connection timed out"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return oneLine(op.Err.Error())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed by the server"
	}
	s := err.Error()
	for _, known := range []string{"connection refused", "no such host", "connection reset by peer", "i/o timeout", "network is unreachable", "error reading server preface"} {
		if strings.Contains(s, known) {
			return known
		}
	}
	return ""
}

// oneLine keeps the first line of a message and drops gRPC's "rpc error: code = X desc ="
// prefix when it leaked into a nested message.
func oneLine(s string) string {
	if i := strings.LastIndex(s, "desc = "); i >= 0 {
		s = s[i+len("desc = "):]
	}
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
