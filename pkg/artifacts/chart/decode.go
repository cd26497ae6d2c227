package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	istiotelemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest: its identity, the YAML it came from and the typed value
// (for example *appsv1.Deployment or *istionetworking.VirtualService).
type Object struct {
	// Source is the template file that produced the object (set by Render; empty from Decode).
	Source     string
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// Value is a pointer to the object's Go type.
	Value any
	// YAML is the document the object was decoded from.
	YAML []byte
}

// ErrUnknownKind is returned by Decode for an apiVersion/kind it has no Go type for. The
// decoder refuses such objects rather than passing them through unchecked.
var ErrUnknownKind = errors.New("no Go type registered for this apiVersion/kind")

// kind describes how to decode one apiVersion/kind.
type kind struct {
	new func() any
	// spec returns the protobuf spec of Istio objects, whose generated UnmarshalJSON accepts
	// unknown fields; Decode re-reads the spec with protojson, which does not.
	spec func(any) proto.Message
}

// kinds lists every type the GitOps tree may contain. It is built per call so the package has
// no mutable global state.
func kinds() map[string]kind {
	plain := func(f func() any) kind { return kind{new: f} }
	return map[string]kind{
		"v1/ConfigMap":                            plain(func() any { return &corev1.ConfigMap{} }),
		"v1/Namespace":                            plain(func() any { return &corev1.Namespace{} }),
		"v1/Secret":                               plain(func() any { return &corev1.Secret{} }),
		"v1/Service":                              plain(func() any { return &corev1.Service{} }),
		"v1/ServiceAccount":                       plain(func() any { return &corev1.ServiceAccount{} }),
		"apps/v1/Deployment":                      plain(func() any { return &appsv1.Deployment{} }),
		"autoscaling/v2/HorizontalPodAutoscaler":  plain(func() any { return &autoscalingv2.HorizontalPodAutoscaler{} }),
		"policy/v1/PodDisruptionBudget":           plain(func() any { return &policyv1.PodDisruptionBudget{} }),
		"networking.k8s.io/v1/Ingress":            plain(func() any { return &networkingv1.Ingress{} }),
		"monitoring.coreos.com/v1/ServiceMonitor": plain(func() any { return &monitoringv1.ServiceMonitor{} }),
		"monitoring.coreos.com/v1/PodMonitor":     plain(func() any { return &monitoringv1.PodMonitor{} }),

		// The opsctl agent's leader election.
		"rbac.authorization.k8s.io/v1/Role":        plain(func() any { return &rbacv1.Role{} }),
		"rbac.authorization.k8s.io/v1/RoleBinding": plain(func() any { return &rbacv1.RoleBinding{} }),

		"networking.istio.io/v1/VirtualService": {
			new:  func() any { return &istionetworking.VirtualService{} },
			spec: func(o any) proto.Message { return &o.(*istionetworking.VirtualService).Spec },
		},
		"networking.istio.io/v1/DestinationRule": {
			new:  func() any { return &istionetworking.DestinationRule{} },
			spec: func(o any) proto.Message { return &o.(*istionetworking.DestinationRule).Spec },
		},
		"networking.istio.io/v1/Gateway": {
			new:  func() any { return &istionetworking.Gateway{} },
			spec: func(o any) proto.Message { return &o.(*istionetworking.Gateway).Spec },
		},
		"security.istio.io/v1/PeerAuthentication": {
			new:  func() any { return &istiosecurity.PeerAuthentication{} },
			spec: func(o any) proto.Message { return &o.(*istiosecurity.PeerAuthentication).Spec },
		},
		"telemetry.istio.io/v1/Telemetry": {
			new:  func() any { return &istiotelemetry.Telemetry{} },
			spec: func(o any) proto.Message { return &o.(*istiotelemetry.Telemetry).Spec },
		},
	}
}

// Decode splits a YAML stream into documents and decodes each one strictly into its Go type:
// unknown fields, duplicate keys, fields in the wrong case, unknown kinds and missing
// apiVersion/kind/metadata.name are all errors. Empty documents are skipped.
func Decode(data []byte) ([]Object, error) {
	registry := kinds()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []Object
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if isEmptyDoc(doc) {
			continue
		}
		obj, err := decodeOne(registry, doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		objs = append(objs, obj)
	}
}

func isEmptyDoc(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

func decodeOne(registry map[string]kind, doc []byte) (Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return Object{}, fmt.Errorf("invalid YAML: %w", err)
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Spec jsonRaw `json:"spec"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		return Object{}, fmt.Errorf("read apiVersion/kind: %w", err)
	}
	if head.APIVersion == "" || head.Kind == "" {
		return Object{}, fmt.Errorf("apiVersion and kind are required")
	}
	id := head.APIVersion + "/" + head.Kind
	if head.Metadata.Name == "" {
		return Object{}, fmt.Errorf("%s: metadata.name is required", id)
	}
	k, ok := registry[id]
	if !ok {
		return Object{}, fmt.Errorf("%s %s: %w", id, head.Metadata.Name, ErrUnknownKind)
	}
	v := k.new()
	strict, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
	}
	if len(strict) > 0 {
		return Object{}, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, errors.Join(strict...))
	}
	if k.spec != nil && len(head.Spec) > 0 {
		if err := (protojson.UnmarshalOptions{}).Unmarshal(head.Spec, k.spec(v)); err != nil {
			return Object{}, fmt.Errorf("%s %s: spec: %w", head.Kind, head.Metadata.Name, err)
		}
	}
	return Object{
		APIVersion: head.APIVersion,
		Kind:       head.Kind,
		Namespace:  head.Metadata.Namespace,
		Name:       head.Metadata.Name,
		Value:      v,
		YAML:       doc,
	}, nil
}

// jsonRaw keeps a JSON value undecoded (like json.RawMessage) for the second, protobuf-aware
// pass over Istio specs.
type jsonRaw []byte

// UnmarshalJSON implements json.Unmarshaler by keeping a copy of the raw value.
func (r *jsonRaw) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}
