package redrive

import (
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/metrics"
)

// TestLoopsDropPerDLTSeriesWhenIdle checks an agent that stops leading stops exporting the
// per-DLT series only the leader keeps up to date.
func TestLoopsDropPerDLTSeriesWhenIdle(t *testing.T) {
	t.Parallel()
	m := metrics.NewAgent()
	ExportSurvey(m, &Survey{DLTs: []DLTState{{Topic: ordersDLT, Records: 3, Operator: 1}}})
	m.RedriveRefused.WithLabelValues(ordersDLT, "transient-db").Set(2)
	loops := Loops(AgentConfig{Policy: Static{P: Default()}, Metrics: m})
	if len(loops) != 2 || loops[0].Name != "redrive" || loops[1].Name != "survey" {
		t.Fatalf("loops %+v", loops)
	}
	loops[1].OnIdle()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "opsctl_dlt_") && f.GetName() != metrics.DLTSurveyTimestamp || f.GetName() == metrics.RedriveRefused {
			t.Errorf("%s still exported by an idle agent", f.GetName())
		}
	}
}
