package argocd

import (
	"sort"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fromApplication maps Argo CD's Application to opsctl's plain App.
func fromApplication(a *v1alpha1.Application) App {
	src := a.Spec.GetSource()
	out := App{
		Name:           a.Name,
		Namespace:      a.Namespace,
		Project:        a.Spec.GetProject(),
		RepoURL:        src.RepoURL,
		Path:           src.Path,
		Chart:          src.Chart,
		TargetRevision: src.TargetRevision,
		Sync:           string(a.Status.Sync.Status),
		Revision:       a.Status.Sync.Revision,
		Health:         string(a.Status.Health.Status),
		HealthMessage:  a.Status.Health.Message,
		ReconciledAt:   timePtr(a.Status.ReconciledAt),
	}
	if out.Revision == "" && len(a.Status.Sync.Revisions) > 0 {
		out.Revision = a.Status.Sync.Revisions[0]
	}
	if a.Spec.Destination.Server != "" {
		out.DestServer = a.Spec.Destination.Server
	} else {
		out.DestServer = a.Spec.Destination.Name
	}
	out.DestNamespace = a.Spec.Destination.Namespace
	out.AutoSync = a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.IsAutomatedSyncEnabled()
	if out.Sync == "" {
		out.Sync = SyncUnknown
	}
	if out.Health == "" {
		out.Health = HealthUnknown
	}
	_, out.RefreshPending = a.Annotations[v1alpha1.AnnotationKeyRefresh]

	out.Operation = operationOf(a)
	if st := a.Status.OperationState; st != nil && st.FinishedAt != nil && st.Operation.Sync != nil {
		out.LastSync = timePtr(st.FinishedAt)
	}
	if out.LastSync == nil {
		if n := len(a.Status.History); n > 0 {
			t := a.Status.History.LastRevisionHistory().DeployedAt.Time.UTC()
			out.LastSync = &t
		}
	}

	for _, r := range a.Status.Resources {
		res := Resource{
			Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name,
			Sync: string(r.Status), RequiresPruning: r.RequiresPruning, Hook: r.Hook,
		}
		if r.Health != nil {
			res.Health = string(r.Health.Status)
			res.HealthMessage = r.Health.Message
		}
		out.Resources = append(out.Resources, res)
	}
	for _, c := range a.Status.Conditions {
		out.Conditions = append(out.Conditions, Condition{Type: c.Type, Message: c.Message, Since: timePtr(c.LastTransitionTime)})
	}
	for _, h := range a.Status.History {
		d := Deployment{
			ID:         h.ID,
			Revision:   h.Revision,
			DeployedAt: h.DeployedAt.Time.UTC(),
			StartedAt:  timePtr(h.DeployStartedAt),
			Source:     sourceString(h.Source),
		}
		if d.Revision == "" && len(h.Revisions) > 0 {
			d.Revision = h.Revisions[0]
		}
		if d.Source == "" && len(h.Sources) > 0 {
			d.Source = sourceString(h.Sources[0])
		}
		d.InitiatedBy = initiator(h.InitiatedBy)
		out.History = append(out.History, d)
	}
	sort.Slice(out.History, func(i, j int) bool { return out.History[i].ID < out.History[j].ID })
	return out
}

// operationOf returns the requested operation when the controller has not picked it up yet,
// else the operation state (running or last finished).
func operationOf(a *v1alpha1.Application) *Operation {
	st := a.Status.OperationState
	if a.Operation != nil && (st == nil || st.Phase == "" || !st.Phase.Running()) {
		// The spec operation is cleared when the controller starts it; while it is set and no
		// operation runs, it has been requested but not yet started.
		op := &Operation{Phase: PhaseRequested, InitiatedBy: initiator(a.Operation.InitiatedBy)}
		if s := a.Operation.Sync; s != nil {
			op.Revision, op.Prune, op.DryRun = s.Revision, s.Prune, s.DryRun
		}
		return op
	}
	if st == nil {
		return nil
	}
	op := &Operation{
		Phase:       string(st.Phase),
		Message:     st.Message,
		StartedAt:   timePtr(&st.StartedAt),
		FinishedAt:  timePtr(st.FinishedAt),
		InitiatedBy: initiator(st.Operation.InitiatedBy),
	}
	if s := st.Operation.Sync; s != nil {
		op.Revision, op.Prune, op.DryRun = s.Revision, s.Prune, s.DryRun
	}
	if st.SyncResult != nil && st.SyncResult.Revision != "" {
		op.Revision = st.SyncResult.Revision
	}
	return op
}

func initiator(i v1alpha1.OperationInitiator) string {
	if i.Automated {
		return "automated"
	}
	return i.Username
}

func sourceString(s v1alpha1.ApplicationSource) string {
	switch {
	case s.RepoURL == "":
		return ""
	case s.Chart != "":
		return s.RepoURL + " " + s.Chart + "@" + s.TargetRevision
	case s.Path != "":
		return s.RepoURL + "/" + s.Path + "@" + s.TargetRevision
	}
	return s.RepoURL + "@" + s.TargetRevision
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.Time.UTC()
	return &u
}
