package argosim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	settingspkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/settings"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argoclient "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/sim/argosim"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

const token = "sandbox-token"

// waitFor bounds every wait in these tests; nothing asserts how long anything takes.
const waitFor = 30 * time.Second

// sandbox is a simulated Argo CD on a simulated cluster, syncing a real bare git repository.
type sandbox struct {
	t       *testing.T
	kube    *kubesim.Server
	kubeURL string
	rest    *rest.Config
	remote  *gitopstest.Remote
	sim     *argosim.Server
	addr    string
	apps    applicationpkg.ApplicationServiceClient
	istio   istioclient.Interface
}

func start(t *testing.T, tweak ...func(*argosim.Config)) *sandbox {
	t.Helper()
	sb := &sandbox{t: t, remote: gitopstest.NewRemote(t)}
	sb.kube = kubesim.New()
	sb.kube.Token = "kube-" + token
	url, err := sb.kube.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.kube.Close() })
	sb.kubeURL = url
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := sb.kube.WriteKubeconfig(kc, url, "sandbox", "argocd"); err != nil {
		t.Fatal(err)
	}
	if sb.rest, err = clientcmd.BuildConfigFromFlags("", kc); err != nil {
		t.Fatal(err)
	}
	sb.istio = istioclient.NewForConfigOrDie(sb.rest)

	cfg := argosim.Config{
		RepoDir:    sb.remote.URL,
		Kube:       sb.kube,
		KubeURL:    url,
		Token:      token,
		Interval:   300 * time.Millisecond,
		ReadyDelay: 50 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	sb.sim, err = argosim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sb.addr, err = sb.sim.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.sim.Close() })
	sb.apps = dial(t, sb.addr, token)
	return sb
}

// dial connects argo-cd's own API client, as opsctl does.
func dial(t *testing.T, addr, tok string) applicationpkg.ApplicationServiceClient {
	t.Helper()
	c, err := apiclient.NewClient(&apiclient.ClientOptions{ServerAddr: addr, PlainText: true, AuthToken: tok})
	if err != nil {
		t.Fatalf("apiclient: %v", err)
	}
	closer, apps, err := c.NewApplicationClient()
	if err != nil {
		t.Fatalf("application client: %v", err)
	}
	t.Cleanup(func() { closer.Close() })
	return apps
}

func kubeClient(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

func ptr[T any](v T) *T { return &v }

func (sb *sandbox) get(name string) *v1alpha1.Application {
	sb.t.Helper()
	a, err := sb.apps.Get(context.Background(), &applicationpkg.ApplicationQuery{Name: &name})
	if err != nil {
		sb.t.Fatalf("get %s: %v", name, err)
	}
	return a
}

func (sb *sandbox) refresh(name string) *v1alpha1.Application {
	sb.t.Helper()
	a, err := sb.apps.Get(context.Background(), &applicationpkg.ApplicationQuery{Name: &name, Refresh: ptr("normal")})
	if err != nil {
		sb.t.Fatalf("refresh %s: %v", name, err)
	}
	return a
}

// eventually polls cond until it holds or the deadline passes; the last description explains
// a failure.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	last := ""
	for time.Now().Before(deadline) {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s; last: %s", what, waitFor, last)
}

func describe(a *v1alpha1.Application) string {
	s := fmt.Sprintf("%s sync=%s@%.7s health=%s", a.Name, a.Status.Sync.Status, a.Status.Sync.Revision, a.Status.Health.Status)
	if op := a.Status.OperationState; op != nil {
		s += fmt.Sprintf(" op=%s(%s)", op.Phase, op.Message)
	}
	for _, r := range a.Status.Resources {
		if r.Status != v1alpha1.SyncStatusCodeSynced || (r.Health != nil && r.Health.Status != "Healthy") {
			h := ""
			if r.Health != nil {
				h = string(r.Health.Status) + " " + r.Health.Message
			}
			s += fmt.Sprintf(" [%s/%s %s %s]", r.Kind, r.Name, r.Status, h)
		}
	}
	return s
}

// waitApp waits until an application is Synced and Healthy at revision (any when empty).
func (sb *sandbox) waitApp(name, revision string) *v1alpha1.Application {
	sb.t.Helper()
	var a *v1alpha1.Application
	eventually(sb.t, name+" Synced and Healthy", func() (bool, string) {
		a = sb.get(name)
		ok := a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && a.Status.Health.Status == "Healthy" &&
			(revision == "" || a.Status.Sync.Revision == revision) &&
			a.Status.OperationState != nil && a.Status.OperationState.Phase.Completed()
		return ok, describe(a)
	})
	return a
}

func allApps() []string {
	var out []string
	for _, env := range gitops.Environments() {
		for _, svc := range gitops.Services() {
			out = append(out, gitops.ApplicationName(svc, env))
		}
	}
	slices.Sort(out)
	return out
}

// commit moves a service's release in git through pkg/gitops, as `opsctl canary` does, and
// returns the pushed commit.
func (sb *sandbox) commit(env, svc string, edit func(*gitops.Release)) string {
	sb.t.Helper()
	ctx := context.Background()
	repo, err := gitops.Open(ctx, sb.remote.Clone("Operator"))
	if err != nil {
		sb.t.Fatal(err)
	}
	snap, err := repo.Read(ctx, env, svc)
	if err != nil {
		sb.t.Fatal(err)
	}
	to := snap.Release
	edit(&to)
	res, err := repo.Apply(ctx, gitops.Change{Env: env, Service: svc, Action: "canary-test", Reason: "argosim test", From: snap.Release, To: to})
	if err != nil {
		sb.t.Fatal(err)
	}
	return res.Commit
}

// commitFile commits raw content to a path with plain git, bypassing pkg/gitops's checks.
func (sb *sandbox) commitFile(path, content string) string {
	sb.t.Helper()
	dir := sb.remote.Clone("Vandal")
	if err := os.WriteFile(filepath.Join(dir, path), []byte(content), 0o644); err != nil {
		sb.t.Fatal(err)
	}
	gitopstest.Git(sb.t, dir, "commit", "--quiet", "-am", "hand edit")
	gitopstest.Git(sb.t, dir, "push", "--quiet", "origin", "HEAD:main")
	return gitopstest.Git(sb.t, dir, "rev-parse", "HEAD")
}

// weights reads the live VirtualService's mesh route weights per subset with Istio's client.
func (sb *sandbox) weights(env, svc string) map[string]int32 {
	sb.t.Helper()
	vs, err := sb.istio.NetworkingV1().VirtualServices(gitops.Namespace(env)).Get(context.Background(), gitops.AppName(svc), metav1.GetOptions{})
	if err != nil {
		sb.t.Fatalf("virtual service: %v", err)
	}
	out := map[string]int32{}
	for _, h := range vs.Spec.Http {
		if h.Name != "mesh" {
			continue
		}
		for _, r := range h.Route {
			out[r.Destination.Subset] = r.Weight
		}
	}
	return out
}

func TestStartupSyncsEveryApplication(t *testing.T) {
	t.Parallel()
	sb := start(t)
	head := sb.remote.Head()
	for _, name := range allApps() {
		sb.waitApp(name, head)
	}
	list, err := sb.apps.List(context.Background(), &applicationpkg.ApplicationQuery{Projects: []string{"come2us"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range list.Items {
		names = append(names, a.Name)
		if a.Status.Sync.Status != v1alpha1.SyncStatusCodeSynced || a.Status.Health.Status != "Healthy" || a.Status.Sync.Revision != head {
			t.Errorf("%s", describe(&a))
		}
		src := a.Spec.GetSource()
		if src.RepoURL != "file://"+sb.remote.URL || src.TargetRevision != "main" || a.Spec.Destination.Server != sb.kubeURL {
			t.Errorf("%s: source %s@%s destination %s", a.Name, src.RepoURL, src.TargetRevision, a.Spec.Destination.Server)
		}
		if !strings.Contains(a.Annotations[argosim.AnnotationSimulated], "simulated") {
			t.Errorf("%s: annotations %v do not say simulated", a.Name, a.Annotations)
		}
		if n := len(a.Status.History); n != 1 || a.Status.History[0].Revision != head || !a.Status.History[0].InitiatedBy.Automated {
			t.Errorf("%s: history %+v", a.Name, a.Status.History)
		}
		if len(a.Status.Resources) == 0 {
			t.Errorf("%s: no resources", a.Name)
		}
	}
	if got := strings.Join(names, ","); got != strings.Join(allApps(), ",") {
		t.Fatalf("apps = %s", got)
	}
	if w := sb.weights("prod", "order"); len(w) != 1 || w["v1"] != 100 {
		t.Fatalf("prod order weights %v", w)
	}
}

func TestCanaryLifecycle(t *testing.T) {
	t.Parallel()
	sb := start(t)
	const env, svc = "dev", "order"
	app := gitops.ApplicationName(svc, env)
	sb.waitApp(app, sb.remote.Head())
	ctx := context.Background()
	ns := gitops.Namespace(env)

	// Start the canary at 10 %: v2 Deployment, its pods, and the weights.
	c1 := sb.commit(env, svc, func(r *gitops.Release) {
		r.Canary = gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: 10}
	})
	a := sb.refresh(app)
	if a.Status.Sync.Revision != c1 {
		t.Fatalf("after refresh: %s, want revision %.7s", describe(a), c1)
	}
	sb.waitApp(app, c1)
	if w := sb.weights(env, svc); w["v1"] != 90 || w["v2"] != 10 {
		t.Fatalf("weights after canary start = %v", w)
	}
	kc := kubeClient(t, sb.rest)
	eventually(t, "two ready v2 pods", func() (bool, string) {
		pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=order-service,version=v2"})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, p := range pods.Items {
			for _, c := range p.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					ready++
				}
			}
			if img := p.Spec.Containers[0].Image; !strings.HasSuffix(img, ":1.1.0") {
				return false, "canary pod image " + img
			}
		}
		return len(pods.Items) == 2 && ready == 2, fmt.Sprintf("%d pods, %d ready", len(pods.Items), ready)
	})
	d, err := kc.AppsV1().Deployments(ns).Get(ctx, "order-service-v2", metav1.GetOptions{})
	if err != nil || d.Status.ReadyReplicas != 2 || d.Status.AvailableReplicas != 2 || d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Fatalf("v2 deployment %+v err %v", d.Status, err)
	}

	// Widen to 30 %.
	c2 := sb.commit(env, svc, func(r *gitops.Release) { r.Canary.Weight = 30 })
	sb.refresh(app)
	sb.waitApp(app, c2)
	if w := sb.weights(env, svc); w["v1"] != 70 || w["v2"] != 30 {
		t.Fatalf("weights after step = %v", w)
	}

	// Roll back: the VirtualService must move back to v1 before v2 is pruned.
	events, cancel := sb.kube.Watch()
	defer cancel()
	c3 := sb.commit(env, svc, func(r *gitops.Release) { r.Canary = gitops.Canary{} })
	sb.refresh(app)
	a = sb.waitApp(app, c3)
	if w := sb.weights(env, svc); len(w) != 1 || w["v1"] != 100 {
		t.Fatalf("weights after rollback = %v", w)
	}
	var order []string
	collect := time.After(waitFor)
loop:
	for {
		select {
		case ev := <-events:
			o := ev.Object
			switch {
			case ev.Kind.Kind == "VirtualService" && o.GetNamespace() == ns && ev.Type == "MODIFIED":
				order = append(order, "vs-moved")
			case ev.Kind.Kind == "Deployment" && o.GetName() == "order-service-v2" && ev.Type == "DELETED":
				order = append(order, "v2-pruned")
				break loop
			}
		case <-collect:
			break loop
		}
	}
	if strings.Join(order, ",") != "vs-moved,v2-pruned" {
		t.Fatalf("rollback order = %v, want the VirtualService moved before v2 was pruned", order)
	}
	eventually(t, "v2 pods gone", func() (bool, string) {
		pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=order-service,version=v2"})
		return err == nil && len(pods.Items) == 0, fmt.Sprintf("%d pods, %v", len(pods.Items), err)
	})
	last := a.Status.OperationState
	if last.SyncResult == nil || last.SyncResult.Revision != c3 || last.Phase != "Succeeded" {
		t.Fatalf("operation %+v", last)
	}
	var pruned []string
	for _, r := range last.SyncResult.Resources {
		if r.Status == "Pruned" {
			pruned = append(pruned, r.Kind+"/"+r.Name)
		}
	}
	slices.Sort(pruned)
	if want := "Deployment/order-service-v2,HorizontalPodAutoscaler/order-service-v2,PodDisruptionBudget/order-service-v2"; strings.Join(pruned, ",") != want {
		t.Fatalf("pruned %v, want %s", pruned, want)
	}
	var revs []string
	for _, h := range a.Status.History {
		revs = append(revs, h.Revision)
	}
	if want := []string{c1, c2, c3}; !slices.Equal(revs[len(revs)-3:], want) {
		t.Fatalf("history %v, want it to end with %v", revs, want)
	}
	// The other environment did not move.
	if w := sb.weights("prod", svc); len(w) != 1 || w["v1"] != 100 {
		t.Fatalf("prod weights = %v", w)
	}
}

// editWeights changes the live VirtualService's mesh weights by hand, as someone with kubectl
// would, through Istio's client.
func (sb *sandbox) editWeights(env, svc string, v1, v2 int32) {
	sb.t.Helper()
	ctx := context.Background()
	vsc := sb.istio.NetworkingV1().VirtualServices(gitops.Namespace(env))
	vs, err := vsc.Get(ctx, gitops.AppName(svc), metav1.GetOptions{})
	if err != nil {
		sb.t.Fatal(err)
	}
	for _, h := range vs.Spec.Http {
		if h.Name != "mesh" {
			continue
		}
		h.Route[0].Weight = v1
		canary := h.Route[0].DeepCopy()
		canary.Destination.Subset = "v2"
		canary.Weight = v2
		h.Route = append(h.Route[:1], canary)
	}
	if _, err := vsc.Update(ctx, vs, metav1.UpdateOptions{}); err != nil {
		sb.t.Fatal(err)
	}
}

// selfHealOff turns selfHeal off and waits until the controller has seen it, so a reconcile
// already running with the old policy cannot heal the edit that follows.
func (sb *sandbox) selfHealOff(app string) {
	sb.t.Helper()
	ctx := context.Background()
	if err := sb.sim.SetSelfHeal(ctx, app, false); err != nil {
		sb.t.Fatal(err)
	}
	if err := sb.sim.Refresh(ctx, app); err != nil {
		sb.t.Fatal(err)
	}
}

func TestLiveDrift(t *testing.T) {
	t.Parallel()
	sb := start(t)
	const env, svc = "prod", "payment"
	app := gitops.ApplicationName(svc, env)
	head := sb.remote.Head()
	sb.waitApp(app, head)
	ctx := context.Background()

	// selfHeal off: the edit stays and the application reports drift.
	sb.selfHealOff(app)
	sb.editWeights(env, svc, 50, 50)
	eventually(t, app+" OutOfSync", func() (bool, string) {
		a := sb.get(app)
		return a.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync, describe(a)
	})
	a := sb.refresh(app)
	if a.Status.Sync.Status != v1alpha1.SyncStatusCodeOutOfSync || a.Status.Sync.Revision != head {
		t.Fatalf("after refresh: %s", describe(a))
	}
	var drifted []string
	for _, r := range a.Status.Resources {
		if r.Status == v1alpha1.SyncStatusCodeOutOfSync {
			drifted = append(drifted, r.Kind+"/"+r.Name)
		}
	}
	if strings.Join(drifted, ",") != "VirtualService/payment-service" {
		t.Fatalf("out of sync resources = %v", drifted)
	}
	if w := sb.weights(env, svc); w["v1"] != 50 || w["v2"] != 50 {
		t.Fatalf("selfHeal off re-applied the VirtualService: weights %v", w)
	}
	if n := len(a.Status.History); n != 1 {
		t.Fatalf("selfHeal off synced anyway: history %+v", a.Status.History)
	}
	diff, err := sb.apps.ManagedResources(ctx, &applicationpkg.ResourcesQuery{ApplicationName: ptr(app), Kind: ptr("VirtualService")})
	if err != nil {
		t.Fatal(err)
	}
	if len(diff.Items) != 1 || !diff.Items[0].Modified || !strings.Contains(diff.Items[0].LiveState, `"weight":50`) || strings.Contains(diff.Items[0].TargetState, `"weight":50`) {
		t.Fatalf("managed resources = %+v", diff.Items)
	}
	// Other applications are not affected.
	if o := sb.get(gitops.ApplicationName("order", env)); o.Status.Sync.Status != v1alpha1.SyncStatusCodeSynced {
		t.Fatalf("order: %s", describe(o))
	}

	// selfHeal on: the controller puts git's weights back.
	if err := sb.sim.SetSelfHeal(ctx, app, true); err != nil {
		t.Fatal(err)
	}
	a = sb.waitApp(app, head)
	if w := sb.weights(env, svc); len(w) != 1 || w["v1"] != 100 {
		t.Fatalf("selfHeal did not restore the weights: %v", w)
	}
	if n := len(a.Status.History); n != 2 || !a.Status.History[1].InitiatedBy.Automated || a.Status.History[1].Revision != head {
		t.Fatalf("history after self-heal %+v", a.Status.History)
	}
	if err := sb.sim.SetSelfHeal(ctx, "nope-service-dev", true); err == nil {
		t.Fatal("SetSelfHeal of an unknown application succeeded")
	}
}

func TestRenderFailureAppliesNothing(t *testing.T) {
	t.Parallel()
	sb := start(t)
	const env, svc = "dev", "product"
	app := gitops.ApplicationName(svc, env)
	sb.waitApp(app, sb.remote.Head())
	ctx := context.Background()
	vsBefore, err := sb.istio.NetworkingV1().VirtualServices(gitops.Namespace(env)).Get(ctx, gitops.AppName(svc), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	p := "gitops/envs/dev/product/values.yaml"
	values := string(sb.remote.File(p))
	broken := strings.Replace(values, "weight: 0", "weight: 150", 1)
	if broken == values {
		t.Fatal("values file has no canary weight to break")
	}
	bad := sb.commitFile(p, broken)
	a := sb.refresh(app)
	op := a.Status.OperationState
	if op == nil || op.Phase != "Failed" || !strings.Contains(op.Message, "canary.weight must be an integer 0-100 (got 150)") {
		t.Fatalf("operation after a broken commit: %+v", op)
	}
	if op.SyncResult == nil || op.SyncResult.Revision != bad || op.Operation.Sync.Revision != bad || !op.Operation.InitiatedBy.Automated {
		t.Fatalf("failed operation does not name revision %.7s: %+v", bad, op)
	}
	if a.Status.Sync.Status != v1alpha1.SyncStatusCodeUnknown || a.Status.Sync.Revision != bad {
		t.Fatalf("sync status after a broken commit: %s", describe(a))
	}
	if len(a.Status.Conditions) != 1 || a.Status.Conditions[0].Type != v1alpha1.ApplicationConditionComparisonError ||
		!strings.Contains(a.Status.Conditions[0].Message, "canary.weight") {
		t.Fatalf("conditions %+v", a.Status.Conditions)
	}
	vsAfter, err := sb.istio.NetworkingV1().VirtualServices(gitops.Namespace(env)).Get(ctx, gitops.AppName(svc), metav1.GetOptions{})
	if err != nil || vsAfter.ResourceVersion != vsBefore.ResourceVersion {
		t.Fatalf("the VirtualService changed: %s -> %s (%v)", vsBefore.ResourceVersion, vsAfter.ResourceVersion, err)
	}
	if n := len(a.Status.History); n != 1 {
		t.Fatalf("a failed sync entered the history: %+v", a.Status.History)
	}
	// A failed revision is not retried on every poll; the fix is synced.
	a = sb.refresh(app)
	if a.Status.OperationState.StartedAt != op.StartedAt {
		t.Fatalf("the failed revision was synced again: %+v", a.Status.OperationState)
	}
	fixed := sb.commitFile(p, values)
	sb.refresh(app)
	a = sb.waitApp(app, fixed)
	if len(a.Status.Conditions) != 0 {
		t.Fatalf("conditions after the fix: %+v", a.Status.Conditions)
	}
}

func TestTokenIsRequired(t *testing.T) {
	t.Parallel()
	sb := start(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, token, want string
	}{
		{"wrong token", "not-the-token", "invalid session"},
		{"no token", "", "no session information"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apps := dial(t, sb.addr, tc.token)
			_, err := apps.List(ctx, &applicationpkg.ApplicationQuery{})
			if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("List = %v, want Unauthenticated (%s)", err, tc.want)
			}
			if _, err := apps.Sync(ctx, &applicationpkg.ApplicationSyncRequest{Name: ptr("order-service-dev")}); status.Code(err) != codes.Unauthenticated {
				t.Fatalf("Sync = %v, want Unauthenticated", err)
			}
		})
	}
	// The version answer needs no token and says what it is.
	c, err := apiclient.NewClient(&apiclient.ClientOptions{ServerAddr: sb.addr, PlainText: true, AuthToken: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	closer, vc, err := c.NewVersionClient()
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	v, err := vc.Version(ctx, &emptypb.Empty{})
	if err != nil || !strings.Contains(v.Version, "simulated") || !strings.Contains(v.ExtraBuildInfo, "simulated") {
		t.Fatalf("version %+v %v", v, err)
	}
	sc, settings, err := c.NewSettingsClient()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	st, err := settings.Get(ctx, &settingspkg.SettingsQuery{})
	if err != nil || !strings.Contains(st.UiBannerContent, "Simulated") {
		t.Fatalf("settings %+v %v", st, err)
	}
}

func TestApplicationAPI(t *testing.T) {
	t.Parallel()
	sb := start(t)
	ctx := context.Background()
	const app = "order-service-prod"
	head := sb.remote.Head()
	sb.waitApp(app, head)

	t.Run("unknown application", func(t *testing.T) {
		_, err := sb.apps.Get(ctx, &applicationpkg.ApplicationQuery{Name: ptr("nope"), Projects: []string{"come2us"}})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("Get in project = %v, want NotFound", err)
		}
		_, err = sb.apps.Get(ctx, &applicationpkg.ApplicationQuery{Name: ptr("nope")})
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("Get without project = %v, want PermissionDenied", err)
		}
	})

	t.Run("sync to another revision while auto-sync is on", func(t *testing.T) {
		_, err := sb.apps.Sync(ctx, &applicationpkg.ApplicationSyncRequest{Name: ptr(app), Revision: ptr("HEAD~1")})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "auto-sync currently set to main") {
			t.Fatalf("Sync = %v", err)
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		sb.selfHealOff(app)
		before := len(sb.get(app).Status.History)
		sb.editWeights("prod", "order", 80, 20)
		eventually(t, "drift", func() (bool, string) {
			a := sb.get(app)
			return a.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync, describe(a)
		})
		out, err := sb.apps.Sync(ctx, &applicationpkg.ApplicationSyncRequest{Name: ptr(app), DryRun: ptr(true), Prune: ptr(true), Project: ptr("come2us")})
		if err != nil {
			t.Fatal(err)
		}
		if out.Operation == nil || !out.Operation.Sync.DryRun || out.Operation.InitiatedBy.Username != "admin" {
			t.Fatalf("accepted operation %+v", out.Operation)
		}
		var a *v1alpha1.Application
		eventually(t, "dry run finished", func() (bool, string) {
			a = sb.get(app)
			op := a.Status.OperationState
			return a.Operation == nil && op != nil && op.Operation.Sync.DryRun && op.Phase.Completed(), describe(a)
		})
		if a.Status.OperationState.Phase != "Succeeded" || !strings.Contains(a.Status.OperationState.Message, "dry run") {
			t.Fatalf("dry run: %+v", a.Status.OperationState)
		}
		if w := sb.weights("prod", "order"); w["v2"] != 20 || len(a.Status.History) != before {
			t.Fatalf("the dry run changed something: weights %v history %d -> %d", w, before, len(a.Status.History))
		}

		// A real manual sync puts git's state back and is recorded as the user's.
		if _, err := sb.apps.Sync(ctx, &applicationpkg.ApplicationSyncRequest{Name: ptr(app)}); err != nil {
			t.Fatal(err)
		}
		a = sb.waitApp(app, head)
		last := a.Status.History[len(a.Status.History)-1]
		if w := sb.weights("prod", "order"); len(w) != 1 || last.InitiatedBy.Username != "admin" || last.Revision != head {
			t.Fatalf("manual sync: weights %v, last history %+v", w, last)
		}
	})

	t.Run("watch streams changes", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, waitFor)
		defer cancel()
		stream, err := sb.apps.Watch(wctx, &applicationpkg.ApplicationQuery{Name: ptr("order-service-dev")})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := stream.Recv()
		if err != nil || ev.Type != "ADDED" || ev.Application.Name != "order-service-dev" {
			t.Fatalf("first event %v %v", ev, err)
		}
		c := sb.commit("dev", "order", func(r *gitops.Release) { r.StableTag = "1.0.1" })
		for {
			ev, err := stream.Recv()
			if err != nil {
				t.Fatalf("watch ended before the application synced %.7s: %v", c, err)
			}
			if ev.Application.Name != "order-service-dev" {
				t.Fatalf("event for %s", ev.Application.Name)
			}
			a := ev.Application
			if a.Status.Sync.Revision == c && a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced {
				break
			}
		}
	})

	t.Run("resource tree", func(t *testing.T) {
		tree, err := sb.apps.ResourceTree(ctx, &applicationpkg.ResourcesQuery{ApplicationName: ptr(app)})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, n := range tree.Nodes {
			kinds[n.Kind]++
			if n.Kind == "Pod" && (len(n.ParentRefs) != 1 || n.ParentRefs[0].Name != "order-service-v1" || n.Health == nil || n.Health.Status != "Healthy") {
				t.Fatalf("pod node %+v", n)
			}
		}
		if kinds["Deployment"] != 1 || kinds["Pod"] != 2 || kinds["VirtualService"] != 1 {
			t.Fatalf("tree kinds %v", kinds)
		}
	})

	t.Run("managed resources of a synced application differ in nothing", func(t *testing.T) {
		sb.waitApp(app, sb.remote.Head())
		resp, err := sb.apps.ManagedResources(ctx, &applicationpkg.ResourcesQuery{ApplicationName: ptr(app)})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Items) == 0 {
			t.Fatal("no managed resources")
		}
		for _, it := range resp.Items {
			var live, pred map[string]any
			if err := errors.Join(json.Unmarshal([]byte(it.NormalizedLiveState), &live), json.Unmarshal([]byte(it.PredictedLiveState), &pred)); err != nil {
				t.Fatal(err)
			}
			if it.Modified || !reflect.DeepEqual(live, pred) {
				t.Errorf("%s/%s: a synced object differs from what a sync would leave (modified %v):\nlive %s\npredicted %s", it.Kind, it.Name, it.Modified, it.NormalizedLiveState, it.PredictedLiveState)
			}
			if _, ok := live["status"]; ok {
				t.Errorf("%s/%s: the normalised live state keeps status", it.Kind, it.Name)
			}
		}
	})

	t.Run("rollback while auto-sync is on", func(t *testing.T) {
		before := sb.get(app)
		_, err := sb.apps.Rollback(ctx, &applicationpkg.ApplicationRollbackRequest{Name: ptr(app), Id: ptr(int64(0)), Project: ptr("come2us")})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "auto-sync is enabled") {
			t.Fatalf("Rollback = %v", err)
		}
		if a := sb.get(app); a.Operation != nil || len(a.Status.History) != len(before.Status.History) {
			t.Fatalf("a refused rollback started something: %s", describe(a))
		}
	})

	t.Run("revision metadata", func(t *testing.T) {
		md, err := sb.apps.RevisionMetadata(ctx, &applicationpkg.RevisionMetadataQuery{Name: ptr(app), Revision: ptr(head)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(md.Author, "Seeder <") || md.Message != "GitOps tree" || md.Date == nil {
			t.Fatalf("metadata %+v", md)
		}
		if _, err := sb.apps.RevisionMetadata(ctx, &applicationpkg.RevisionMetadataQuery{Name: ptr(app), Revision: ptr("--output=/tmp/x")}); status.Code(err) != codes.NotFound {
			t.Fatalf("option-like revision = %v", err)
		}
	})
}

func TestCoreModeSeesTheSameApplications(t *testing.T) {
	t.Parallel()
	sb := start(t)
	head := sb.remote.Head()
	for _, name := range allApps() {
		sb.waitApp(name, head)
	}
	ctx := context.Background()
	ac := argoclient.NewForConfigOrDie(sb.rest).ArgoprojV1alpha1()
	list, err := ac.Applications("argocd").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	grpcList, err := sb.apps.List(ctx, &applicationpkg.ApplicationQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 6 || len(grpcList.Items) != 6 {
		t.Fatalf("core sees %d, gRPC %d applications", len(list.Items), len(grpcList.Items))
	}
	for i, a := range list.Items {
		g := grpcList.Items[i]
		if a.Name != g.Name || a.Status.Sync.Revision != g.Status.Sync.Revision || a.Status.Sync.Status != g.Status.Sync.Status || a.Status.Health.Status != g.Status.Health.Status {
			t.Errorf("core %s / gRPC %s", describe(&a), describe(&g))
		}
	}
	proj, err := ac.AppProjects("argocd").Get(ctx, "come2us", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(proj.Spec.SourceRepos, "file://"+sb.remote.URL) || proj.Spec.Destinations[0].Server != sb.kubeURL {
		t.Fatalf("project %+v", proj.Spec)
	}

	// A core-mode refresh (the annotation) and sync (the operation field) reach the controller.
	const app = "payment-service-dev"
	c := sb.commit("dev", "payment", func(r *gitops.Release) { r.StableTag = "2.0.0" })
	if _, err := ac.Applications("argocd").Patch(ctx, app, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "refresh annotation handled", func() (bool, string) {
		a, err := ac.Applications("argocd").Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		_, pending := a.Annotations[v1alpha1.AnnotationKeyRefresh]
		return !pending && a.Status.Sync.Revision == c && a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced, describe(a)
	})
	if _, err := ac.Applications("argocd").Patch(ctx, app, types.MergePatchType,
		[]byte(`{"operation":{"initiatedBy":{"username":"core-user"},"sync":{"prune":true}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "core-mode sync ran", func() (bool, string) {
		a, err := ac.Applications("argocd").Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		op := a.Status.OperationState
		return a.Operation == nil && op != nil && op.Operation.InitiatedBy.Username == "core-user" && op.Phase == "Succeeded", describe(a)
	})
}

func TestCanaryNotReadyFault(t *testing.T) {
	t.Parallel()
	sb := start(t, func(c *argosim.Config) { c.ProgressDeadline = 2 * time.Second })
	const env, svc = "prod", "product"
	app := gitops.ApplicationName(svc, env)
	sb.waitApp(app, sb.remote.Head())
	if err := sb.sim.SetCanaryReady("prod", "nope", false); err == nil {
		t.Fatal("SetCanaryReady accepted an unknown service")
	}
	if err := sb.sim.SetCanaryReady(env, svc, false); err != nil {
		t.Fatal(err)
	}
	c := sb.commit(env, svc, func(r *gitops.Release) { r.Canary = gitops.Canary{Enabled: true, Tag: "3.0.0", Weight: 10} })
	sb.refresh(app)
	ctx := context.Background()
	kc := kubeClient(t, sb.rest)
	// The rollout never completes: Progressing, then Degraded once the deadline passes.
	eventually(t, "canary Degraded with unready pods", func() (bool, string) {
		a := sb.get(app)
		pods, err := kc.CoreV1().Pods(gitops.Namespace(env)).List(ctx, metav1.ListOptions{LabelSelector: "app=product-service,version=v2"})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == "Ready" && cond.Status == "True" {
					t.Fatalf("canary pod %s became ready during the fault", p.Name)
				}
			}
		}
		return a.Status.Sync.Revision == c && a.Status.Health.Status == "Degraded" && len(pods.Items) == 2,
			fmt.Sprintf("%s, %d canary pods", describe(a), len(pods.Items))
	})
	a := sb.get(app)
	var v2 *v1alpha1.ResourceStatus
	for i, r := range a.Status.Resources {
		if r.Kind == "Deployment" && r.Name == "product-service-v2" {
			v2 = &a.Status.Resources[i]
		}
	}
	if v2 == nil || v2.Health == nil || !strings.Contains(v2.Health.Message, "exceeded its progress deadline") {
		t.Fatalf("v2 deployment resource %+v", v2)
	}
	if err := sb.sim.SetCanaryReady(env, svc, true); err != nil {
		t.Fatal(err)
	}
	sb.waitApp(app, c)
}

// The whole server — gRPC streams, controller, simulated cluster — stops on Close. It stays
// serial: goroutines of tests running beside it would read as leaks.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	remote := gitopstest.NewRemote(t)
	kube := kubesim.New()
	url, err := kube.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer kube.Close()
	sim, err := argosim.New(argosim.Config{RepoDir: remote.URL, Kube: kube, KubeURL: url, Token: token, Interval: 100 * time.Millisecond, ReadyDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := sim.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := apiclient.NewClient(&apiclient.ClientOptions{ServerAddr: addr, PlainText: true, AuthToken: token})
	if err != nil {
		t.Fatal(err)
	}
	closer, apps, err := c.NewApplicationClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := apps.Watch(ctx, &applicationpkg.ApplicationQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := sim.Refresh(ctx, "order-service-dev"); err != nil {
		t.Fatal(err)
	}
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			break // the server ended the stream
		}
	}
	closer.Close()
	if err := sim.Refresh(ctx, "order-service-dev"); err == nil {
		t.Fatal("Refresh after Close succeeded")
	}
	kube.Close()
}

func TestConfigIsChecked(t *testing.T) {
	t.Parallel()
	kube := kubesim.New()
	for _, tc := range []struct {
		name string
		cfg  argosim.Config
		want string
	}{
		{"no cluster", argosim.Config{RepoDir: ".", Token: "t"}, "Kube is required"},
		{"no token", argosim.Config{RepoDir: ".", Kube: kube}, "Token is required"},
		{"no repository", argosim.Config{Kube: kube, Token: "t"}, "RepoDir is required"},
		{"option as branch", argosim.Config{RepoDir: ".", Kube: kube, Token: "t", Branch: "--upload-pack=x"}, "not a branch"},
		{"root outside", argosim.Config{RepoDir: ".", Kube: kube, Token: "t", GitOpsRoot: "../x"}, "relative path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := argosim.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want %q", err, tc.want)
			}
		})
	}
	sim, err := argosim.New(argosim.Config{RepoDir: t.TempDir(), Kube: kube, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if _, err := sim.Start(context.Background(), "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "unable to resolve") {
		t.Fatalf("Start on a directory that is not a repository = %v", err)
	}
}
