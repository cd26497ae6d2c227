package argosim

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	synccommon "github.com/argoproj/argo-cd/gitops-engine/v3/pkg/sync/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// Sync options the simulation honours.
const (
	syncOptionPruneLast       = "PruneLast=true"
	syncOptionCreateNamespace = "CreateNamespace=true"
)

// defaultHistoryLimit is Argo CD's default spec.revisionHistoryLimit.
const defaultHistoryLimit = 10

// task is one step of a sync: apply a rendered object or prune a live one.
type task struct {
	wave  int
	prune bool
	kind  kubesim.Kind
	obj   *unstructured.Unstructured // the rendered object (apply) or the live one (prune)
	live  *unstructured.Unstructured // the live object, nil when it does not exist
}

// runOperation runs a sync operation and records it: first as Running (clearing the requested
// operation when it came from the Application's spec), then as Succeeded or Failed with its
// result, and, unless it was a dry run that failed nowhere, in the history.
func (s *Server) runOperation(ctx context.Context, app *v1alpha1.Application, op v1alpha1.Operation, requested bool) error {
	started := metav1.Now()
	if op.Sync == nil {
		op.Sync = &v1alpha1.SyncOperation{}
	}
	running := &v1alpha1.OperationState{Operation: op, Phase: synccommon.OperationRunning, Message: "simulated sync in progress", StartedAt: started}
	if _, err := s.updateApp(ctx, app.Name, func(a *v1alpha1.Application) (bool, error) {
		if requested {
			if a.Operation == nil || !reflect.DeepEqual(*a.Operation, op) {
				return false, errOperationChanged
			}
			a.Operation = nil
		}
		a.Status.OperationState = running
		return true, nil
	}); err != nil {
		if errors.Is(err, errOperationChanged) {
			return nil // someone replaced the request meanwhile; the next reconcile runs it
		}
		return fmt.Errorf("start sync of %s: %w", app.Name, err)
	}

	phase, message, result := s.execute(ctx, app, op)
	finished := metav1.Now()
	s.log.Info("sync finished", "app", app.Name, "phase", phase, "revision", shortSHA(resultRevision(result)), "message", message,
		"automated", op.InitiatedBy.Automated, "dryRun", op.Sync.DryRun)
	_, err := s.updateApp(ctx, app.Name, func(a *v1alpha1.Application) (bool, error) {
		a.Status.OperationState = &v1alpha1.OperationState{
			Operation: op, Phase: phase, Message: message, SyncResult: result, StartedAt: started, FinishedAt: &finished,
		}
		if phase == synccommon.OperationSucceeded && !op.Sync.DryRun {
			a.Status.History = appendHistory(a, result, op.InitiatedBy, started, finished)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("record sync of %s: %w", app.Name, err)
	}
	return nil
}

var errOperationChanged = errors.New("the requested operation changed")

func resultRevision(r *v1alpha1.SyncOperationResult) string {
	if r == nil {
		return ""
	}
	return r.Revision
}

func appendHistory(a *v1alpha1.Application, r *v1alpha1.SyncOperationResult, by v1alpha1.OperationInitiator, started, finished metav1.Time) v1alpha1.RevisionHistories {
	h := a.Status.History
	var id int64
	if n := len(h); n > 0 {
		id = h[n-1].ID + 1
	}
	h = append(h, v1alpha1.RevisionHistory{
		ID: id, Revision: r.Revision, Source: r.Source, DeployedAt: finished, DeployStartedAt: &started, InitiatedBy: by,
	})
	limit := defaultHistoryLimit
	if a.Spec.RevisionHistoryLimit != nil && *a.Spec.RevisionHistoryLimit > 0 {
		limit = int(*a.Spec.RevisionHistoryLimit)
	}
	if len(h) > limit {
		h = h[len(h)-limit:]
	}
	return h
}

// execute performs a sync and returns its phase, message and result. Nothing is applied when
// the revision cannot be resolved or rendered.
func (s *Server) execute(ctx context.Context, app *v1alpha1.Application, op v1alpha1.Operation) (synccommon.OperationPhase, string, *v1alpha1.SyncOperationResult) {
	src := app.Spec.GetSource()
	rev := op.Sync.Revision
	if rev == "" {
		rev = revisionOrHead(src.TargetRevision)
	}
	commit, err := s.git.resolve(ctx, rev)
	if err != nil {
		return synccommon.OperationFailed, "ComparisonError: " + err.Error(), nil
	}
	result := &v1alpha1.SyncOperationResult{Revision: commit, Source: src}
	m, err := s.renderAt(ctx, app, commit)
	if err != nil {
		return synccommon.OperationFailed, "ComparisonError: " + err.Error() + "; nothing was applied", result
	}
	var opts v1alpha1.SyncOptions
	if app.Spec.SyncPolicy != nil {
		opts = append(opts, app.Spec.SyncPolicy.SyncOptions...)
	}
	opts = append(opts, op.Sync.SyncOptions...)
	tasks := planSync(m, s.liveObjects(app.Name), opts.HasOption(syncOptionPruneLast), s.kube.KindFor)
	dry := op.Sync.DryRun

	if opts.HasOption(syncOptionCreateNamespace) && app.Spec.Destination.Namespace != "" && !dry {
		if err := s.ensureNamespace(app.Spec.Destination.Namespace); err != nil {
			return synccommon.OperationFailed, "one or more objects failed to apply, reason: " + err.Error(), result
		}
	}
	var failed []string
	for _, t := range tasks {
		if err := ctx.Err(); err != nil {
			return synccommon.OperationFailed, "sync interrupted: " + err.Error(), result
		}
		rr := v1alpha1.ResourceResult{
			Group: t.kind.Group, Version: t.kind.Version, Kind: t.kind.Kind, Namespace: t.obj.GetNamespace(), Name: t.obj.GetName(),
			SyncPhase: synccommon.SyncPhaseSync, Images: podImages(t.obj),
		}
		switch {
		case t.prune && !op.Sync.Prune:
			rr.Status, rr.Message = synccommon.ResultCodePruneSkipped, "ignored (requires pruning)"
		case t.prune:
			rr.Status, rr.Message = synccommon.ResultCodePruned, "pruned"
			if !dry {
				if err := s.kube.Delete(t.kind.GVR(), t.obj.GetNamespace(), t.obj.GetName()); err != nil && !errors.Is(err, kubesim.ErrNotFound) {
					rr.Status, rr.Message = synccommon.ResultCodeSyncFailed, err.Error()
				}
			}
		case t.live != nil && inSync(desired{obj: t.obj, kind: t.kind}, t.live, app.Spec.IgnoreDifferences):
			rr.Status, rr.Message = synccommon.ResultCodeSynced, strings.ToLower(t.kind.Kind)+"/"+t.obj.GetName()+" unchanged"
		default:
			verb := "configured"
			if t.live == nil {
				verb = "created"
			}
			rr.Status, rr.Message = synccommon.ResultCodeSynced, strings.ToLower(t.kind.Kind)+"/"+t.obj.GetName()+" "+verb
			if !dry {
				if err := s.applyObject(t, app.Spec.IgnoreDifferences); err != nil {
					rr.Status, rr.Message = synccommon.ResultCodeSyncFailed, err.Error()
				}
			}
		}
		if dry && rr.Status != synccommon.ResultCodeSyncFailed {
			rr.Message += " (dry run)"
		}
		if rr.Status == synccommon.ResultCodeSyncFailed {
			failed = append(failed, fmt.Sprintf("%s %s: %s", t.kind.Kind, t.obj.GetName(), rr.Message))
		}
		rr.HookPhase = synccommon.OperationSucceeded
		if rr.Status == synccommon.ResultCodeSyncFailed {
			rr.HookPhase = synccommon.OperationFailed
		}
		result.Resources = append(result.Resources, &rr)
		if len(failed) > 0 {
			break // later waves must not run after a failure, as in Argo CD
		}
	}
	switch {
	case len(failed) > 0:
		return synccommon.OperationFailed, "one or more objects failed to apply, reason: " + strings.Join(failed, "; "), result
	case dry:
		return synccommon.OperationSucceeded, "successfully synced (dry run; nothing was changed)", result
	}
	return synccommon.OperationSucceeded, "successfully synced (all tasks run)", result
}

// planSync orders a sync: rendered objects in their waves, then, in each wave, prunes of live
// objects git no longer renders (in reverse kind order). With PruneLast every prune runs after
// the last wave: a rollback moves the VirtualService (wave 1) before the canary Deployment
// (wave 0) is deleted, so no route points at a subset without pods.
func planSync(m *manifests, live map[string]*unstructured.Unstructured, pruneLast bool, kindFor func(apiVersion, kind string) (kubesim.Kind, bool)) []task {
	var tasks []task
	wanted := map[string]bool{}
	maxWave := 0
	for _, d := range m.objects {
		id := d.obj.GetAnnotations()[annotationTrackingID]
		wanted[id] = true
		tasks = append(tasks, task{wave: d.wave, kind: d.kind, obj: d.obj, live: live[id]})
		maxWave = max(maxWave, d.wave)
	}
	var prunes []task
	for id, l := range live {
		if wanted[id] {
			continue
		}
		wave := 0
		if w, err := strconv.Atoi(strings.TrimSpace(l.GetAnnotations()[annotationSyncWave])); err == nil {
			wave = w
		}
		maxWave = max(maxWave, wave)
		k, ok := kindFor(l.GetAPIVersion(), l.GetKind())
		if !ok {
			continue // liveObjects only lists served kinds
		}
		prunes = append(prunes, task{wave: wave, prune: true, kind: k, obj: l, live: l})
	}
	if pruneLast {
		for i := range prunes {
			prunes[i].wave = maxWave + 1
		}
	}
	tasks = append(tasks, prunes...)
	sort.SliceStable(tasks, func(i, j int) bool {
		a, b := tasks[i], tasks[j]
		if a.wave != b.wave {
			return a.wave < b.wave
		}
		if a.prune != b.prune {
			return !a.prune
		}
		ra, rb := kindRank(a.kind.Kind), kindRank(b.kind.Kind)
		if a.prune && ra != rb {
			return ra > rb
		}
		if ra != rb {
			return ra < rb
		}
		return a.obj.GetNamespace()+"/"+a.obj.GetName() < b.obj.GetNamespace()+"/"+b.obj.GetName()
	})
	return tasks
}

// applyObject writes a rendered object, keeping from the live copy what Argo CD would not
// touch: status and the fields named by ignoreDifferences (the HPA's spec.replicas).
func (s *Server) applyObject(t task, ignores []v1alpha1.ResourceIgnoreDifferences) error {
	obj := t.obj.DeepCopy()
	if t.live != nil {
		if st, ok := t.live.Object["status"]; ok {
			obj.Object["status"] = st
		}
		for _, p := range ignoredPointers(ignores, t.kind.Group, t.kind.Kind, obj.GetNamespace(), obj.GetName()) {
			if v, ok := getPointer(t.live.Object, p); ok {
				setPointer(obj.Object, p, v)
			}
		}
	}
	if _, err := s.kube.Apply(obj); err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", t.kind.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
