package agent

import (
	"sort"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/come2us/opsctl/pkg/metrics"
)

// Roles of an agent.
const (
	RoleLeader  = "leader"  // holds the lease: its loops run
	RoleStandby = "standby" // another agent leads (or none does yet): its loops wait
	RoleSingle  = "single"  // no Kubernetes configured: it runs alone, always acting
)

// Component is one part of the agent whose health it reports: the election, each loop, the
// policy.
type Component struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	// Error is the last failure while unhealthy.
	Error string `json:"error,omitempty"`
	// Since is when it became healthy or unhealthy; LastOK when it last worked.
	Since  time.Time `json:"since"`
	LastOK time.Time `json:"lastOk,omitzero"`
	// Idle says the component is not running (a loop on a standby agent): it does not count.
	Idle bool `json:"idle,omitempty"`
}

// Status is what /status serves: who the agent is, whether it leads, and the health of every
// component.
type Status struct {
	Identity string `json:"identity"`
	Role     string `json:"role"`
	// Leader is the identity of the agent holding the lease, as last observed ("" unknown).
	Leader     string      `json:"leader,omitempty"`
	Healthy    bool        `json:"healthy"`
	Components []Component `json:"components"`
}

// health is the agent's state, shared by its loops, its election and its HTTP endpoints.
type health struct {
	clock    clock.PassiveClock
	metrics  *metrics.Agent
	identity string

	mu         sync.Mutex
	role       string
	leader     string
	components map[string]*Component
}

func newHealth(c clock.PassiveClock, m *metrics.Agent, identity, role string) *health {
	h := &health{clock: c, metrics: m, identity: identity, role: role, components: map[string]*Component{}}
	h.publish()
	return h
}

// set records whether component name works now; err nil means it does.
func (h *health) set(name string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	c := h.components[name]
	if c == nil {
		c = &Component{Name: name, Healthy: err == nil, Since: now}
		h.components[name] = c
	}
	ok := err == nil
	if c.Healthy != ok || c.Idle {
		c.Since = now
	}
	c.Healthy, c.Idle = ok, false
	if ok {
		c.Error, c.LastOK = "", now
	} else {
		c.Error = err.Error()
	}
	h.publishLocked()
}

// idle marks component name as not running; it no longer counts until it reports again.
func (h *health) idle(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.components[name]; c != nil && !c.Idle {
		c.Idle, c.Since = true, h.clock.Now()
	}
	h.publishLocked()
}

func (h *health) setRole(role string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.role = role
	h.publishLocked()
}

func (h *health) setLeader(identity string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leader = identity
}

// status returns a snapshot, components by name.
func (h *health) status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Status{Identity: h.identity, Role: h.role, Leader: h.leader, Healthy: h.healthyLocked(), Components: []Component{}}
	for _, c := range h.components {
		s.Components = append(s.Components, *c)
	}
	sort.Slice(s.Components, func(i, j int) bool { return s.Components[i].Name < s.Components[j].Name })
	return s
}

func (h *health) healthyLocked() bool {
	for _, c := range h.components {
		if !c.Healthy && !c.Idle {
			return false
		}
	}
	return true
}

func (h *health) publish() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked()
}

// publishLocked mirrors the state into the metrics.
func (h *health) publishLocked() {
	if h.metrics == nil {
		return
	}
	h.metrics.Healthy.Set(b2f(h.healthyLocked()))
	h.metrics.Leader.Set(b2f(h.role == RoleLeader || h.role == RoleSingle))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
