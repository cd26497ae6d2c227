// Package kubesim is a simulated Kubernetes API server: an in-memory object store served over the
// Kubernetes REST protocol, with just enough of it — discovery, get, list with label selectors,
// create, update, merge and JSON patches, delete and watch — for client-go's typed, dynamic and
// Istio/Argo CD clientsets to work against it unchanged.
//
// `opsctl sandbox` uses it as the cluster its simulated Argo CD syncs into, so opsctl's mesh and
// core-mode code paths run against a real HTTP API with real clients. It is not a cluster:
// nothing schedules pods, no admission or validation runs, and everything it shows is
// "simulated".
package kubesim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// Kind is one resource type the server stores.
type Kind struct {
	Group      string
	Version    string
	Resource   string // plural, e.g. "virtualservices"
	Kind       string // e.g. "VirtualService"
	Namespaced bool
}

// GVR returns the kind's group/version/resource.
func (k Kind) GVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Resource}
}

func (k Kind) apiVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// DefaultKinds are the kinds the SAGA chart renders plus Argo CD's Application and AppProject.
func DefaultKinds() []Kind {
	return []Kind{
		{"", "v1", "namespaces", "Namespace", false},
		{"", "v1", "services", "Service", true},
		{"", "v1", "serviceaccounts", "ServiceAccount", true},
		{"", "v1", "configmaps", "ConfigMap", true},
		{"", "v1", "secrets", "Secret", true},
		{"", "v1", "pods", "Pod", true},
		{"apps", "v1", "deployments", "Deployment", true},
		{"autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true},
		{"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true},
		{"networking.istio.io", "v1", "virtualservices", "VirtualService", true},
		{"networking.istio.io", "v1", "destinationrules", "DestinationRule", true},
		{"networking.istio.io", "v1", "gateways", "Gateway", true},
		{"security.istio.io", "v1", "peerauthentications", "PeerAuthentication", true},
		{"telemetry.istio.io", "v1", "telemetries", "Telemetry", true},
		{"monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", true},
		{"argoproj.io", "v1alpha1", "applications", "Application", true},
		{"argoproj.io", "v1alpha1", "appprojects", "AppProject", true},
	}
}

// Event is a change to an object, as a watch delivers it.
type Event struct {
	Type   string // ADDED, MODIFIED, DELETED
	Kind   Kind
	Object *unstructured.Unstructured
}

// ErrNotFound and ErrConflict are the store's errors (HTTP 404 and 409).
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Server is the simulated API server.
type Server struct {
	Token string // bearer token every request must carry; empty disables auth

	mu      sync.RWMutex
	kinds   map[string]Kind                                  // "group/version/resource" → kind
	objects map[string]map[string]*unstructured.Unstructured // kind key → "ns/name" → object
	rv      int64
	subs    map[int]chan Event
	nextSub int

	srv   *http.Server
	ln    net.Listener
	caPEM []byte
}

// New returns an empty server storing kinds (DefaultKinds when none are given).
func New(kinds ...Kind) *Server {
	if len(kinds) == 0 {
		kinds = DefaultKinds()
	}
	s := &Server{kinds: map[string]Kind{}, objects: map[string]map[string]*unstructured.Unstructured{}, subs: map[int]chan Event{}}
	for _, k := range kinds {
		s.kinds[kindKey(k.Group, k.Version, k.Resource)] = k
		s.objects[kindKey(k.Group, k.Version, k.Resource)] = map[string]*unstructured.Unstructured{}
	}
	return s
}

func kindKey(g, v, r string) string { return g + "/" + v + "/" + r }

// KindFor finds the stored kind of an object by apiVersion and kind.
func (s *Server) KindFor(apiVersion, kind string) (Kind, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.kinds {
		if k.apiVersion() == apiVersion && k.Kind == kind {
			return k, true
		}
	}
	return Kind{}, false
}

// Apply creates or replaces obj (matched by apiVersion, kind, namespace and name), as a
// server-side apply of a whole manifest would. It returns the stored copy. With a
// resourceVersion set it is an update of that version: a conflict when the object changed
// since, and ErrNotFound when it was deleted (it is not created again).
func (s *Server) Apply(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	k, ok := s.KindFor(obj.GetAPIVersion(), obj.GetKind())
	if !ok {
		return nil, fmt.Errorf("kubesim: kind %s %s is not served", obj.GetAPIVersion(), obj.GetKind())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.put(k, obj.DeepCopy(), false)
}

// Get returns a copy of the stored object.
func (s *Server) Get(gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.objects[kindKey(gvr.Group, gvr.Version, gvr.Resource)][namespace+"/"+name]
	if !ok {
		return nil, fmt.Errorf("%s %s/%s: %w", gvr.Resource, namespace, name, ErrNotFound)
	}
	return o.DeepCopy(), nil
}

// List returns copies of the objects of gvr in namespace ("" for all) matching selector.
func (s *Server) List(gvr schema.GroupVersionResource, namespace string, selector labels.Selector) []*unstructured.Unstructured {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.list(kindKey(gvr.Group, gvr.Version, gvr.Resource), namespace, selector)
}

func (s *Server) list(kk, namespace string, selector labels.Selector) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range s.objects[kk] {
		if namespace != "" && o.GetNamespace() != namespace {
			continue
		}
		if selector != nil && !selector.Matches(labels.Set(o.GetLabels())) {
			continue
		}
		out = append(out, o.DeepCopy())
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].GetNamespace()+"/"+out[i].GetName() < out[j].GetNamespace()+"/"+out[j].GetName()
	})
	return out
}

// Delete removes an object.
func (s *Server) Delete(gvr schema.GroupVersionResource, namespace, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.kinds[kindKey(gvr.Group, gvr.Version, gvr.Resource)]
	if !ok {
		return fmt.Errorf("kubesim: %s is not served", gvr)
	}
	return s.del(k, namespace, name)
}

func (s *Server) del(k Kind, namespace, name string) error {
	kk := kindKey(k.Group, k.Version, k.Resource)
	o, ok := s.objects[kk][namespace+"/"+name]
	if !ok {
		return fmt.Errorf("%s %s/%s: %w", k.Resource, namespace, name, ErrNotFound)
	}
	delete(s.objects[kk], namespace+"/"+name)
	s.rv++
	s.notify(Event{Type: "DELETED", Kind: k, Object: o.DeepCopy()})
	return nil
}

// put stores obj; with create set, an existing object is a conflict. A non-empty
// resourceVersion that differs from the stored one is a conflict too (optimistic concurrency).
func (s *Server) put(k Kind, obj *unstructured.Unstructured, create bool) (*unstructured.Unstructured, error) {
	if !k.Namespaced {
		obj.SetNamespace("")
	}
	if obj.GetName() == "" {
		if gn := obj.GetGenerateName(); gn != "" {
			obj.SetName(gn + string(uuid.NewUUID())[:5])
		} else {
			return nil, fmt.Errorf("kubesim: %s without metadata.name", k.Kind)
		}
	}
	obj.SetAPIVersion(k.apiVersion())
	obj.SetKind(k.Kind)
	kk := kindKey(k.Group, k.Version, k.Resource)
	id := obj.GetNamespace() + "/" + obj.GetName()
	old, exists := s.objects[kk][id]
	if exists && create {
		return nil, fmt.Errorf("%s %s: already exists: %w", k.Resource, id, ErrConflict)
	}
	if exists && obj.GetResourceVersion() != "" && obj.GetResourceVersion() != old.GetResourceVersion() {
		return nil, fmt.Errorf("%s %s: resourceVersion %s is stale (now %s): %w", k.Resource, id, obj.GetResourceVersion(), old.GetResourceVersion(), ErrConflict)
	}
	if !exists && !create && obj.GetResourceVersion() != "" {
		// An update of an object that was deleted meanwhile: the API server answers 404
		// rather than bringing the object back.
		return nil, fmt.Errorf("%s %s: %w", k.Resource, id, ErrNotFound)
	}
	s.rv++
	obj.SetResourceVersion(strconv.FormatInt(s.rv, 10))
	typ := "ADDED"
	if exists {
		typ = "MODIFIED"
		obj.SetUID(old.GetUID())
		obj.SetCreationTimestamp(old.GetCreationTimestamp())
		gen := old.GetGeneration()
		if !equalSpec(old, obj) {
			gen++
		}
		obj.SetGeneration(gen)
	} else {
		obj.SetUID(uuid.NewUUID())
		obj.SetGeneration(1)
	}
	s.objects[kk][id] = obj
	s.notify(Event{Type: typ, Kind: k, Object: obj.DeepCopy()})
	return obj.DeepCopy(), nil
}

func equalSpec(a, b *unstructured.Unstructured) bool {
	x, _ := json.Marshal(a.Object["spec"])
	y, _ := json.Marshal(b.Object["spec"])
	return string(x) == string(y)
}

// Watch subscribes to every change; cancel ends the subscription and closes the channel.
func (s *Server) Watch() (events <-chan Event, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan Event, 256)
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

// notify delivers an event without blocking the writer: a watcher that fell 256 events behind is
// dropped (its channel closes), as a real API server expires a slow watch.
func (s *Server) notify(e Event) {
	for id, ch := range s.subs {
		select {
		case ch <- e:
		default:
			delete(s.subs, id)
			close(ch)
		}
	}
}

// Start serves the API over HTTPS on addr (e.g. "127.0.0.1:0") with a fresh self-signed
// certificate, and returns its base URL. HTTPS is not optional: client-go only sends bearer
// tokens to a TLS server.
func (s *Server) Start(addr string) (string, error) {
	cert, caPEM, err := selfSigned()
	if err != nil {
		return "", err
	}
	s.caPEM = caPEM
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("kubesim listen %s: %w", addr, err)
	}
	s.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(s.ln) }()
	return "https://" + ln.Addr().String(), nil
}

// CAPEM is the PEM certificate clients must trust (set by Start).
func (s *Server) CAPEM() []byte { return s.caPEM }

func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("kubesim key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "kubesim"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("kubesim certificate: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caPEM, nil
}

// Close stops serving and ends every watch.
func (s *Server) Close() error {
	s.mu.Lock()
	for id, ch := range s.subs {
		delete(s.subs, id)
		close(ch)
	}
	s.mu.Unlock()
	if s.srv != nil {
		return s.srv.Close()
	}
	return nil
}

// Resources lists the served kinds.
func (s *Server) Resources() []Kind {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Kind, 0, len(s.kinds))
	for _, k := range s.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		return kindKey(out[i].Group, out[i].Version, out[i].Resource) < kindKey(out[j].Group, out[j].Version, out[j].Resource)
	})
	return out
}

func patchObject(current []byte, patchType string, patch []byte) ([]byte, error) {
	switch {
	case strings.HasPrefix(patchType, "application/merge-patch+json"), strings.HasPrefix(patchType, "application/strategic-merge-patch+json"),
		strings.HasPrefix(patchType, "application/apply-patch+yaml"):
		// Strategic merge and apply are treated as JSON merge patches: good enough for
		// annotations, labels and spec fields, and the simulator's only writers.
		return jsonpatch.MergePatch(current, patch)
	case strings.HasPrefix(patchType, "application/json-patch+json"):
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, err
		}
		return p.Apply(current)
	}
	return nil, fmt.Errorf("unsupported patch type %q", patchType)
}

// WriteKubeconfig writes a kubeconfig file whose context contextName points at baseURL with the
// server's token, so kubeconfig-driven clients (opsctl's kube context, client-go) can reach it.
func (s *Server) WriteKubeconfig(path, baseURL, contextName, namespace string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[5]s
users:
- name: %[1]s
  user:
    token: %[3]q
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s
    namespace: %[4]s
current-context: %[1]s
`, contextName, baseURL, s.Token, namespace, base64.StdEncoding.EncodeToString(s.caPEM))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
