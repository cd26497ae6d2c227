package platform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Dashboard is a Grafana dashboard JSON model, reduced to what checks need: identity, panels
// (including the ones nested in rows) and template variables.
type Dashboard struct {
	// Path is the file the dashboard was loaded from.
	Path string
	// UID is the dashboard's stable identifier, used in links and provisioning.
	UID string `json:"uid"`
	// Title is the dashboard title.
	Title string `json:"title"`
	// Panels are the top-level panels.
	Panels []Panel `json:"panels"`
	// Templating holds the template variables.
	Templating struct {
		List []TemplateVariable `json:"list"`
	} `json:"templating"`
}

// Panel is one Grafana panel.
type Panel struct {
	// ID is unique within the dashboard.
	ID int `json:"id"`
	// Type is the visualisation, e.g. timeseries, stat, table or row.
	Type string `json:"type"`
	// Title is the panel title.
	Title string `json:"title"`
	// Targets are the panel's queries.
	Targets []Target `json:"targets"`
	// Panels are the panels of a collapsed row.
	Panels []Panel `json:"panels"`
}

// Target is one panel query.
type Target struct {
	// RefID names the query within the panel (A, B, ...).
	RefID string `json:"refId"`
	// Expr is the PromQL expression, possibly with Grafana variables.
	Expr string `json:"expr"`
}

// TemplateVariable is a dashboard template variable. Query is either a string or Grafana's
// {query, refId} object, depending on the Grafana version that saved the dashboard.
type TemplateVariable struct {
	// Name is referenced as $name in queries.
	Name string `json:"name"`
	// Type is query, custom, interval, datasource, ...
	Type string `json:"type"`
	// Query is the raw variable query.
	Query json.RawMessage `json:"query"`
}

// DashboardQuery is one PromQL query of a dashboard, found in a panel or a variable.
type DashboardQuery struct {
	// Where names the panel and query, or the variable, for messages.
	Where string
	// Expr is the query as written in the dashboard.
	Expr string
	// PromQL is Expr with Grafana's variables replaced so that Prometheus's parser accepts it.
	PromQL string
}

// LoadDashboard reads a Grafana dashboard JSON file. Unparseable JSON, a missing uid or title,
// duplicate panel ids and panels without queries are errors.
func LoadDashboard(path string) (*Dashboard, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dashboard: %w", err)
	}
	var d Dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s: not a dashboard JSON document: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: trailing data after the dashboard", path)
	}
	d.Path = path
	if d.UID == "" || d.Title == "" {
		return nil, fmt.Errorf("%s: dashboard needs a uid and a title", path)
	}
	seen := map[int]string{}
	var errs []error
	var walk func(ps []Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			if prev, dup := seen[p.ID]; dup {
				errs = append(errs, fmt.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title))
			}
			seen[p.ID] = p.Title
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if len(p.Targets) == 0 {
				errs = append(errs, fmt.Errorf("panel %q has no queries", p.Title))
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					errs = append(errs, fmt.Errorf("panel %q query %s is empty", p.Title, t.RefID))
				}
			}
		}
	}
	walk(d.Panels)
	if len(d.Panels) == 0 {
		errs = append(errs, errors.New("no panels"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errors.Join(errs...))
	}
	return &d, nil
}

// Queries returns every PromQL query of the dashboard: panel targets and query variables of the
// label_values(selector, label) and query_result(expr) forms.
func (d *Dashboard) Queries() ([]DashboardQuery, error) {
	labelValues := regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)
	var out []DashboardQuery
	var walk func(ps []Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, t := range p.Targets {
				out = append(out, DashboardQuery{
					Where:  fmt.Sprintf("panel %q query %s", p.Title, t.RefID),
					Expr:   t.Expr,
					PromQL: GrafanaToPromQL(t.Expr),
				})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := variableQuery(v.Query)
		if err != nil {
			return nil, fmt.Errorf("%s variable %s: %w", d.Path, v.Name, err)
		}
		expr := ""
		if m := labelValues.FindStringSubmatch(q); m != nil {
			expr = m[1]
		} else if inner, ok := strings.CutPrefix(strings.TrimSpace(q), "query_result("); ok && strings.HasSuffix(inner, ")") {
			expr = strings.TrimSuffix(inner, ")")
		} else {
			return nil, fmt.Errorf("%s variable %s: unsupported query %q (want label_values(selector, label) or query_result(expr))", d.Path, v.Name, q)
		}
		out = append(out, DashboardQuery{Where: "variable " + v.Name, Expr: q, PromQL: GrafanaToPromQL(expr)})
	}
	return out, nil
}

func variableQuery(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("query variable without a query")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("query is neither a string nor {query: ...}: %w", err)
	}
	return obj.Query, nil
}

// GrafanaToPromQL replaces Grafana's variables so that Prometheus's parser can check a dashboard
// query: the interval and range variables become durations, any other variable (which only
// appears inside label matcher strings in our dashboards) becomes the word "var".
func GrafanaToPromQL(expr string) string {
	// $name, ${name}, ${name:format} and [[name]].
	variable := regexp.MustCompile(`\$\{([a-zA-Z0-9_]+)(?::[^}]*)?\}|\$([a-zA-Z0-9_]+)|\[\[([a-zA-Z0-9_]+)\]\]`)
	return variable.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variable.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		switch name {
		case "__rate_interval", "__interval", "__range", "__auto":
			return "5m"
		case "__range_s", "__interval_ms", "__range_ms", "__interval_s":
			return "300"
		}
		return "var"
	})
}
