package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Series of `opsctl agent`: per dead-letter topic (label dlt) what its survey found, per rule
// what its redrive passes did, and the agent's own state. Dashboards and alerts are checked
// against AgentNames as they are against Names.
const (
	DLTRecords           = "opsctl_dlt_records"
	DLTRecordsLastHour   = "opsctl_dlt_records_last_hour"
	DLTOldestAge         = "opsctl_dlt_oldest_record_age_seconds"
	DLTOperatorRecords   = "opsctl_dlt_operator_records"
	DLTOperatorOldestAge = "opsctl_dlt_operator_oldest_age_seconds"
	DLTRedriveWaiting    = "opsctl_dlt_redrive_waiting_records"
	DLTRedriveDue        = "opsctl_dlt_redrive_due_records"
	DLTRedriven          = "opsctl_dlt_redriven_records"
	DLTRedrivenCameBack  = "opsctl_dlt_redriven_came_back_records"
	DLTSurveyTimestamp   = "opsctl_dlt_survey_timestamp_seconds"
	RedriveRecords       = "opsctl_redrive_records_total"
	RedriveRefused       = "opsctl_redrive_refused_records"
	RedrivePasses        = "opsctl_redrive_passes_total"
	RedriveLastPass      = "opsctl_redrive_last_pass_timestamp_seconds"
	AgentLeader          = "opsctl_agent_leader"
	AgentHealthy         = "opsctl_agent_healthy"
	AgentLoopHealthy     = "opsctl_agent_loop_healthy"
	AgentLoopErrors      = "opsctl_agent_loop_errors_total"
	AgentPolicyValid     = "opsctl_agent_policy_valid"
	AgentInfo            = "opsctl_agent_info"
)

// Pass results, the result label of RedrivePasses.
const (
	PassOK     = "ok"
	PassError  = "error"
	PassPaused = "paused"
)

// AgentNames lists every series name the agent exports.
func AgentNames() []string {
	return []string{DLTRecords, DLTRecordsLastHour, DLTOldestAge, DLTOperatorRecords, DLTOperatorOldestAge,
		DLTRedriveWaiting, DLTRedriveDue, DLTRedriven, DLTRedrivenCameBack, DLTSurveyTimestamp,
		RedriveRecords, RedriveRefused, RedrivePasses, RedriveLastPass,
		AgentLeader, AgentHealthy, AgentLoopHealthy, AgentLoopErrors, AgentPolicyValid, AgentInfo}
}

// Agent holds the agent's collectors.
type Agent struct {
	// Registry is what the agent's /metrics serves: these collectors plus the Go and process
	// collectors.
	Registry *prometheus.Registry

	// Per DLT (label dlt), set from each survey; a DLT that disappears is dropped.
	DLTRecords, DLTRecordsLastHour, DLTOldestAge *prometheus.GaugeVec
	DLTOperatorRecords, DLTOperatorOldestAge     *prometheus.GaugeVec
	DLTRedriveWaiting, DLTRedriveDue             *prometheus.GaugeVec
	DLTRedriven, DLTRedrivenCameBack             *prometheus.GaugeVec
	DLTSurveyTimestamp                           prometheus.Gauge
	RedriveRecords                               *prometheus.CounterVec // dlt, rule
	RedriveRefused                               *prometheus.GaugeVec   // dlt, rule
	RedrivePasses                                *prometheus.CounterVec // result
	RedriveLastPass                              prometheus.Gauge
	Leader, Healthy, PolicyValid                 prometheus.Gauge
	LoopHealthy                                  *prometheus.GaugeVec   // loop
	LoopErrors                                   *prometheus.CounterVec // loop
	Info                                         *prometheus.GaugeVec   // identity, version, policy
	dltGauges                                    []*prometheus.GaugeVec
}

// NewAgent registers the agent's collectors on a fresh registry.
func NewAgent() *Agent {
	reg := prometheus.NewRegistry()
	m := &Agent{Registry: reg}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		reg.MustRegister(g)
		return g
	}
	one := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m.DLTRecords = gauge(DLTRecords, "Records in the dead-letter topic (as a read_committed consumer sees them).", "dlt")
	m.DLTRecordsLastHour = gauge(DLTRecordsLastHour, "Records dead-lettered in the last hour: the DLT's growth per hour.", "dlt")
	m.DLTOldestAge = gauge(DLTOldestAge, "Age in seconds of the DLT's oldest record (0 when empty).", "dlt")
	m.DLTOperatorRecords = gauge(DLTOperatorRecords, "Records no redrive rule will replay (no rule names their code, a hold rule does, or the poison guard let go) and no one replayed yet: waiting for an operator.", "dlt")
	m.DLTOperatorOldestAge = gauge(DLTOperatorOldestAge, "Age in seconds of the oldest record waiting for an operator (0 when none).", "dlt")
	m.DLTRedriveWaiting = gauge(DLTRedriveWaiting, "Records a redrive rule claims that wait for their step of the backoff ladder (or for a paused rule).", "dlt")
	m.DLTRedriveDue = gauge(DLTRedriveDue, "Records the next redrive pass replays.", "dlt")
	m.DLTRedriven = gauge(DLTRedriven, "Records redrive runs replayed from the DLT in the survey window (24h).", "dlt")
	m.DLTRedrivenCameBack = gauge(DLTRedrivenCameBack, "Records redriven in the survey window that failed again and came back to a dead-letter topic.", "dlt")
	m.dltGauges = []*prometheus.GaugeVec{m.DLTRecords, m.DLTRecordsLastHour, m.DLTOldestAge, m.DLTOperatorRecords,
		m.DLTOperatorOldestAge, m.DLTRedriveWaiting, m.DLTRedriveDue, m.DLTRedriven, m.DLTRedrivenCameBack}
	m.DLTSurveyTimestamp = one(DLTSurveyTimestamp, "Unix time of the last complete survey of the dead-letter topics.")
	m.RedriveRecords = counter(RedriveRecords, "Dead letters redriven (replayed by a redrive rule), by DLT and rule.", "dlt", "rule")
	m.RedriveRefused = gauge(RedriveRefused, "Due records the replay engine refused in the last pass (no original topic, target not allowed or missing): they wait for an operator.", "dlt", "rule")
	m.RedrivePasses = counter(RedrivePasses, "Redrive passes, by result (ok, error, paused).", "result")
	m.RedriveLastPass = one(RedriveLastPass, "Unix time the last redrive pass ended without an error.")
	m.Leader = one(AgentLeader, "1 while this agent holds the leader lease (or runs alone), else 0.")
	m.Healthy = one(AgentHealthy, "1 while every part of the agent works (election, loops, policy), else 0.")
	m.PolicyValid = one(AgentPolicyValid, "0 while the newest redrive policy was refused and an older one is in force, else 1.")
	m.LoopHealthy = gauge(AgentLoopHealthy, "1 while the loop's last step succeeded, else 0.", "loop")
	m.LoopErrors = counter(AgentLoopErrors, "Failed steps of a loop.", "loop")
	m.Info = gauge(AgentInfo, "Always 1: who the agent is and which policy it applies.", "identity", "version", "policy")
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ResetDLTs drops every per-DLT series, before a survey sets those of the DLTs that exist.
func (m *Agent) ResetDLTs() {
	for _, g := range m.dltGauges {
		g.Reset()
	}
}
