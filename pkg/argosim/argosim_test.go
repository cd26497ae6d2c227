package argosim_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/come2us/opsctl/pkg/argosim"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/kubesim"
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
