package chart_test

import (
	"errors"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/come2us/opsctl/pkg/artifacts/chart"
)

const validDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: order-service-v1
spec:
  selector:
    matchLabels: {app: order-service}
  template:
    metadata:
      labels: {app: order-service}
    spec:
      containers:
        - name: app
          image: x:1
`

const validVirtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: order-service
spec:
  hosts: [order-service]
  http:
    - route:
        - destination: {host: order-service, subset: v1}
          weight: 100
`

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string
		wantIs  error
	}{
		{name: "deployment", doc: validDeployment},
		{name: "virtual service", doc: validVirtualService},
		{name: "empty and comment-only documents", doc: "---\n# nothing\n---\n" + validDeployment + "---\n"},
		{
			name:    "unknown field in a Kubernetes spec",
			doc:     strings.Replace(validDeployment, "  selector:", "  replicaz: 3\n  selector:", 1),
			wantErr: `unknown field "spec.replicaz"`,
		},
		{
			name:    "field in the wrong case",
			doc:     strings.Replace(validDeployment, "  selector:", "  Replicas: 3\n  selector:", 1),
			wantErr: "Replicas",
		},
		{
			name:    "unknown field in an Istio spec",
			doc:     strings.Replace(validVirtualService, "          weight: 100", "          weight: 100\n          wieght: 5", 1),
			wantErr: "wieght",
		},
		{
			name:    "unknown top-level field on an Istio object",
			doc:     validVirtualService + "extra: 1\n",
			wantErr: `unknown field "extra"`,
		},
		{
			name:    "duplicate key",
			doc:     strings.Replace(validDeployment, "  name: order-service-v1", "  name: order-service-v1\n  name: again", 1),
			wantErr: "already set",
		},
		{
			name:    "wrong type",
			doc:     strings.Replace(validVirtualService, "weight: 100", "weight: hundred", 1),
			wantErr: "VirtualService order-service",
		},
		{
			name:   "unknown kind",
			doc:    "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
			wantIs: chart.ErrUnknownKind,
		},
		{name: "missing kind", doc: "apiVersion: v1\nmetadata: {name: w}\n", wantErr: "apiVersion and kind are required"},
		{name: "missing name", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", wantErr: "metadata.name is required"},
		{name: "not YAML", doc: "apiVersion: [\n", wantErr: "invalid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := chart.Decode([]byte(tt.doc))
			switch {
			case tt.wantIs != nil:
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("err = %v, want %v", err, tt.wantIs)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if objs != nil {
					t.Errorf("got objects with an error: %v", objs)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if len(objs) != 1 {
					t.Fatalf("%d objects, want 1", len(objs))
				}
			}
		})
	}
}

func TestDecodeTypes(t *testing.T) {
	objs, err := chart.Decode([]byte(validDeployment + "---\n" + validVirtualService))
	if err != nil {
		t.Fatal(err)
	}
	m := &chart.Manifest{Objects: objs}
	deps := chart.Of[*appsv1.Deployment](m)
	vss := chart.Of[*istionetworking.VirtualService](m)
	if len(deps) != 1 || deps[0].Name != "order-service-v1" || deps[0].Spec.Template.Spec.Containers[0].Image != "x:1" {
		t.Errorf("Deployment not decoded: %+v", deps)
	}
	if len(vss) != 1 || vss[0].Spec.GetHttp()[0].GetRoute()[0].GetWeight() != 100 {
		t.Errorf("VirtualService not decoded: %+v", vss)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(validDeployment))
	f.Add([]byte(validVirtualService))
	f.Add([]byte("---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n"))
	f.Add([]byte("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: d}\nspec: {mtls: {mode: STRICT}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := chart.Decode(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			if o.Value == nil || o.Kind == "" || o.Name == "" {
				t.Fatalf("decoded object without identity: %+v", o)
			}
		}
	})
}
