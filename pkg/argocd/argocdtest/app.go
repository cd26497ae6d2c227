package argocdtest

import (
	"fmt"
	"strings"
)

// App is the one Application fixture of the tests: a platform application, <service>-service-
// <env> of the saga-service chart, as Argo CD reports it — its sync and health, and its last
// sync operation. YAML renders it for Start, Apply and the simulated cluster.
type App struct {
	// Service and Env name the application (default "order" and "prod").
	Service, Env string
	// Automated sets the automated sync policy (prune, self-heal).
	Automated bool
	// Revision is the revision the application is synced to; Sync and Health its statuses
	// (default Synced and Healthy), HealthMessage the health's message.
	Revision, Sync, Health, HealthMessage string
	// Operation is the last sync operation; nil for none.
	Operation *Operation
}

// Operation is an application's last sync operation.
type Operation struct {
	// Phase is Running, Succeeded, Failed...; Message Argo CD's message for it.
	Phase, Message string
	// Revision is what the operation synced (default the application's Revision).
	Revision string
	// Started and Finished are RFC 3339 times; an empty Finished leaves it out (running).
	Started, Finished string
	// InitiatedBy is the user who started it; empty for an automated sync.
	InitiatedBy string
}

// YAML renders the application.
func (a App) YAML() string {
	svc, env := a.Service, a.Env
	if svc == "" {
		svc = "order"
	}
	if env == "" {
		env = "prod"
	}
	syncStatus, health := a.Sync, a.Health
	if syncStatus == "" {
		syncStatus = "Synced"
	}
	if health == "" {
		health = "Healthy"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %[1]s-service-%[2]s
  namespace: argocd
spec:
  project: come2us
  source:
    repoURL: https://github.com/come2us/opsctl.git
    path: gitops/charts/saga-service
    targetRevision: main
  destination:
    server: https://kubernetes.default.svc
    namespace: come2us-%[2]s
`, svc, env)
	if a.Automated {
		b.WriteString("  syncPolicy:\n    automated:\n      prune: true\n      selfHeal: true\n")
	}
	fmt.Fprintf(&b, "status:\n  sync:\n    status: %s\n    revision: %s\n  health:\n    status: %s\n    message: %q\n",
		syncStatus, a.Revision, health, a.HealthMessage)
	if op := a.Operation; op != nil {
		rev := op.Revision
		if rev == "" {
			rev = a.Revision
		}
		fmt.Fprintf(&b, "  operationState:\n    phase: %s\n    message: %q\n    startedAt: %q\n", op.Phase, op.Message, op.Started)
		if op.Finished != "" {
			fmt.Fprintf(&b, "    finishedAt: %q\n", op.Finished)
		}
		fmt.Fprintf(&b, "    operation:\n      sync:\n        revision: %s\n      initiatedBy:\n", rev)
		if op.InitiatedBy == "" {
			b.WriteString("        automated: true\n")
		} else {
			fmt.Fprintf(&b, "        username: %s\n", op.InitiatedBy)
		}
		fmt.Fprintf(&b, "    syncResult:\n      revision: %s\n", rev)
	}
	return b.String()
}
