// Package apps implements `opsctl apps`: the Argo CD applications of the platform — list,
// get, sync, wait, history and a live watch — through pkg/argocd, over argocd-server's gRPC API
// or, with --core, straight on the Kubernetes API.
package apps

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/cmdutil"
)

// ClientFunc opens the Argo CD client a command works with; tests and the TUI can supply
// their own.
type ClientFunc func(ctx context.Context) (argocd.Apps, error)

// connFlags are the `apps` flags that override the context's argocd section.
type connFlags struct {
	server, namespace, project string
	core, plaintext, insecure  bool
	grpcWeb                    bool
	timeout                    time.Duration
	cmd                        *cobra.Command
}

// NewCmdApps returns `opsctl apps` with its subcommands.
func NewCmdApps(f *cmdutil.Factory) *cobra.Command {
	cf := &connFlags{}
	cmd := &cobra.Command{
		Use:   "apps <command>",
		Short: "See and drive the platform's Argo CD applications",
		Long: `See and drive the Argo CD applications of the platform.

opsctl reaches argocd-server with the context's argocd section (server, plaintext, insecure,
grpcWeb; token from ARGOCD_AUTH_TOKEN, argocd.tokenEnv or argocd.token), falling back to the
argocd CLI's own login (~/.config/argocd/config). With --core it reads and patches Application
objects on the Kubernetes API of the context's kube section instead, like argocd --core.

Connecting and each request get --argocd-timeout (argocd.timeout, 15s by default): a server
that accepts the connection and never answers fails the command then, with one line.

Applications are those of the project come2us unless --project says otherwise (--project ""
for all).`,
	}
	cf.cmd = cmd
	pf := cmd.PersistentFlags()
	pf.StringVar(&cf.server, "server", "", "argocd-server address host:port, overriding the context")
	pf.BoolVar(&cf.core, "core", false, "read and patch Application objects on the Kubernetes API instead of argocd-server")
	pf.BoolVar(&cf.plaintext, "plaintext", false, "connect without TLS")
	pf.BoolVar(&cf.insecure, "insecure", false, "skip verification of the server's TLS certificate")
	pf.BoolVar(&cf.grpcWeb, "grpc-web", false, "use gRPC-Web (for servers behind proxies without HTTP/2)")
	pf.StringVar(&cf.project, "project", argocd.DefaultProject, "Argo CD project whose applications to show (\"\" for all)")
	pf.StringVar(&cf.namespace, "argocd-namespace", "", "namespace of the Application objects in core mode (default: the context's, else argocd)")
	pf.DurationVar(&cf.timeout, "argocd-timeout", 0, "how long connecting and each request to Argo CD may take (default: the context's argocd.timeout, else 15s)")

	client := cf.clientFunc(f)
	cmd.AddCommand(
		NewCmdList(f, client, nil),
		NewCmdGet(f, client, nil),
		NewCmdSync(f, client, nil),
		NewCmdWait(f, client, nil),
		NewCmdHistory(f, client, nil),
		NewCmdRollback(f, client, nil),
		NewCmdDiff(f, client, nil),
		NewCmdWatch(f, client, nil),
	)
	return cmd
}

// clientFunc resolves the connection: context's argocd section, then flags that were set.
func (cf *connFlags) clientFunc(f *cmdutil.Factory) ClientFunc {
	return func(ctx context.Context) (argocd.Apps, error) {
		_, c, err := f.Context()
		if err != nil {
			return nil, err
		}
		o := argocd.FromContext(c)
		o.Actor = f.Actor()
		fl := cf.cmd.PersistentFlags()
		if fl.Changed("server") {
			o.Server = cf.server
		}
		if fl.Changed("core") {
			o.Core = cf.core
		}
		if fl.Changed("plaintext") {
			o.PlainText = cf.plaintext
		}
		if fl.Changed("insecure") {
			o.Insecure = cf.insecure
		}
		if fl.Changed("grpc-web") {
			o.GRPCWeb = cf.grpcWeb
		}
		if fl.Changed("argocd-namespace") {
			o.Namespace = cf.namespace
		}
		if fl.Changed("argocd-timeout") {
			if cf.timeout <= 0 {
				return nil, cmdutil.FlagErrorf("--argocd-timeout must be positive, got %s", cf.timeout)
			}
			o.Timeout = cf.timeout
		}
		o.Project = cf.project
		if f.Now != nil {
			o.Now = f.Now
		}
		return argocd.New(ctx, o)
	}
}

// withClient opens the client, runs fn and closes the client.
func withClient(ctx context.Context, open ClientFunc, fn func(argocd.Apps) error) error {
	c, err := open(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// ago renders t relative to now ("5m ago"), for tables.
func ago(now time.Time, t *time.Time) string {
	if t == nil {
		return "-"
	}
	d := now.Sub(*t)
	switch {
	case d < 0:
		return t.Format(time.RFC3339)
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func now(f *cmdutil.Factory) time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}
