package platform

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// RuleObject is one PrometheusRule manifest, decoded with the Prometheus Operator's own type and
// validated with Prometheus's own rule-file loader.
type RuleObject struct {
	// Path is the manifest file.
	Path string
	// Object is the decoded PrometheusRule.
	Object *monitoringv1.PrometheusRule
	// Groups is spec.groups as Prometheus loads it (rulefmt), the same check `promtool check
	// rules` runs on a rule file.
	Groups *rulefmt.RuleGroups
}

// LoadPrometheusRules reads a manifest file of one or more YAML documents. Every document must be
// a monitoring.coreos.com/v1 PrometheusRule without unknown fields; its groups must pass
// Prometheus's rule validation (valid PromQL, rule and label names, templates in annotations).
// All problems are returned together, each naming the file, the object and the rule.
func LoadPrometheusRules(path string) ([]RuleObject, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	docs, err := splitYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []RuleObject
	var errs []error
	for i, doc := range docs {
		obj, err := decodeRuleObject(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s document %d: %w", path, i+1, err))
			continue
		}
		groups, err := validateRuleGroups(obj)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s PrometheusRule %s: %w", path, obj.Name, err))
			continue
		}
		out = append(out, RuleObject{Path: path, Object: obj, Groups: groups})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PrometheusRule objects", path)
	}
	return out, nil
}

func decodeRuleObject(doc []byte) (*monitoringv1.PrometheusRule, error) {
	var obj monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
		return nil, fmt.Errorf("decode PrometheusRule: %w", err)
	}
	if obj.APIVersion != monitoringv1.SchemeGroupVersion.String() || obj.Kind != monitoringv1.PrometheusRuleKind {
		return nil, fmt.Errorf("got %s %s, want %s %s", obj.APIVersion, obj.Kind, monitoringv1.SchemeGroupVersion, monitoringv1.PrometheusRuleKind)
	}
	if obj.Name == "" || obj.Namespace == "" {
		return nil, errors.New("metadata.name and metadata.namespace are required")
	}
	return &obj, nil
}

// validateRuleGroups hands spec.groups to Prometheus's loader exactly as the operator renders
// it into the rule file Prometheus reads.
func validateRuleGroups(obj *monitoringv1.PrometheusRule) (*rulefmt.RuleGroups, error) {
	spec, err := yaml.Marshal(obj.Spec)
	if err != nil {
		return nil, fmt.Errorf("render groups: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	groups, errs := rulefmt.Parse(spec, false, model.LegacyValidation, parser.NewParser(parser.Options{}), logger)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(groups.Groups) == 0 {
		return nil, errors.New("no rule groups")
	}
	return groups, nil
}

// MetricNames parses a PromQL expression with Prometheus's parser and returns the metric names its
// selectors read, sorted and de-duplicated. A selector without a literal metric name (only a
// regex on __name__, or only labels) is an error, because the metrics it reads cannot be checked.
func MetricNames(expr string) ([]string, error) {
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse PromQL %q: %w", expr, err)
	}
	seen := map[string]bool{}
	var walkErr error
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type.String() == "=" {
					name = m.Value
				}
			}
		}
		if name == "" {
			walkErr = fmt.Errorf("selector %s names no metric", vs.String())
			return walkErr
		}
		seen[name] = true
		return nil
	})
	if walkErr != nil {
		return nil, walkErr
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// splitYAML splits a multi-document YAML stream, dropping documents that hold only comments.
func splitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split YAML documents: %w", err)
		}
		if isBlankYAML(doc) {
			continue
		}
		docs = append(docs, doc)
	}
}

func isBlankYAML(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		l := strings.TrimSpace(line)
		if l != "" && !strings.HasPrefix(l, "#") && l != "---" {
			return false
		}
	}
	return true
}
