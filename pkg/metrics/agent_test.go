package metrics

import (
	"slices"
	"strings"
	"testing"
)

// TestAgentNamesAreWhatTheAgentExports gathers the agent's registry with every series set and
// checks it exports exactly AgentNames, which dashboards and alerts are checked against.
func TestAgentNamesAreWhatTheAgentExports(t *testing.T) {
	m := NewAgent()
	for _, g := range m.dltGauges {
		g.WithLabelValues("orders-failed.DLT").Set(1)
	}
	m.DLTSurveyTimestamp.Set(1)
	m.RedriveRecords.WithLabelValues("orders-failed.DLT", "transient-db").Inc()
	m.RedriveRefused.WithLabelValues("orders-failed.DLT", "transient-db").Set(0)
	m.RedrivePasses.WithLabelValues(PassOK).Inc()
	m.RedriveLastPass.Set(1)
	m.Leader.Set(1)
	m.Healthy.Set(1)
	m.PolicyValid.Set(1)
	m.LoopHealthy.WithLabelValues("redrive").Set(1)
	m.LoopErrors.WithLabelValues("redrive").Inc()
	m.Info.WithLabelValues("opsctl-agent@pod", "dev", "abc").Set(1)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "go_") && !strings.HasPrefix(f.GetName(), "process_") {
			got = append(got, f.GetName())
		}
	}
	want := AgentNames()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("exported %v\nAgentNames %v", got, want)
	}
	m.ResetDLTs()
	families, _ = m.Registry.Gather()
	for _, f := range families {
		if f.GetName() == DLTRecords {
			t.Error("ResetDLTs left per-DLT series")
		}
	}
}
