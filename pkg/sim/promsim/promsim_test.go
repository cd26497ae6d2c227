package promsim_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/come2us/opsctl/pkg/sim/promsim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a promsim server with one service registry scraped as two tracks (v1 and v2 of
// order-service), and the client_golang API client pointed at it.
type fixture struct {
	srv      *promsim.Server
	clock    *clock
	api      promv1.API
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	backlog  prometheus.Gauge
	t0       time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := &fixture{clock: &clock{t: t0}, t0: t0}
	f.srv = promsim.New(promsim.Config{Now: f.clock.Now})
	t.Cleanup(func() {
		if err := f.srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for _, version := range []string{"v1", "v2"} {
		reg := prometheus.NewRegistry()
		requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_requests_total", Help: "requests",
			ConstLabels: prometheus.Labels{"service": "order-service"}}, []string{"code"})
		latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "test_duration_seconds", Help: "latency",
			Buckets: []float64{0.1, 1, 2.5}}, []string{"route"})
		backlog := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_backlog", Help: "backlog"})
		reg.MustRegister(requests, latency, backlog)
		if version == "v2" {
			f.requests, f.latency, f.backlog = requests, latency, backlog
		} else {
			requests.WithLabelValues("200").Add(1000) // v1 never moves
		}
		err := f.srv.AddTarget(promsim.Target{Job: "order-service", Instance: "10.0.0.1:8080-" + version, Gatherer: reg,
			Labels: map[string]string{"namespace": "come2us-prod", "service": "order-service", "version": version}})
		if err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(f.srv.Handler())
	t.Cleanup(ts.Close)
	c, err := promapi.NewClient(promapi.Config{Address: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	f.api = promv1.NewAPI(c)
	return f
}

// scrapeEvery scrapes n times, 15s apart, calling step before each scrape.
func (f *fixture) scrapeEvery(t *testing.T, n int, step func(i int)) {
	t.Helper()
	for i := range n {
		if i > 0 {
			f.clock.Add(15 * time.Second)
		}
		if step != nil {
			step(i)
		}
		if err := f.srv.Scrape(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueryThroughClientGolang(t *testing.T) {
	f := newFixture(t)
	// v2: 10 requests per 15s, 1 of them a 503; latency observations of 2s each.
	f.scrapeEvery(t, 9, func(int) {
		f.requests.WithLabelValues("200").Add(9)
		f.requests.WithLabelValues("503").Add(1)
		f.latency.WithLabelValues("/orders").Observe(2)
		f.backlog.Set(7)
	})
	end := f.clock.Now()
	ctx := context.Background()

	tests := []struct {
		name, query string
		want        float64
	}{
		{"error ratio of v2", `sum(rate(test_requests_total{version="v2",code=~"5.."}[1m])) / sum(rate(test_requests_total{version="v2"}[1m]))`, 0.1},
		{"rate of v2", `sum(rate(test_requests_total{namespace="come2us-prod",version="v2"}[1m]))`, 10.0 / 15},
		{"v1 is flat", `sum(rate(test_requests_total{version="v1"}[1m]))`, 0},
		{"mean latency from _sum/_count", `sum(rate(test_duration_seconds_sum{version="v2"}[1m])) / sum(rate(test_duration_seconds_count{version="v2"}[1m]))`, 2},
		{"le normalised, cumulative buckets", `test_duration_seconds_bucket{version="v2",le="2.5"} - ignoring(le) test_duration_seconds_bucket{version="v2",le="1.0"}`, 9},
		{"gauge", `test_backlog{version="v2"}`, 7},
		{"up", `sum(up{job="order-service"})`, 2},
		{"target label wins, exposed one renamed", `count(test_requests_total{service="order-service",exported_service="order-service"})`, 3},
		{"scalar arithmetic", `vector(1) + 1`, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, warnings, _, err := f.api.Query(ctx, tc.query, end)
			if err != nil {
				t.Fatalf("query %s: %v", tc.query, err)
			}
			if len(warnings) > 0 {
				t.Logf("warnings: %v", warnings)
			}
			vec, ok := v.(model.Vector)
			if !ok || len(vec) != 1 {
				t.Fatalf("query %s: got %T %v, want one sample", tc.query, v, v)
			}
			if got := float64(vec[0].Value); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("query %s = %v, want %v", tc.query, got, tc.want)
			}
			if !vec[0].Timestamp.Time().Equal(end) {
				t.Fatalf("sample at %v, want the query time %v", vec[0].Timestamp.Time(), end)
			}
		})
	}

	t.Run("no data is an empty vector, not an error", func(t *testing.T) {
		v, _, _, err := f.api.Query(ctx, `sum(rate(test_requests_total{version="v3"}[1m]))`, end)
		if err != nil {
			t.Fatal(err)
		}
		if vec, ok := v.(model.Vector); !ok || len(vec) != 0 {
			t.Fatalf("got %T %v, want an empty vector", v, v)
		}
	})

	t.Run("range query", func(t *testing.T) {
		r := promv1.Range{Start: f.t0.Add(time.Minute), End: end, Step: 30 * time.Second}
		v, _, _, err := f.api.QueryRange(ctx, `sum by (code) (rate(test_requests_total{version="v2"}[1m]))`, r)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := v.(model.Matrix)
		if !ok || len(m) != 2 {
			t.Fatalf("got %T %v, want two series (200 and 503)", v, v)
		}
		for _, s := range m {
			if len(s.Values) != 3 {
				t.Fatalf("series %v has %d points, want 3 (1m to 2m every 30s)", s.Metric, len(s.Values))
			}
			want := 9.0 / 15
			if s.Metric["code"] == "503" {
				want = 1.0 / 15
			}
			for _, p := range s.Values {
				if math.Abs(float64(p.Value)-want) > 1e-9 {
					t.Fatalf("%v at %v = %v, want %v", s.Metric, p.Timestamp, p.Value, want)
				}
			}
		}
	})

	t.Run("series, labels and label values", func(t *testing.T) {
		series, _, _, err := f.api.Series(ctx, []string{`test_requests_total{version="v2"}`}, f.t0, end)
		if err != nil {
			t.Fatal(err)
		}
		if len(series) != 2 {
			t.Fatalf("series = %v, want the 200 and 503 series of v2", series)
		}
		for _, s := range series {
			if s["job"] != "order-service" || s["namespace"] != "come2us-prod" || s["version"] != "v2" || s["__name__"] != "test_requests_total" {
				t.Fatalf("series %v lacks the target labels", s)
			}
		}
		names, _, _, err := f.api.LabelNames(ctx, []string{`test_backlog`}, f.t0, end)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(names); got != "__name__, instance, job, namespace, service, version" {
			t.Fatalf("label names of test_backlog = %s", got)
		}
		vals, _, _, err := f.api.LabelValues(ctx, "version", nil, f.t0, end)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(vals) != "[v1 v2]" {
			t.Fatalf("version values = %v", vals)
		}
		codes, _, _, err := f.api.LabelValues(ctx, "code", []string{`{version="v1"}`}, f.t0, end)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(codes) != "[200]" {
			t.Fatalf("code values of v1 = %v", codes)
		}
	})
}

func TestStaleSeriesVanish(t *testing.T) {
	f := newFixture(t)
	f.scrapeEvery(t, 3, func(i int) {
		f.requests.WithLabelValues("503").Add(1)
		if i == 2 {
			f.requests.DeleteLabelValues("503") // gone from the next scrape on
		}
	})
	f.scrapeEvery(t, 2, nil)
	v, _, _, err := f.api.Query(context.Background(), `test_requests_total{version="v2",code="503"}`, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if vec := v.(model.Vector); len(vec) != 0 {
		t.Fatalf("a vanished series is still returned within the lookback window: %v", vec)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	f.scrapeEvery(t, 1, nil)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		typ  promv1.ErrorType
	}{
		{"unparsable query", func() error { _, _, _, err := f.api.Query(ctx, `sum(rate(x[1m]`, time.Now()); return err }, promv1.ErrBadData},
		{"range end before start", func() error {
			_, _, _, err := f.api.QueryRange(ctx, `up`, promv1.Range{Start: f.t0, End: f.t0.Add(-time.Minute), Step: time.Second})
			return err
		}, promv1.ErrBadData},
		{"too many points", func() error {
			_, _, _, err := f.api.QueryRange(ctx, `up`, promv1.Range{Start: f.t0, End: f.t0.Add(24 * time.Hour), Step: time.Second})
			return err
		}, promv1.ErrBadData},
		{"empty matcher", func() error { _, _, _, err := f.api.Series(ctx, []string{`{job=~".*"}`}, f.t0, f.t0); return err }, promv1.ErrBadData},
		{"type mismatch at run time", func() error {
			_, _, _, err := f.api.Query(ctx, `label_replace(up, "x", "$1", "job", "(.*)") + on(nope) group_left up`, f.clock.Now())
			return err
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.typ == "" {
				return // just must not crash the server
			}
			var perr *promv1.Error
			if !errors.As(err, &perr) || perr.Type != tc.typ {
				t.Fatalf("err = %v (%T), want a %s error", err, err, tc.typ)
			}
		})
	}
}

func TestRawAnswers(t *testing.T) {
	f := newFixture(t)
	f.scrapeEvery(t, 1, nil)
	ts := httptest.NewServer(f.srv.Handler())
	defer ts.Close()
	tests := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"empty vector is []", http.MethodGet, `/api/v1/query?query=nothing_here&time=` + fmt.Sprint(f.t0.Unix()), 200,
			`{"status":"success","data":{"resultType":"vector","result":[]}}`},
		{"scalar", http.MethodGet, `/api/v1/query?query=2&time=1700000000.5`, 200,
			`{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"2"]}}`},
		{"bad time", http.MethodGet, `/api/v1/query?query=up&time=yesterday`, 400, `"errorType":"bad_data"`},
		{"unknown endpoint", http.MethodGet, `/api/v1/rules`, 404, `"errorType":"not_found"`},
		{"wrong method", http.MethodDelete, `/api/v1/query`, 405, `"status":"error"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = fmt.Fprint(&b, readAll(t, resp))
			if resp.StatusCode != tc.status || !strings.Contains(b.String(), tc.body) {
				t.Fatalf("%s %s: %d %s, want %d containing %s", tc.method, tc.path, resp.StatusCode, b.String(), tc.status, tc.body)
			}
		})
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestServeAndScrapeLoop runs the real listener and scrape loop and stops them (goleak checks
// nothing is left running).
func TestServeAndScrapeLoop(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "loop_gauge", Help: "g"})
	g.Set(42)
	reg.MustRegister(g)
	srv := promsim.New(promsim.Config{Interval: 10 * time.Millisecond})
	if err := srv.AddTarget(promsim.Target{Job: "j", Instance: "i", Gatherer: reg}); err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := promapi.NewClient(promapi.Config{Address: url})
	api := promv1.NewAPI(c)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _, _, err := api.Query(context.Background(), "loop_gauge", time.Now())
		if err == nil && len(v.(model.Vector)) == 1 && v.(model.Vector)[0].Value == 42 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("loop_gauge never appeared: %v %v", v, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(url + "/-/ready"); err == nil {
		resp.Body.Close()
		t.Fatal("the API still answers after Close")
	}
}

func TestTargetValidation(t *testing.T) {
	srv := promsim.New(promsim.Config{})
	defer srv.Close()
	reg := prometheus.NewRegistry()
	for _, tc := range []promsim.Target{
		{Instance: "i", Gatherer: reg},
		{Job: "j", Instance: "i"},
		{Job: "j", Instance: "i", Gatherer: reg, Labels: map[string]string{"job": "x"}},
		{Job: "j", Instance: "i", Gatherer: reg, Labels: map[string]string{"__name__": "x"}},
		{Job: "j", Instance: "i", Gatherer: reg, Labels: map[string]string{"": "x"}},
	} {
		if err := srv.AddTarget(tc); err == nil {
			t.Errorf("AddTarget(%+v) accepted", tc)
		}
	}
}
