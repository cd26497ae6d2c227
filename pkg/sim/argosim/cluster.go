package argosim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// The simulated cluster's controllers: what kube-controller-manager and the kubelet would do
// for the objects the chart renders, reduced to what opsctl looks at.
//
//   - HorizontalPodAutoscaler: sets its target Deployment's spec.replicas to minReplicas (no
//     metrics exist, so it never scales out) and reports AbleToScale/ScalingActive, which is
//     what Argo CD's HPA health check reads.
//   - Deployment: keeps one Pod per replica for the current pod template (labelled with the
//     template's labels and pod-template-hash), replaces Pods of an older template once the new
//     ones are ready (maxUnavailable 0), and writes status (replicas, updated, ready, available,
//     observedGeneration, Available/Progressing conditions). A rollout that does not complete
//     within the progress deadline gets ProgressDeadlineExceeded, which Argo CD reports as
//     Degraded.
//   - Pod: Running at once, Ready after the configured delay, unless a fault marks its
//     Deployment not ready (SetCanaryReady), in which case it stays Running but not Ready.

var (
	gvrDeployment = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrHPA        = schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}
	gvrPod        = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// Annotations the simulated kubelet writes on Pods.
const (
	annotationReadyAt   = "sandbox.opsctl.io/ready-at"
	annotationSimulated = "sandbox.opsctl.io/simulated"
	labelTemplateHash   = "pod-template-hash"
)

// simulatedNote is the value of the "simulated" annotation on everything argosim creates.
const simulatedNote = "simulated by opsctl sandbox; not a real Argo CD or cluster"

// defaultProgressDeadline is Kubernetes' default spec.progressDeadlineSeconds.
const defaultProgressDeadline = 600 * time.Second

type cluster struct {
	kube             *kubesim.Server
	readyDelay       time.Duration
	progressDeadline time.Duration // 0: the Deployment's own, else Kubernetes' default
	log              *slog.Logger
	now              func() time.Time

	mu       sync.Mutex
	notReady map[string]string // "namespace/deployment" → reason its pods are not ready
	kick     chan struct{}
}

func newCluster(kube *kubesim.Server, readyDelay, progressDeadline time.Duration, log *slog.Logger) *cluster {
	return &cluster{kube: kube, readyDelay: readyDelay, progressDeadline: progressDeadline, log: log, now: time.Now,
		notReady: map[string]string{}, kick: make(chan struct{}, 1)}
}

// setReady turns the not-ready fault of a Deployment's pods on (ready=false) or off.
func (c *cluster) setReady(namespace, deployment string, ready bool, reason string) {
	c.mu.Lock()
	key := namespace + "/" + deployment
	if ready {
		delete(c.notReady, key)
	} else {
		c.notReady[key] = reason
	}
	c.mu.Unlock()
	c.poke()
}

func (c *cluster) faultOf(namespace, deployment string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.notReady[namespace+"/"+deployment]
	return r, ok
}

func (c *cluster) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run reconciles on every change of a Deployment, HPA or Pod, on pokes, and when the next pod
// becomes ready or a rollout deadline passes, until ctx ends.
func (c *cluster) run(ctx context.Context) {
	events, cancel := c.kube.Watch()
	defer func() { cancel() }()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := c.reconcile()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-timer.C:
		case ev, ok := <-events:
			if !ok {
				// The store dropped a slow watcher (or is closing): subscribe again.
				cancel()
				events, cancel = c.kube.Watch()
				continue
			}
			if !clusterKind(ev.Kind) {
				continue
			}
		}
		// Let a burst of events (one sync applies many objects) settle into one pass.
		drain(events)
	}
}

func clusterKind(k kubesim.Kind) bool {
	return (k.Group == "apps" && k.Kind == "Deployment") || (k.Group == "autoscaling" && k.Kind == "HorizontalPodAutoscaler") ||
		(k.Group == "" && k.Kind == "Pod")
}

func drain(events <-chan kubesim.Event) {
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// reconcile runs one pass over every HPA and Deployment and returns when the next timed
// change is due (zero when none is).
func (c *cluster) reconcile() time.Time {
	for _, hpa := range c.kube.List(gvrHPA, "", nil) {
		if err := c.scale(hpa); err != nil {
			c.log.Debug("simulated HPA", "hpa", hpa.GetNamespace()+"/"+hpa.GetName(), "err", err)
			c.poke()
		}
	}
	var next time.Time
	for _, d := range c.kube.List(gvrDeployment, "", nil) {
		due, err := c.rollout(d)
		if err != nil {
			c.log.Debug("simulated rollout", "deployment", d.GetNamespace()+"/"+d.GetName(), "err", err)
			c.poke()
		}
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	c.collectOrphans()
	return next
}

// scale plays the HPA controller for one HPA.
func (c *cluster) scale(hpa *unstructured.Unstructured) error {
	ref, _, _ := unstructured.NestedStringMap(hpa.Object, "spec", "scaleTargetRef")
	lo, _, _ := unstructured.NestedInt64(hpa.Object, "spec", "minReplicas")
	hi, _, _ := unstructured.NestedInt64(hpa.Object, "spec", "maxReplicas")
	lo = max(lo, 1)
	hi = max(hi, lo)
	var current int64
	if ref["kind"] == "Deployment" {
		d, err := c.kube.Get(gvrDeployment, hpa.GetNamespace(), ref["name"])
		if err == nil {
			replicas, found, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
			want := replicas
			if !found || replicas < lo {
				want = lo
			}
			want = min(want, hi)
			if !found || want != replicas {
				if err := unstructured.SetNestedField(d.Object, want, "spec", "replicas"); err != nil {
					return err
				}
				if _, err := c.kube.Apply(d); err != nil {
					return fmt.Errorf("scale %s: %w", d.GetName(), err)
				}
			}
			current = want
		}
	}
	status := map[string]any{
		"currentReplicas": current,
		"desiredReplicas": current,
		"conditions": []any{
			map[string]any{"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale",
				"message": "the HPA controller was able to get the target's current scale (simulated)"},
			map[string]any{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
				"message": "the HPA is holding minReplicas: the simulated cluster has no resource metrics"},
		},
	}
	if current == 0 {
		status["conditions"] = []any{map[string]any{"type": "AbleToScale", "status": "False", "reason": "FailedGetScale",
			"message": fmt.Sprintf("the HPA controller was unable to get the target's current scale: %s %q not found (simulated)", ref["kind"], ref["name"])}}
	}
	return c.writeStatus(hpa, status)
}

// writeStatus stores status on obj unless it already has it; the write is conditional on obj's
// resourceVersion, so a concurrent change wins and the next pass retries.
func (c *cluster) writeStatus(obj *unstructured.Unstructured, status map[string]any) error {
	if sameJSON(obj.Object["status"], status) {
		return nil
	}
	obj = obj.DeepCopy()
	obj.Object["status"] = status
	if _, err := c.kube.Apply(obj); err != nil {
		return fmt.Errorf("status of %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return nil
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// podTemplateHash names a pod template, as the ReplicaSet a real Deployment would create for it.
func podTemplateHash(d *unstructured.Unstructured) string {
	tmpl, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
	b, _ := json.Marshal(tmpl)
	h := fnv.New32a()
	_, _ = h.Write(b)
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// rollout plays the Deployment controller and the kubelet for one Deployment and returns when
// its next timed change is due.
func (c *cluster) rollout(d *unstructured.Unstructured) (time.Time, error) {
	now := c.now()
	ns, name := d.GetNamespace(), d.GetName()
	want := int64(1)
	if r, found, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); found {
		want = r
	}
	hash := podTemplateHash(d)
	fault, faulty := c.faultOf(ns, name)

	var current, old []*unstructured.Unstructured
	for _, p := range c.kube.List(gvrPod, ns, nil) {
		if !ownedBy(p, d) {
			continue
		}
		if p.GetLabels()[labelTemplateHash] == hash {
			current = append(current, p)
		} else {
			old = append(old, p)
		}
	}
	sort.Slice(current, func(i, j int) bool { return current[i].GetName() < current[j].GetName() })

	var errs []error
	var next time.Time
	due := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	// Scale the current template to the wanted count.
	for int64(len(current)) < want {
		p, err := c.newPod(d, hash, now)
		if err != nil {
			errs = append(errs, err)
			break
		}
		current = append(current, p)
	}
	for int64(len(current)) > want {
		last := current[len(current)-1]
		if err := c.kube.Delete(gvrPod, ns, last.GetName()); err != nil && !errors.Is(err, kubesim.ErrNotFound) {
			errs = append(errs, err)
		}
		current = current[:len(current)-1]
	}
	// Readiness of the current pods.
	var ready int64
	for _, p := range current {
		readyAt, _ := time.Parse(time.RFC3339Nano, p.GetAnnotations()[annotationReadyAt])
		isReady := !faulty && !now.Before(readyAt)
		if !faulty && now.Before(readyAt) {
			due(readyAt)
		}
		if err := c.writeStatus(p, podStatus(p, isReady, fault)); err != nil {
			errs = append(errs, err)
		}
		if isReady {
			ready++
		}
	}
	// maxUnavailable 0: old pods go once every new one is ready.
	if ready >= want {
		for _, p := range old {
			if err := c.kube.Delete(gvrPod, ns, p.GetName()); err != nil && !errors.Is(err, kubesim.ErrNotFound) {
				errs = append(errs, err)
			}
		}
		old = nil
	}
	// Old pods keep serving while they wait; count those that were ready.
	var oldReady int64
	for _, p := range old {
		if podReady(p) {
			oldReady++
		}
	}

	total := int64(len(current) + len(old))
	// A rollout completes once every new pod was ready with no old pod left; pods that lose
	// readiness later do not reopen it (Kubernetes keeps NewReplicaSetAvailable), they only
	// lower availability.
	complete := len(old) == 0 && int64(len(current)) == want && (ready >= want || progressReason(d) == "NewReplicaSetAvailable")
	status := map[string]any{
		"observedGeneration": d.GetGeneration(),
		"replicas":           total,
		"updatedReplicas":    int64(len(current)),
		"readyReplicas":      ready + oldReady,
		"availableReplicas":  ready + oldReady,
	}
	if u := total - ready - oldReady; u > 0 {
		status["unavailableReplicas"] = u
	}
	status["conditions"] = c.deploymentConditions(d, want, ready+oldReady, complete, now, due)
	if err := c.writeStatus(d, status); err != nil {
		errs = append(errs, err)
	}
	return next, errors.Join(errs...)
}

// deploymentConditions computes Available and Progressing, keeping transition times while a
// condition holds so the progress deadline counts from the start of the rollout.
func (c *cluster) deploymentConditions(d *unstructured.Unstructured, want, available int64, complete bool, now time.Time, due func(time.Time)) []any {
	prev := map[string]map[string]any{}
	conds, _, _ := unstructured.NestedSlice(d.Object, "status", "conditions")
	for _, x := range conds {
		if m, ok := x.(map[string]any); ok {
			if t, ok := m["type"].(string); ok {
				prev[t] = m
			}
		}
	}
	stamp := now.UTC().Format(time.RFC3339)
	cond := func(typ, status, reason, msg string) map[string]any {
		m := map[string]any{"type": typ, "status": status, "reason": reason, "message": msg, "lastUpdateTime": stamp, "lastTransitionTime": stamp}
		if p, ok := prev[typ]; ok && p["status"] == status && p["reason"] == reason {
			m["lastTransitionTime"] = p["lastTransitionTime"]
			m["lastUpdateTime"] = p["lastUpdateTime"]
		}
		return m
	}
	avail := cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
	if available < want {
		avail = cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
	}
	var prog map[string]any
	switch {
	case complete:
		prog = cond("Progressing", "True", "NewReplicaSetAvailable", fmt.Sprintf("ReplicaSet %q has successfully progressed.", d.GetName()+"-"+podTemplateHash(d)))
	default:
		prog = cond("Progressing", "True", "ReplicaSetUpdated", fmt.Sprintf("ReplicaSet %q is progressing.", d.GetName()+"-"+podTemplateHash(d)))
		if p, ok := prev["Progressing"]; ok && p["reason"] == "ProgressDeadlineExceeded" {
			prog = cond("Progressing", "False", "ProgressDeadlineExceeded", p["message"].(string))
			break
		}
		since, err := time.Parse(time.RFC3339, fmt.Sprint(prog["lastTransitionTime"]))
		if err != nil {
			since = now
		}
		deadline := since.Add(c.deadlineOf(d))
		if !now.Before(deadline) {
			prog = cond("Progressing", "False", "ProgressDeadlineExceeded",
				fmt.Sprintf("ReplicaSet %q has timed out progressing.", d.GetName()+"-"+podTemplateHash(d)))
		} else {
			due(deadline)
		}
	}
	return []any{avail, prog}
}

// progressReason returns the reason of a Deployment's Progressing condition.
func progressReason(d *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(d.Object, "status", "conditions")
	for _, x := range conds {
		if m, ok := x.(map[string]any); ok && m["type"] == "Progressing" {
			r, _ := m["reason"].(string)
			return r
		}
	}
	return ""
}

func (c *cluster) deadlineOf(d *unstructured.Unstructured) time.Duration {
	if c.progressDeadline > 0 {
		return c.progressDeadline
	}
	if s, found, _ := unstructured.NestedInt64(d.Object, "spec", "progressDeadlineSeconds"); found && s > 0 {
		return time.Duration(s) * time.Second
	}
	return defaultProgressDeadline
}

func ownedBy(p, d *unstructured.Unstructured) bool {
	for _, o := range p.GetOwnerReferences() {
		if o.Kind == "Deployment" && o.UID == d.GetUID() {
			return true
		}
	}
	return false
}

// newPod creates a Pod of d's current template.
func (c *cluster) newPod(d *unstructured.Unstructured, hash string, now time.Time) (*unstructured.Unstructured, error) {
	tmpl, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
	meta, _ := tmpl["metadata"].(map[string]any)
	spec, _ := tmpl["spec"].(map[string]any)
	p := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod", "spec": spec}}
	if spec == nil {
		p.Object["spec"] = map[string]any{}
	}
	p.SetNamespace(d.GetNamespace())
	p.SetName(fmt.Sprintf("%s-%s-%s", d.GetName(), hash, rand.String(5)))
	lbls := map[string]string{}
	if m, ok := meta["labels"].(map[string]any); ok {
		for k, v := range m {
			lbls[k] = fmt.Sprint(v)
		}
	}
	lbls[labelTemplateHash] = hash
	p.SetLabels(lbls)
	ann := map[string]string{}
	if m, ok := meta["annotations"].(map[string]any); ok {
		for k, v := range m {
			ann[k] = fmt.Sprint(v)
		}
	}
	ann[annotationReadyAt] = now.Add(c.readyDelay).UTC().Format(time.RFC3339Nano)
	ann[annotationSimulated] = simulatedNote
	p.SetAnnotations(ann)
	p.SetOwnerReferences(ownerRef(d))
	p.SetCreationTimestamp(metaTime(now))
	_ = unstructured.SetNestedField(p.Object, "sandbox-node", "spec", "nodeName")
	if _, found, _ := unstructured.NestedString(p.Object, "spec", "restartPolicy"); !found {
		// The API server's default; Argo CD's pod health check depends on it.
		_ = unstructured.SetNestedField(p.Object, "Always", "spec", "restartPolicy")
	}
	p.Object["status"] = podStatus(p, false, "")
	out, err := c.kube.Apply(p)
	if err != nil {
		return nil, fmt.Errorf("create pod for %s: %w", d.GetName(), err)
	}
	return out, nil
}

// podStatus is a running Pod's status, Ready or not.
func podStatus(p *unstructured.Unstructured, ready bool, fault string) map[string]any {
	started := p.GetCreationTimestamp().UTC().Format(time.RFC3339)
	readyStr := "False"
	if ready {
		readyStr = "True"
	}
	readyCond := map[string]any{"type": "Ready", "status": readyStr}
	containersCond := map[string]any{"type": "ContainersReady", "status": readyStr}
	if !ready {
		msg := "containers with unready status: readiness probe has not passed yet (simulated)"
		if fault != "" {
			msg = "containers with unready status: " + fault
		}
		readyCond["reason"], readyCond["message"] = "ContainersNotReady", msg
		containersCond["reason"], containersCond["message"] = "ContainersNotReady", msg
	}
	var statuses []any
	containers, _, _ := unstructured.NestedSlice(p.Object, "spec", "containers")
	for _, x := range containers {
		m, _ := x.(map[string]any)
		statuses = append(statuses, map[string]any{
			"name": m["name"], "image": m["image"], "imageID": "", "ready": ready, "started": true, "restartCount": int64(0),
			"state": map[string]any{"running": map[string]any{"startedAt": started}},
		})
	}
	return map[string]any{
		"phase": "Running",
		"conditions": []any{
			map[string]any{"type": "PodScheduled", "status": "True"},
			map[string]any{"type": "Initialized", "status": "True"},
			containersCond, readyCond,
		},
		"containerStatuses": statuses,
		"hostIP":            "10.0.0.1",
		"podIP":             podIP(p.GetName()),
		"startTime":         started,
	}
}

func podReady(p *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(p.Object, "status", "conditions")
	for _, x := range conds {
		if m, ok := x.(map[string]any); ok && m["type"] == "Ready" {
			return m["status"] == "True"
		}
	}
	return false
}

func podIP(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	v := h.Sum32()
	return fmt.Sprintf("10.%d.%d.%d", 1+(v>>16)%254, (v>>8)%256, 1+v%254)
}

// collectOrphans deletes Pods whose Deployment is gone, as the garbage collector would.
func (c *cluster) collectOrphans() {
	live := map[string]bool{}
	for _, d := range c.kube.List(gvrDeployment, "", nil) {
		live[string(d.GetUID())] = true
	}
	for _, p := range c.kube.List(gvrPod, "", labels.Everything()) {
		refs := p.GetOwnerReferences()
		if len(refs) == 0 || refs[0].Kind != "Deployment" || live[string(refs[0].UID)] {
			continue
		}
		if err := c.kube.Delete(gvrPod, p.GetNamespace(), p.GetName()); err != nil && !errors.Is(err, kubesim.ErrNotFound) {
			c.log.Debug("simulated garbage collection", "pod", p.GetName(), "err", err)
		}
	}
}

func ownerRef(d *unstructured.Unstructured) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.GetName(), UID: d.GetUID(), Controller: &yes, BlockOwnerDeletion: &yes}}
}

func metaTime(t time.Time) metav1.Time { return metav1.NewTime(t) }
