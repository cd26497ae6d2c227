package argosim

import (
	"context"
	"errors"
	"fmt"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// Application and AppProject objects live in the simulated cluster, so argocd-server's API
// (this package's gRPC server) and `--core` clients reading the Kubernetes API see the same
// objects, and a core-mode client's refresh annotation or sync operation reaches the
// controller through the store's watch.

var (
	gvrApplication = v1alpha1.SchemeGroupVersion.WithResource("applications")
	gvrAppProject  = v1alpha1.SchemeGroupVersion.WithResource("appprojects")
	gvrNamespace   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// maxUpdateAttempts bounds read-modify-write retries on conflicting writers.
const maxUpdateAttempts = 8

func toApplication(u *unstructured.Unstructured) (*v1alpha1.Application, error) {
	var a v1alpha1.Application
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &a); err != nil {
		return nil, fmt.Errorf("decode Application %s: %w", u.GetName(), err)
	}
	return &a, nil
}

func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", obj, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// getApp reads one Application.
func (s *Server) getApp(name string) (*v1alpha1.Application, error) {
	u, err := s.kube.Get(gvrApplication, s.appNamespace, name)
	if errors.Is(err, kubesim.ErrNotFound) {
		return nil, fmt.Errorf("application %q: %w", name, ErrAppNotFound)
	}
	if err != nil {
		return nil, err
	}
	return toApplication(u)
}

// listApps reads every Application, sorted by name.
func (s *Server) listApps() ([]*v1alpha1.Application, error) {
	var out []*v1alpha1.Application
	for _, u := range s.kube.List(gvrApplication, s.appNamespace, nil) {
		a, err := toApplication(u)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// updateApp applies mutate to the latest copy of an Application and stores it, retrying when
// another writer (a core-mode client, the gRPC server) changed it in between. mutate returns
// false when there is nothing to write.
func (s *Server) updateApp(ctx context.Context, name string, mutate func(*v1alpha1.Application) (bool, error)) (*v1alpha1.Application, error) {
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a, err := s.getApp(name)
		if err != nil {
			return nil, err
		}
		changed, err := mutate(a)
		if err != nil {
			return nil, err
		}
		if !changed {
			return a, nil
		}
		u, err := toUnstructured(a)
		if err != nil {
			return nil, err
		}
		stored, err := s.kube.Apply(u)
		if errors.Is(err, kubesim.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store application %s: %w", name, err)
		}
		return toApplication(stored)
	}
	return nil, fmt.Errorf("store application %s: %d conflicting writes in a row", name, maxUpdateAttempts)
}
