package platform

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// The alerts and dashboard panels of design section 6.6 (3) built on the opsctl agent's
// per-DLT metrics: growth, records waiting for an operator longer than N minutes, redrives
// that come back, and a panel per DLT.

func TestDLTAlertsOnAgentMetrics(t *testing.T) {
	rules := map[string]rulefmt.Rule{}
	for _, r := range allRules(loadAllRules(t)) {
		if r.Alert != "" {
			rules[r.Alert] = r
		}
	}
	tests := []struct {
		alert string
		op    string
		value float64
		reads []string
		by    string // the grouping the alert must keep
	}{
		{"DeadLettersWaitingForOperator", ">", 900, []string{"opsctl_dlt_operator_oldest_age_seconds"}, "by (namespace, dlt)"},
		{"DeadLetterTopicGrowthHigh", ">", 50, []string{"opsctl_dlt_records_last_hour"}, "by (namespace, dlt)"},
		{"DeadLetterRedrivesComeBack", ">", 0.5, []string{"opsctl_dlt_redriven_came_back_records", "opsctl_dlt_redriven_records"}, "by (namespace, dlt)"},
		{"DeadLetterRedriveRefused", ">", 0, []string{"opsctl_redrive_refused_records"}, "by (namespace, dlt, rule)"},
		{"OpsctlAgentNoLeader", "==", 0, []string{"opsctl_agent_leader"}, "by (namespace)"},
		{"OpsctlAgentUnhealthy", "==", 0, []string{"opsctl_agent_healthy"}, "by (namespace, pod)"},
		{"OpsctlAgentPolicyRefused", "==", 0, []string{"opsctl_agent_policy_valid"}, "by (namespace, pod)"},
		{"OpsctlAgentSurveyStale", ">", 900, []string{"opsctl_dlt_survey_timestamp_seconds"}, "by (namespace)"},
	}
	for _, tt := range tests {
		t.Run(tt.alert, func(t *testing.T) {
			r, ok := rules[tt.alert]
			if !ok {
				t.Fatalf("no alert %s", tt.alert)
			}
			if op, v := threshold(t, r.Expr); op != tt.op || v != tt.value {
				t.Errorf("threshold %s %v, want %s %v", op, v, tt.op, tt.value)
			}
			names, err := MetricNames(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tt.reads {
				if !slices.Contains(names, m) {
					t.Errorf("reads %v, want %s", names, m)
				}
			}
			if !strings.Contains(r.Expr, tt.by) {
				t.Errorf("expression does not aggregate %s:\n%s", tt.by, r.Expr)
			}
			if r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("summary %q, severity %q", r.Annotations["summary"], r.Labels["severity"])
			}
		})
	}
}

// TestDLTDashboardHasAPanelPerDLT checks the DLT dashboard repeats a panel per DLT over the
// agent's dlt label, and shows the backlog waiting for an operator and what came back.
func TestDLTDashboardHasAPanelPerDLT(t *testing.T) {
	d, ok := loadDashboards(t)["come2us-dlt"]
	if !ok {
		t.Fatal("no DLT dashboard")
	}
	var dltVar bool
	for _, v := range d.Templating.List {
		if v.Name == "dlt" && strings.Contains(string(v.Query), "opsctl_dlt_records") {
			dltVar = true
		}
	}
	if !dltVar {
		t.Error("no dlt variable over opsctl_dlt_records")
	}
	raw, err := os.ReadFile(filepath.Join(platformRoot, "grafana", "dashboards", "dlt.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Panels []struct {
			Title   string `json:"title"`
			Repeat  string `json:"repeat"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	repeated := false
	var all []string
	for _, p := range doc.Panels {
		for _, tg := range p.Targets {
			all = append(all, tg.Expr)
			if p.Repeat == "dlt" && strings.Contains(tg.Expr, `dlt="$dlt"`) {
				repeated = true
			}
		}
	}
	if !repeated {
		t.Error("no panel repeated per DLT (repeat: dlt, queries on dlt=\"$dlt\")")
	}
	joined := strings.Join(all, "\n")
	for _, m := range []string{"opsctl_dlt_operator_records", "opsctl_dlt_operator_oldest_age_seconds", "opsctl_dlt_records_last_hour",
		"opsctl_dlt_redriven_came_back_records", "opsctl_redrive_records_total", "opsctl_agent_leader"} {
		if !strings.Contains(joined, m) {
			t.Errorf("no panel reads %s", m)
		}
	}
}
