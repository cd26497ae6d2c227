package kubesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// Handler serves the Kubernetes REST API over the store.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

type route struct {
	kind      Kind
	namespace string
	name      string
	sub       string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
		writeStatus(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	p := strings.Trim(r.URL.Path, "/")
	switch p {
	case "version":
		writeJSON(w, http.StatusOK, map[string]string{"major": "1", "minor": "37", "gitVersion": "v1.37.0-kubesim", "platform": "simulated"})
		return
	case "api":
		writeJSON(w, http.StatusOK, map[string]any{"kind": "APIVersions", "versions": []string{"v1"}})
		return
	case "apis":
		writeJSON(w, http.StatusOK, s.groupList())
		return
	case "healthz", "readyz", "livez":
		_, _ = io.WriteString(w, "ok")
		return
	}
	segs := strings.Split(p, "/")
	var group, version string
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		version, segs = segs[1], segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		group, version, segs = segs[1], segs[2], segs[3:]
	default:
		writeStatus(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	if len(segs) == 0 {
		writeJSON(w, http.StatusOK, s.resourceList(group, version))
		return
	}
	rt, ok := s.parse(group, version, segs)
	if !ok {
		writeStatus(w, http.StatusNotFound, "NotFound", fmt.Sprintf("the server could not find the requested resource (%s)", r.URL.Path))
		return
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && rt.name == "" && (q.Get("watch") == "true" || q.Get("watch") == "1"):
		s.serveWatch(w, r, rt)
	case r.Method == http.MethodGet && rt.name == "":
		s.serveList(w, r, rt)
	case r.Method == http.MethodGet:
		s.mu.RLock()
		o, ok := s.objects[kindKey(rt.kind.Group, rt.kind.Version, rt.kind.Resource)][rt.namespace+"/"+rt.name]
		var b []byte
		if ok {
			b, _ = json.Marshal(o.Object)
		}
		s.mu.RUnlock()
		if !ok {
			writeNotFound(w, rt)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	case r.Method == http.MethodPost && rt.name == "":
		obj, err := readObject(r)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		if rt.kind.Namespaced {
			obj.SetNamespace(rt.namespace)
		}
		s.mu.Lock()
		out, err := s.put(rt.kind, obj, true)
		s.mu.Unlock()
		writeResult(w, http.StatusCreated, out, err)
	case r.Method == http.MethodPut && rt.name != "":
		obj, err := readObject(r)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		if obj.GetName() != rt.name {
			writeStatus(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("name %q in the body does not match %q in the URL", obj.GetName(), rt.name))
			return
		}
		if rt.kind.Namespaced {
			obj.SetNamespace(rt.namespace)
		}
		s.mu.Lock()
		if rt.sub == "status" {
			if cur, ok := s.objects[kindKey(rt.kind.Group, rt.kind.Version, rt.kind.Resource)][rt.namespace+"/"+rt.name]; ok {
				keep := cur.DeepCopy()
				keep.Object["status"] = obj.Object["status"]
				keep.SetResourceVersion(obj.GetResourceVersion())
				obj = keep
			}
		}
		out, err := s.put(rt.kind, obj, false)
		s.mu.Unlock()
		writeResult(w, http.StatusOK, out, err)
	case r.Method == http.MethodPatch && rt.name != "":
		patch, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		s.mu.Lock()
		out, err := s.patch(rt, r.Header.Get("Content-Type"), patch)
		s.mu.Unlock()
		writeResult(w, http.StatusOK, out, err)
	case r.Method == http.MethodDelete && rt.name != "":
		s.mu.Lock()
		err := s.del(rt.kind, rt.namespace, rt.name)
		s.mu.Unlock()
		if err != nil {
			writeResult(w, 0, nil, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Success"})
	default:
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not supported here")
	}
}

func (s *Server) patch(rt route, contentType string, patch []byte) (*unstructured.Unstructured, error) {
	kk := kindKey(rt.kind.Group, rt.kind.Version, rt.kind.Resource)
	cur, ok := s.objects[kk][rt.namespace+"/"+rt.name]
	if !ok {
		return nil, fmt.Errorf("%s %s/%s: %w", rt.kind.Resource, rt.namespace, rt.name, ErrNotFound)
	}
	b, _ := json.Marshal(cur.Object)
	nb, err := patchObject(b, contentType, patch)
	if err != nil {
		return nil, fmt.Errorf("patch %s %s: %v: %w", rt.kind.Resource, rt.name, err, errBadRequest)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(nb); err != nil {
		return nil, fmt.Errorf("patched %s %s is not an object: %v: %w", rt.kind.Resource, rt.name, err, errBadRequest)
	}
	obj.SetResourceVersion("") // a patch applies to the latest version
	return s.put(rt.kind, obj, false)
}

var errBadRequest = errors.New("bad request")

func (s *Server) parse(group, version string, segs []string) (route, bool) {
	var rt route
	var resource string
	if len(segs) >= 3 && segs[0] == "namespaces" {
		rt.namespace, resource = segs[1], segs[2]
		if len(segs) > 3 {
			rt.name = segs[3]
		}
		if len(segs) > 4 {
			rt.sub = segs[4]
		}
	} else {
		resource = segs[0]
		if len(segs) > 1 {
			rt.name = segs[1]
		}
		if len(segs) > 2 {
			rt.sub = segs[2]
		}
	}
	s.mu.RLock()
	k, ok := s.kinds[kindKey(group, version, resource)]
	s.mu.RUnlock()
	if !ok || (rt.sub != "" && rt.sub != "status") {
		return rt, false
	}
	rt.kind = k
	return rt, true
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, rt route) {
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "labelSelector: "+err.Error())
		return
	}
	s.mu.RLock()
	items := s.list(kindKey(rt.kind.Group, rt.kind.Version, rt.kind.Resource), rt.namespace, sel)
	rv := s.rv
	s.mu.RUnlock()
	out := make([]any, len(items))
	for i, o := range items {
		out[i] = o.Object
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"apiVersion": rt.kind.apiVersion(), "kind": rt.kind.Kind + "List",
		"metadata": map[string]any{"resourceVersion": strconv.FormatInt(rv, 10)}, "items": out,
	})
}

func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request, rt route) {
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "labelSelector: "+err.Error())
		return
	}
	flusher, _ := w.(http.Flusher)
	events, cancel := s.Watch()
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	rv := r.URL.Query().Get("resourceVersion")
	if rv == "" || rv == "0" {
		s.mu.RLock()
		initial := s.list(kindKey(rt.kind.Group, rt.kind.Version, rt.kind.Resource), rt.namespace, sel)
		s.mu.RUnlock()
		for _, o := range initial {
			_ = enc.Encode(map[string]any{"type": "ADDED", "object": o.Object})
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	timeout := 30 * time.Minute
	if t, err := strconv.Atoi(r.URL.Query().Get("timeoutSeconds")); err == nil && t > 0 {
		timeout = time.Duration(t) * time.Second
	}
	since, _ := strconv.ParseInt(rv, 10, 64)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-timer.C:
			return
		case e, ok := <-events:
			if !ok {
				return
			}
			if e.Kind != rt.kind || (rt.namespace != "" && e.Object.GetNamespace() != rt.namespace) || !sel.Matches(labels.Set(e.Object.GetLabels())) {
				continue
			}
			if n, err := strconv.ParseInt(e.Object.GetResourceVersion(), 10, 64); err == nil && n <= since && e.Type != "DELETED" {
				continue
			}
			if err := enc.Encode(map[string]any{"type": e.Type, "object": e.Object.Object}); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

func (s *Server) groupList() map[string]any {
	versions := map[string][]string{}
	for _, k := range s.Resources() {
		if k.Group == "" {
			continue
		}
		if !contains(versions[k.Group], k.Version) {
			versions[k.Group] = append(versions[k.Group], k.Version)
		}
	}
	names := make([]string, 0, len(versions))
	for g := range versions {
		names = append(names, g)
	}
	sort.Strings(names)
	groups := []any{}
	for _, g := range names {
		var vs []any
		for _, v := range versions[g] {
			vs = append(vs, map[string]string{"groupVersion": g + "/" + v, "version": v})
		}
		groups = append(groups, map[string]any{"name": g, "versions": vs, "preferredVersion": vs[0]})
	}
	return map[string]any{"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
}

func (s *Server) resourceList(group, version string) map[string]any {
	var rs []any
	for _, k := range s.Resources() {
		if k.Group != group || k.Version != version {
			continue
		}
		rs = append(rs, map[string]any{"name": k.Resource, "singularName": strings.ToLower(k.Kind), "namespaced": k.Namespaced,
			"kind": k.Kind, "verbs": []string{"get", "list", "watch", "create", "update", "patch", "delete"}})
		rs = append(rs, map[string]any{"name": k.Resource + "/status", "namespaced": k.Namespaced, "kind": k.Kind, "verbs": []string{"get", "update", "patch"}})
	}
	gv := version
	if group != "" {
		gv = group + "/" + version
	}
	return map[string]any{"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": rs}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func readObject(r *http.Request) (*unstructured.Unstructured, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/vnd.kubernetes.protobuf") {
		// client-go's typed clientset sends built-in kinds as protobuf; decode them with the
		// Kubernetes scheme and store them as JSON like everything else.
		typed, _, err := scheme.Codecs.UniversalDeserializer().Decode(b, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("body is not a Kubernetes protobuf object: %v", err)
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(typed)
		if err != nil {
			return nil, err
		}
		obj.Object = m
		return obj, nil
	}
	if err := obj.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("body is not a Kubernetes object: %v", err)
	}
	return obj, nil
}

func writeResult(w http.ResponseWriter, code int, obj *unstructured.Unstructured, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeStatus(w, http.StatusNotFound, "NotFound", err.Error())
	case errors.Is(err, ErrConflict):
		reason := "Conflict"
		if strings.Contains(err.Error(), "already exists") {
			reason = "AlreadyExists"
		}
		writeStatus(w, http.StatusConflict, reason, err.Error())
	case errors.Is(err, errBadRequest):
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())
	case err != nil:
		writeStatus(w, http.StatusUnprocessableEntity, "Invalid", err.Error())
	default:
		writeJSON(w, code, obj.Object)
	}
}

func writeNotFound(w http.ResponseWriter, rt route) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
		"message": fmt.Sprintf("%s.%s %q not found", rt.kind.Resource, rt.kind.Group, rt.name),
		"details": map[string]any{"name": rt.name, "group": rt.kind.Group, "kind": rt.kind.Resource},
	})
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": msg, "code": code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
