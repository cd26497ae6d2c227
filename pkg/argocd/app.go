// Package argocd is opsctl's only door to Argo CD. It talks to argocd-server over gRPC with
// Argo CD's own API client (plaintext, TLS, insecure or grpc-web, like the argocd CLI), or, in
// core mode like `argocd --core`, reads and patches Application objects straight from
// Kubernetes with Argo CD's typed clientset.
//
// Everything above this package — `opsctl apps`, the TUI, `canary --wait` — sees only the Apps
// interface and the plain result types in this file, so no other package imports argo-cd and
// its very large dependency graph stays behind one wall. Failures that an operator meets at
// 3 a.m. (server unreachable, token expired or wrong, application unknown) come back as one
// clear line wrapping a sentinel error, never as a stack of gRPC status text.
package argocd

import (
	"context"
	"strings"
	"time"
)

// Apps is what opsctl needs from Argo CD. Both backends (argocd-server over gRPC, and core mode
// on the Kubernetes API) implement it; tests and callers depend on nothing else.
type Apps interface {
	// List returns every application visible to the caller (in the configured project, when
	// one is set), sorted by name.
	List(ctx context.Context) ([]App, error)
	// Get returns one application with its resources, conditions and history.
	Get(ctx context.Context, name string) (App, error)
	// Refresh asks Argo CD to compare the application with git again (hard also bypasses the
	// manifest cache) and returns the application as Argo CD then reports it.
	Refresh(ctx context.Context, name string, hard bool) (App, error)
	// Sync starts a sync operation. It returns once Argo CD accepted the operation, not when
	// the operation finished; use Wait for that.
	Sync(ctx context.Context, name string, opts SyncOptions) (App, error)
	// ManagedResources returns every object the application manages with its state in git
	// and in the cluster.
	ManagedResources(ctx context.Context, name string) ([]ManagedResource, error)
	// RevisionInfo returns the author, date and message of a git revision of the application.
	RevisionInfo(ctx context.Context, name, revision string) (Revision, error)
	// Rollback redeploys the revision of history entry id, as `argocd app rollback` does. It
	// is refused (ErrAutoSync) while the application syncs automatically.
	Rollback(ctx context.Context, name string, id int64, opts RollbackOptions) (App, error)
	// Watch calls fn for every change of the named application, or of every application when
	// name is empty, starting with the current state of each. It blocks until ctx is done
	// (returning nil), fn returns an error (returned as is) or the stream cannot be resumed.
	Watch(ctx context.Context, name string, fn func(Event) error) error
	// Close releases the connection.
	Close() error
}

// Sync statuses reported by Argo CD.
const (
	SyncSynced    = "Synced"
	SyncOutOfSync = "OutOfSync"
	SyncUnknown   = "Unknown"
)

// Health statuses reported by Argo CD.
const (
	HealthHealthy     = "Healthy"
	HealthProgressing = "Progressing"
	HealthDegraded    = "Degraded"
	HealthSuspended   = "Suspended"
	HealthMissing     = "Missing"
	HealthUnknown     = "Unknown"
)

// Operation phases reported by Argo CD.
const (
	PhaseRunning     = "Running"
	PhaseTerminating = "Terminating"
	PhaseFailed      = "Failed"
	PhaseError       = "Error"
	PhaseSucceeded   = "Succeeded"
)

// App is one Argo CD Application as opsctl shows it. Strings come from the server and must go
// through termsafe before they reach a terminal.
type App struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Project   string `json:"project"`

	RepoURL        string `json:"repoURL,omitempty"`
	Path           string `json:"path,omitempty"`
	Chart          string `json:"chart,omitempty"`
	TargetRevision string `json:"targetRevision,omitempty"`
	DestServer     string `json:"destServer,omitempty"`
	DestNamespace  string `json:"destNamespace,omitempty"`
	AutoSync       bool   `json:"autoSync"`

	// Sync is Synced, OutOfSync or Unknown; Revision is the git revision it was compared at.
	Sync     string `json:"sync"`
	Revision string `json:"revision,omitempty"`
	// Health is Healthy, Progressing, Degraded, Suspended, Missing or Unknown.
	Health        string `json:"health"`
	HealthMessage string `json:"healthMessage,omitempty"`

	// LastSync is when the last sync operation finished (nil when none is recorded).
	LastSync *time.Time `json:"lastSync,omitempty"`
	// Operation is the running operation, or the last one when none runs (nil when none).
	Operation *Operation `json:"operation,omitempty"`
	// ReconciledAt is when the controller last compared the application with git.
	ReconciledAt *time.Time `json:"reconciledAt,omitempty"`
	// RefreshPending is true while a refresh requested through the annotation has not been
	// picked up by the controller.
	RefreshPending bool `json:"refreshPending,omitempty"`

	Resources  []Resource   `json:"resources,omitempty"`
	Conditions []Condition  `json:"conditions,omitempty"`
	History    []Deployment `json:"history,omitempty"`
}

// Operation is a sync operation requested, running or finished.
type Operation struct {
	// Phase is Running, Terminating, Failed, Error or Succeeded; "Requested" while Argo CD has
	// accepted it but the controller has not started it.
	Phase      string     `json:"phase"`
	Message    string     `json:"message,omitempty"`
	Revision   string     `json:"revision,omitempty"`
	Prune      bool       `json:"prune,omitempty"`
	DryRun     bool       `json:"dryRun,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// InitiatedBy is the user who asked, or "automated" for the controller's auto-sync.
	InitiatedBy string `json:"initiatedBy,omitempty"`
}

// PhaseRequested is the Operation phase of an accepted operation the controller has not
// started yet.
const PhaseRequested = "Requested"

// Running reports whether the operation is still in progress.
func (o *Operation) Running() bool {
	return o != nil && (o.Phase == PhaseRunning || o.Phase == PhaseTerminating || o.Phase == PhaseRequested)
}

// Summary describes a running or requested operation for a table cell ("sync Running
// (alice)"), and is empty when none runs.
func (o *Operation) Summary() string {
	if !o.Running() {
		return ""
	}
	s := "sync " + o.Phase
	if o.InitiatedBy != "" {
		s += " (" + o.InitiatedBy + ")"
	}
	return s
}

// Failed reports whether the operation finished without success.
func (o *Operation) Failed() bool {
	return o != nil && (o.Phase == PhaseFailed || o.Phase == PhaseError)
}

// Resource is one Kubernetes object the application manages.
type Resource struct {
	Group           string `json:"group,omitempty"`
	Kind            string `json:"kind"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name"`
	Sync            string `json:"sync"`
	Health          string `json:"health,omitempty"`
	HealthMessage   string `json:"healthMessage,omitempty"`
	RequiresPruning bool   `json:"requiresPruning,omitempty"`
	Hook            bool   `json:"hook,omitempty"`
}

// Condition is an application condition: an error or warning Argo CD raised about it.
type Condition struct {
	Type    string     `json:"type"`
	Message string     `json:"message"`
	Since   *time.Time `json:"since,omitempty"`
}

// Deployment is one entry of an application's sync history.
type Deployment struct {
	ID          int64      `json:"id"`
	Revision    string     `json:"revision"`
	DeployedAt  time.Time  `json:"deployedAt"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	InitiatedBy string     `json:"initiatedBy,omitempty"`
	Source      string     `json:"source,omitempty"`
	// Commit is the revision's commit, when read (Commits).
	Commit *Revision `json:"commit,omitempty"`
}

// SyncOptions shape a sync operation.
type SyncOptions struct {
	// Revision syncs to this revision instead of the application's target revision.
	Revision string
	// Prune deletes resources that are no longer in git.
	Prune bool
	// DryRun lets Argo CD validate the sync without changing the cluster.
	DryRun bool
}

// Event types of a watch.
const (
	EventAdded    = "ADDED"
	EventModified = "MODIFIED"
	EventDeleted  = "DELETED"
)

// Event is one change seen by Watch.
type Event struct {
	Type string `json:"type"`
	App  App    `json:"app"`
}

// ShortRevision shortens a git commit hash to 7 characters and leaves anything else (a Helm
// chart version, a branch) as it is.
func ShortRevision(rev string) string {
	if len(rev) == 40 && isHex(rev) {
		return rev[:7]
	}
	return rev
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// RevisionMatches reports whether the revision Argo CD reports equals want; want may be an
// abbreviated commit hash of at least 7 characters.
func RevisionMatches(got, want string) bool {
	if got == want {
		return true
	}
	if len(want) >= 7 && len(want) < len(got) && isHex(want) && isHex(got) {
		return strings.EqualFold(got[:len(want)], want)
	}
	return false
}
