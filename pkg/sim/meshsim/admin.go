package meshsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"
)

// FaultSpec is a fault as the admin API reads and writes it: {"delay": "300ms",
// "errorRatio": 0.1, "status": 503}.
type FaultSpec struct {
	Env        string  `json:"env,omitempty"`
	App        string  `json:"app,omitempty"`
	Version    string  `json:"version,omitempty"`
	Delay      string  `json:"delay,omitempty"`
	ErrorRatio float64 `json:"errorRatio,omitempty"`
	Status     int     `json:"status,omitempty"`
}

// Fault parses the spec's fault part.
func (s FaultSpec) Fault() (Fault, error) {
	f := Fault{ErrorRatio: s.ErrorRatio, Status: s.Status}
	if s.Delay != "" {
		d, err := time.ParseDuration(s.Delay)
		if err != nil {
			return Fault{}, fmt.Errorf("delay %q: %w", s.Delay, err)
		}
		f.Delay = d
	}
	return f, nil
}

func (m *Mesh) listFaults(w http.ResponseWriter, _ *http.Request) {
	var out []FaultSpec
	for k, f := range m.Faults() {
		s := FaultSpec{Env: k.Env, App: k.App, Version: k.Version, ErrorRatio: f.ErrorRatio, Status: f.Status}
		if f.Delay > 0 {
			s.Delay = f.Delay.String()
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Env+out[i].App+out[i].Version < out[j].Env+out[j].App+out[j].Version
	})
	if out == nil {
		out = []FaultSpec{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (m *Mesh) putFault(w http.ResponseWriter, r *http.Request) {
	var spec FaultSpec
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body is not a fault (" + err.Error() + "); nothing changed"})
		return
	}
	f, err := spec.Fault()
	if err == nil {
		err = m.SetFault(FaultKey{Env: r.PathValue("env"), App: r.PathValue("app"), Version: r.PathValue("version")}, f)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (m *Mesh) deleteFault(w http.ResponseWriter, r *http.Request) {
	if err := m.SetFault(FaultKey{Env: r.PathValue("env"), App: r.PathValue("app"), Version: r.PathValue("version")}, Fault{}); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
