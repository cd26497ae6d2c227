package promsim

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// samplesPerChunk is where a series cuts a new chunk, as Prometheus's head does.
const samplesPerChunk = 120

// store is an in-memory time-series store: float samples compressed in Prometheus's own XOR
// chunks, served to the PromQL engine through storage.Queryable. It stands in for the tsdb
// package, which would link Prometheus's configuration package — and with it the AWS, Azure
// and Google SDKs and testify — into opsctl. It keeps samples for the retention period only and
// nothing on disk; the sandbox's series start afresh on every run.
type store struct {
	mu     sync.RWMutex
	series map[uint64]*memSeries
}

type memSeries struct {
	lset   labels.Labels
	chunks []*memChunk
	app    chunkenc.Appender
}

type memChunk struct {
	chunk      *chunkenc.XORChunk
	minT, maxT int64
}

func newStore() *store {
	return &store{series: map[uint64]*memSeries{}}
}

// append adds one sample per series; samples at or before a series' last timestamp are dropped
// (Prometheus refuses out-of-order samples too).
func (s *store) append(batch []sample, t int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, smp := range batch {
		h := smp.lset.Hash()
		ms, ok := s.series[h]
		if !ok {
			ms = &memSeries{lset: smp.lset}
			s.series[h] = ms
		}
		ms.add(t, smp.v)
	}
}

func (ms *memSeries) add(t int64, v float64) {
	if n := len(ms.chunks); n > 0 && ms.chunks[n-1].maxT >= t {
		return
	}
	if n := len(ms.chunks); n == 0 || ms.chunks[n-1].chunk.NumSamples() >= samplesPerChunk {
		c := chunkenc.NewXORChunk()
		app, err := c.Appender()
		if err != nil {
			return // a fresh XOR chunk always has an appender
		}
		ms.chunks = append(ms.chunks, &memChunk{chunk: c, minT: t})
		ms.app = app
	}
	ms.app.Append(0, t, v)
	ms.chunks[len(ms.chunks)-1].maxT = t
}

// truncate drops chunks that end before mint, and series left empty.
func (s *store) truncate(mint int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, ms := range s.series {
		i := 0
		for i < len(ms.chunks)-1 && ms.chunks[i].maxT < mint {
			i++
		}
		if len(ms.chunks) > 0 && i == len(ms.chunks)-1 && ms.chunks[i].maxT < mint {
			delete(s.series, h)
			continue
		}
		ms.chunks = ms.chunks[i:]
	}
}

// Querier implements storage.Queryable.
func (s *store) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{s: s, mint: mint, maxt: maxt}, nil
}

type querier struct {
	s          *store
	mint, maxt int64
}

// matching returns copies of the samples in range of every series matching ms (series without
// samples in range are left out, as Prometheus's head leaves them out).
func (q *querier) matching(ms []*labels.Matcher, mint, maxt int64) []storage.Series {
	q.s.mu.RLock()
	defer q.s.mu.RUnlock()
	var out []storage.Series
	for _, series := range q.s.series {
		if !matches(series.lset, ms) {
			continue
		}
		var smps []chunks.Sample
		var it chunkenc.Iterator
		for _, c := range series.chunks {
			if c.maxT < mint || c.minT > maxt {
				continue
			}
			it = c.chunk.Iterator(it)
			for it.Next() == chunkenc.ValFloat {
				t, v := it.At()
				if t >= mint && t <= maxt {
					smps = append(smps, fsample{t: t, f: v})
				}
			}
		}
		if len(smps) > 0 {
			out = append(out, storage.NewListSeries(series.lset, smps))
		}
	}
	return out
}

func matches(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

// Select implements storage.Querier.
func (q *querier) Select(_ context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	series := q.matching(ms, mint, maxt)
	if sortSeries {
		slices.SortFunc(series, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	}
	return &seriesSet{series: series, i: -1}
}

// LabelValues implements storage.LabelQuerier.
func (q *querier) LabelValues(_ context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	set := map[string]bool{}
	for _, s := range q.matching(ms, q.mint, q.maxt) {
		if v := s.Labels().Get(name); v != "" {
			set[v] = true
		}
	}
	return sortedSet(set), nil, nil
}

// LabelNames implements storage.LabelQuerier.
func (q *querier) LabelNames(_ context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	set := map[string]bool{}
	for _, s := range q.matching(ms, q.mint, q.maxt) {
		s.Labels().Range(func(l labels.Label) { set[l.Name] = true })
	}
	return sortedSet(set), nil, nil
}

// Close implements storage.LabelQuerier.
func (q *querier) Close() error { return nil }

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

type seriesSet struct {
	series []storage.Series
	i      int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

// fsample is a float sample (chunks.Sample).
type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }
