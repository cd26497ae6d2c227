package promsim

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/model/value"
)

// target is a Target with its labels prepared and the series of its last scrape, for
// staleness markers.
type target struct {
	Target
	labels labels.Labels            // job, instance and the extra labels
	last   map[uint64]labels.Labels // series of the previous scrape (without `up`)
}

func newTarget(t Target) (*target, error) {
	m := map[string]string{model.JobLabel: t.Job, model.InstanceLabel: t.Instance}
	for k, v := range t.Labels {
		if !model.UTF8Validation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
			return nil, fmt.Errorf("promsim: target %s/%s: invalid label name %q", t.Job, t.Instance, k)
		}
		if k == model.JobLabel || k == model.InstanceLabel {
			return nil, fmt.Errorf("promsim: target %s/%s: set %s through the Target field, not Labels", t.Job, t.Instance, k)
		}
		m[k] = v
	}
	return &target{Target: t, labels: labels.FromMap(m), last: map[uint64]labels.Labels{}}, nil
}

// sample is one float sample of a scrape.
type sample struct {
	lset labels.Labels
	v    float64
}

func (s *Server) scrape(t *target) error {
	start := s.cfg.Now()
	ts := timestamp.FromTime(start)
	mfs, gatherErr := t.Gatherer.Gather()
	var samples []sample
	if gatherErr == nil || len(mfs) > 0 {
		// Like Prometheus, a partial gather is still ingested; only an empty one is a failure.
		samples = t.samples(mfs)
	}
	up := 1.0
	if gatherErr != nil && len(mfs) == 0 {
		up = 0
	}
	seen := make(map[uint64]labels.Labels, len(samples))
	batch := make([]sample, 0, len(samples)+len(t.last)+3)
	for _, smp := range samples {
		h := smp.lset.Hash()
		if _, dup := seen[h]; dup {
			continue // a duplicate series in one scrape: Prometheus drops it too
		}
		seen[h] = smp.lset
		batch = append(batch, smp)
	}
	stale := math.Float64frombits(value.StaleNaN)
	for h, lset := range t.last {
		if _, ok := seen[h]; !ok {
			batch = append(batch, sample{lset: lset, v: stale})
		}
	}
	for _, m := range []struct {
		name string
		v    float64
	}{
		{"up", up},
		{"scrape_duration_seconds", s.cfg.Now().Sub(start).Seconds()},
		{"scrape_samples_scraped", float64(len(samples))},
	} {
		b := labels.NewBuilder(t.labels)
		b.Set(model.MetricNameLabel, m.name)
		batch = append(batch, sample{lset: b.Labels(), v: m.v})
	}
	s.db.append(batch, ts)
	t.last = seen
	if gatherErr != nil {
		return fmt.Errorf("promsim: gather %s/%s: %w", t.Job, t.Instance, gatherErr)
	}
	return nil
}

// samples turns gathered metric families into float samples as Prometheus ingests classic
// exposition: counters, gauges and untyped values as they are, summaries as quantile series plus
// _sum and _count, histograms as cumulative _bucket series plus _sum and _count.
func (t *target) samples(mfs []*dto.MetricFamily) []sample {
	var out []sample
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			add := func(suffix string, v float64, extra ...string) {
				out = append(out, sample{lset: t.series(name+suffix, m.GetLabel(), extra...), v: v})
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add("", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add("", m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add("", m.GetUntyped().GetValue())
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					add("", q.GetValue(), model.QuantileLabel, formatFloat(q.GetQuantile()))
				}
				add("_sum", sm.GetSampleSum())
				add("_count", float64(sm.GetSampleCount()))
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				infSeen := false
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), +1) {
						infSeen = true
					}
					add("_bucket", float64(b.GetCumulativeCount()), model.BucketLabel, formatFloat(b.GetUpperBound()))
				}
				if !infSeen {
					add("_bucket", float64(h.GetSampleCount()), model.BucketLabel, "+Inf")
				}
				add("_sum", h.GetSampleSum())
				add("_count", float64(h.GetSampleCount()))
			}
		}
	}
	return out
}

// series builds a series' labels: the exposed labels, with any that collide with a target label
// renamed to exported_<name> (honor_labels: false), then the target labels and the name.
func (t *target) series(name string, exposed []*dto.LabelPair, extra ...string) labels.Labels {
	m := make(map[string]string, len(exposed)+t.labels.Len()+2)
	for _, lp := range exposed {
		m[lp.GetName()] = lp.GetValue()
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	t.labels.Range(func(l labels.Label) {
		if v, ok := m[l.Name]; ok {
			exported := "exported_" + l.Name
			for {
				if _, taken := m[exported]; !taken {
					break
				}
				exported = "exported_" + exported
			}
			m[exported] = v
		}
		m[l.Name] = l.Value
	})
	m[model.MetricNameLabel] = name
	for k, v := range m {
		if v == "" {
			delete(m, k) // an empty label is no label
		}
	}
	return labels.FromMap(m)
}

// formatFloat renders le and quantile values as Prometheus 3 normalises them on ingestion:
// always with a decimal point ("1.0", "0.005", "+Inf").
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
