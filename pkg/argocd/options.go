package argocd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v3/util/localconfig"

	"github.com/come2us/opsctl/pkg/config"
)

// Defaults for Options left empty.
const (
	// DefaultProject is the Argo CD project of the platform's applications.
	DefaultProject = "come2us"
	// DefaultNamespace is where Argo CD and its Application objects live (core mode).
	DefaultNamespace = "argocd"
	// DefaultTimeout bounds connecting and each request (not a watch), so a server that
	// accepts connections and never answers fails a command in seconds rather than hanging it.
	DefaultTimeout = 15 * time.Second
)

// Options say how to reach Argo CD. Build them with FromContext and adjust with flags.
type Options struct {
	// Server is argocd-server's host:port (gRPC). Empty means the argocd CLI's current
	// context, if any.
	Server    string
	PlainText bool
	Insecure  bool
	GRPCWeb   bool
	// Token authenticates to argocd-server. Empty means the argocd CLI's token for Server.
	Token string

	// Core reads Application objects from Kubernetes instead of argocd-server.
	Core bool
	// Namespace holds the Application objects in core mode (default "argocd").
	Namespace string
	// Kube selects the kubeconfig and context for core mode.
	Kube config.Kube

	// Project restricts every call to one Argo CD project; empty means all projects. With a
	// project set, argocd-server answers "not found" for an unknown application instead of the
	// ambiguous "permission denied".
	Project string

	// LocalConfigPath is the argocd CLI's config file; empty means its default location
	// (~/.config/argocd/config), "-" means do not read it.
	LocalConfigPath string
	// Actor is recorded as the user who started an operation in core mode.
	Actor string
	// UserAgent is sent to argocd-server.
	UserAgent string
	// Now is the clock for the token expiry check (default time.Now).
	Now func() time.Time
	// Timeout bounds connecting and each List, Get, Refresh and Sync (default DefaultTimeout);
	// a Watch must deliver its first event within it.
	Timeout time.Duration
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// FromContext returns the Options of an opsctl context's argocd and kube sections. The token
// is ARGOCD_AUTH_TOKEN, else the variable named by tokenEnv, else token; when all are empty New
// falls back to the argocd CLI's own login.
func FromContext(c *config.Context) Options {
	a := c.ArgoCD
	return Options{
		Server:    a.Server,
		PlainText: a.PlainText,
		Insecure:  a.Insecure,
		GRPCWeb:   a.GRPCWeb,
		Token:     a.AuthToken(),
		Core:      a.Core,
		Namespace: a.Namespace,
		Kube:      c.Kube,
		Project:   DefaultProject,
		Timeout:   c.ArgoCDTimeout(),
	}
}

// New connects to Argo CD: argocd-server over gRPC, or the Kubernetes API in core mode.
func New(ctx context.Context, o Options) (Apps, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := o.fromArgoCDConfig(); err != nil {
		return nil, err
	}
	var apps Apps
	var err error
	if o.Core {
		apps, err = newCoreFromKubeconfig(o)
	} else {
		apps, err = dialServer(ctx, o)
	}
	if err != nil {
		return nil, err
	}
	return &bounded{Apps: apps, timeout: o.timeout()}, nil
}

// fromArgoCDConfig fills what the opsctl context left open from the argocd CLI's config file:
// with no server, its current context (server, TLS mode, token, core); with a server, the
// token of a context that logged in to that same server.
func (o *Options) fromArgoCDConfig() error {
	if o.Core || (o.Server != "" && o.Token != "") || o.LocalConfigPath == "-" {
		return nil
	}
	path := o.LocalConfigPath
	if path == "" {
		p, err := localconfig.DefaultLocalConfigPath()
		if err != nil {
			return nil // no home directory: nothing to fall back on
		}
		path = p
	}
	lc, err := localconfig.ReadLocalConfig(path)
	if err != nil {
		return fmt.Errorf("argocd CLI config %s: %s", path, oneLine(err.Error()))
	}
	if lc == nil {
		return nil
	}
	if o.Server == "" {
		cur, err := lc.ResolveContext("")
		if err != nil {
			return nil // no usable current context; New reports the missing server
		}
		o.Server = cur.Server.Server
		o.PlainText = o.PlainText || cur.Server.PlainText
		o.Insecure = o.Insecure || cur.Server.Insecure
		o.GRPCWeb = o.GRPCWeb || cur.Server.GRPCWeb
		o.Core = o.Core || cur.Server.Core
		if o.Token == "" {
			o.Token = cur.User.AuthToken
		}
		return nil
	}
	if o.Token != "" {
		return nil
	}
	// Prefer the current context, then any context naming the same server.
	names := []string{lc.CurrentContext}
	for _, c := range lc.Contexts {
		names = append(names, c.Name)
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		c, err := lc.ResolveContext(n)
		if err == nil && sameServer(c.Server.Server, o.Server) {
			o.Token = c.User.AuthToken
			return nil
		}
	}
	return nil
}

func sameServer(a, b string) bool {
	norm := func(s string) string {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
		return strings.TrimSuffix(s, "/")
	}
	return norm(a) == norm(b)
}

// loginAdvice is what to do when the server rejects the token.
func loginAdvice(server string) string {
	return fmt.Sprintf("run `argocd login %s` or set ARGOCD_AUTH_TOKEN", server)
}

// tokenExpiry returns the expiry of a JWT, and false when token is not a JWT or has none. The
// signature is not checked: this only spares a round trip for a token that cannot work.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0).UTC(), true
}

// checkToken refuses a token whose expiry has passed, before any request is sent.
func (o Options) checkToken(what string) error {
	exp, ok := tokenExpiry(o.Token)
	if !ok || o.Now().Before(exp) {
		return nil
	}
	return &Error{
		Kind: ErrTokenExpired,
		Msg:  fmt.Sprintf("the token for %s expired at %s; %s", what, exp.Format(time.RFC3339), loginAdvice(o.Server)),
	}
}

// errNoServer explains how to configure a server.
func errNoServer() error {
	return &Error{Kind: ErrNoServer, Msg: "no Argo CD server configured: set argocd.server in the opsctl context, run `argocd login`, or use --core"}
}
