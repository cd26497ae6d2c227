package platform

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// CollectorPipeline is one pipeline of an OpenTelemetry Collector configuration.
type CollectorPipeline struct {
	// Name is the pipeline id, e.g. traces or traces/envoy.
	Name string
	// Receivers, Processors and Exporters are the component ids in order.
	Receivers, Processors, Exporters []string
}

// CollectorPipelines checks an OpenTelemetry Collector configuration (the "config" block of the
// collector chart's values) the way the collector does at start-up: every component a pipeline
// names must be defined in its section, every pipeline needs a receiver and an exporter, and a
// component id is type[/name]. Pipelines set to null (removed from chart defaults) are skipped.
func CollectorPipelines(cfg map[string]any) ([]CollectorPipeline, error) {
	service, ok := cfg["service"].(map[string]any)
	if !ok {
		return nil, errors.New("collector config has no service section")
	}
	pipelines, ok := service["pipelines"].(map[string]any)
	if !ok {
		return nil, errors.New("collector config has no service.pipelines")
	}
	defined := func(section string) map[string]bool {
		out := map[string]bool{}
		if m, ok := cfg[section].(map[string]any); ok {
			for id := range m {
				out[id] = true
			}
		}
		return out
	}
	sections := map[string]map[string]bool{
		"receivers":  defined("receivers"),
		"processors": defined("processors"),
		"exporters":  defined("exporters"),
	}
	var out []CollectorPipeline
	var errs []error
	names := make([]string, 0, len(pipelines))
	for n := range pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if pipelines[name] == nil {
			continue
		}
		body, ok := pipelines[name].(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("pipeline %s is not a mapping", name))
			continue
		}
		if typ, _, _ := strings.Cut(name, "/"); typ != "traces" && typ != "metrics" && typ != "logs" {
			errs = append(errs, fmt.Errorf("pipeline %s: unknown signal %q", name, typ))
		}
		p := CollectorPipeline{Name: name}
		for section, dst := range map[string]*[]string{"receivers": &p.Receivers, "processors": &p.Processors, "exporters": &p.Exporters} {
			list, _ := body[section].([]any)
			for _, item := range list {
				id, ok := item.(string)
				if !ok || id == "" {
					errs = append(errs, fmt.Errorf("pipeline %s: %s entry %v is not a component id", name, section, item))
					continue
				}
				if !sections[section][id] {
					errs = append(errs, fmt.Errorf("pipeline %s uses %s %q, which is not defined", name, strings.TrimSuffix(section, "s"), id))
				}
				*dst = append(*dst, id)
			}
		}
		if len(p.Receivers) == 0 || len(p.Exporters) == 0 {
			errs = append(errs, fmt.Errorf("pipeline %s needs at least one receiver and one exporter", name))
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, errors.New("collector config has no active pipeline")
	}
	return out, nil
}

// ComponentType returns the type part of a component id: otlp for otlp/tempo.
func ComponentType(id string) string {
	typ, _, _ := strings.Cut(id, "/")
	return typ
}
