package promsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/timestamp"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// Error types of the Prometheus API ("errorType" in an error answer).
const (
	errBadData  = "bad_data"
	errExec     = "execution"
	errCanceled = "canceled"
	errTimeout  = "timeout"
	errInternal = "internal"
	errNotFound = "not_found"
)

// maxPoints is Prometheus's limit of points per series in a range query.
const maxPoints = 11000

// minTime and maxTime are Prometheus's defaults for open time ranges.
var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
)

type apiError struct {
	typ string
	err error
}

func (e *apiError) Error() string { return e.typ + ": " + e.err.Error() }

func badData(format string, args ...any) *apiError {
	return &apiError{errBadData, fmt.Errorf(format, args...)}
}

// response is the envelope of every answer.
type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

// queryData is the data of a query answer.
type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     parser.Value     `json:"result"`
}

type apiFunc func(r *http.Request) (data any, annos annotations.Annotations, query string, err *apiError)

// Handler serves the Prometheus HTTP API (GET and form POST, as Prometheus accepts them).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/query", s.api(s.query))
	mux.Handle("/api/v1/query_range", s.api(s.queryRange))
	mux.Handle("/api/v1/series", s.api(s.series))
	mux.Handle("/api/v1/labels", s.api(s.labelNames))
	mux.Handle("/api/v1/label/{name}/values", s.api(s.labelValues))
	mux.Handle("/api/v1/status/buildinfo", s.api(func(*http.Request) (any, annotations.Annotations, string, *apiError) {
		return map[string]string{"version": "simulated (opsctl sandbox)", "revision": "", "branch": "", "buildUser": "",
			"buildDate": "", "goVersion": ""}, nil, "", nil
	}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Simulated Prometheus is Healthy.\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Simulated Prometheus is Ready.\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeResponse(w, http.StatusNotFound, response{Status: "error", ErrorType: errNotFound,
			Error: fmt.Sprintf("%s is not served by the simulated Prometheus (it answers /api/v1/query, query_range, series, labels and label/<name>/values)", r.URL.Path)})
	})
	return mux
}

func (s *Server) api(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeResponse(w, http.StatusMethodNotAllowed, response{Status: "error", ErrorType: errBadData, Error: "method " + r.Method + " not allowed"})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeResponse(w, http.StatusBadRequest, response{Status: "error", ErrorType: errBadData, Error: "error parsing form values: " + err.Error()})
			return
		}
		data, annos, query, aerr := fn(r)
		warnings, infos := annos.AsStrings(query, 10, 10)
		if aerr != nil {
			writeResponse(w, statusOf(aerr.typ), response{Status: "error", ErrorType: aerr.typ, Error: aerr.err.Error(),
				Data: data, Warnings: nonEmpty(warnings), Infos: nonEmpty(infos)})
			return
		}
		writeResponse(w, http.StatusOK, response{Status: "success", Data: data, Warnings: nonEmpty(warnings), Infos: nonEmpty(infos)})
	})
}

func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func statusOf(typ string) int {
	switch typ {
	case errBadData:
		return http.StatusBadRequest
	case errExec:
		return http.StatusUnprocessableEntity
	case errCanceled:
		return 499
	case errTimeout:
		return http.StatusServiceUnavailable
	case errNotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func writeResponse(w http.ResponseWriter, status int, resp response) {
	b, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(response{Status: "error", ErrorType: errInternal, Error: "encode answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) query(r *http.Request) (any, annotations.Annotations, string, *apiError) {
	q := r.FormValue("query")
	ts, err := timeParam(r, "time", s.cfg.Now())
	if err != nil {
		return nil, nil, q, err
	}
	ctx, cancel, err := s.timeoutCtx(r)
	if err != nil {
		return nil, nil, q, err
	}
	defer cancel()
	qry, perr := s.engine.NewInstantQuery(ctx, s.db, nil, q, ts)
	if perr != nil {
		return nil, nil, q, badData("invalid parameter %q: %w", "query", perr)
	}
	return s.exec(ctx, qry, q)
}

func (s *Server) queryRange(r *http.Request) (any, annotations.Annotations, string, *apiError) {
	q := r.FormValue("query")
	start, err := timeParam(r, "start", time.Time{})
	if err != nil {
		return nil, nil, q, err
	}
	end, err := timeParam(r, "end", time.Time{})
	if err != nil {
		return nil, nil, q, err
	}
	if start.IsZero() || end.IsZero() {
		return nil, nil, q, badData("invalid parameter %q: start and end are required", "start")
	}
	if end.Before(start) {
		return nil, nil, q, badData("invalid parameter %q: end timestamp must not be before start time", "end")
	}
	step, derr := parseDuration(r.FormValue("step"))
	if derr != nil {
		return nil, nil, q, badData("invalid parameter %q: %w", "step", derr)
	}
	if step <= 0 {
		return nil, nil, q, badData("invalid parameter %q: zero or negative query resolution step widths are not accepted. Try a positive integer", "step")
	}
	if end.Sub(start)/step > maxPoints {
		return nil, nil, q, badData("exceeded maximum resolution of %d points per timeseries. Try decreasing the query resolution (?step=XX)", maxPoints)
	}
	ctx, cancel, err := s.timeoutCtx(r)
	if err != nil {
		return nil, nil, q, err
	}
	defer cancel()
	qry, perr := s.engine.NewRangeQuery(ctx, s.db, nil, q, start, end, step)
	if perr != nil {
		return nil, nil, q, badData("invalid parameter %q: %w", "query", perr)
	}
	return s.exec(ctx, qry, q)
}

func (s *Server) exec(ctx context.Context, qry promql.Query, q string) (any, annotations.Annotations, string, *apiError) {
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Warnings, q, execError(res.Err)
	}
	v := res.Value
	// Prometheus answers an empty result as [], never null.
	switch r := v.(type) {
	case promql.Vector:
		if r == nil {
			v = promql.Vector{}
		}
	case promql.Matrix:
		if r == nil {
			v = promql.Matrix{}
		}
	}
	return queryData{ResultType: v.Type(), Result: v}, res.Warnings, q, nil
}

func execError(err error) *apiError {
	var eqc promql.ErrQueryCanceled
	var eqt promql.ErrQueryTimeout
	var es promql.ErrStorage
	switch {
	case errors.As(err, &eqc), errors.Is(err, context.Canceled):
		return &apiError{errCanceled, err}
	case errors.As(err, &eqt):
		return &apiError{errTimeout, err}
	case errors.As(err, &es):
		return &apiError{errInternal, err}
	}
	return &apiError{errExec, err}
}

func (s *Server) timeoutCtx(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	v := r.FormValue("timeout")
	if v == "" {
		ctx, cancel := context.WithCancel(r.Context())
		return ctx, cancel, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return nil, nil, badData("invalid parameter %q: %w", "timeout", err)
	}
	if d <= 0 {
		return nil, nil, badData("invalid parameter %q: timeout must be positive, got %s", "timeout", v)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

func (s *Server) series(r *http.Request) (any, annotations.Annotations, string, *apiError) {
	if len(r.Form["match[]"]) == 0 {
		return nil, nil, "", badData("no match[] parameter provided")
	}
	sets, start, end, err := selection(r)
	if err != nil {
		return nil, nil, "", err
	}
	querier, _ := s.db.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	defer querier.Close()
	hints := &storage.SelectHints{Start: timestamp.FromTime(start), End: timestamp.FromTime(end), Func: "series"}
	var result []labels.Labels
	seen := map[uint64]bool{}
	var annos annotations.Annotations
	for _, ms := range sets {
		ss := querier.Select(r.Context(), false, hints, ms...)
		for ss.Next() {
			l := ss.At().Labels()
			if h := l.Hash(); !seen[h] {
				seen[h] = true
				result = append(result, l)
			}
		}
		annos.Merge(ss.Warnings())
		if err := ss.Err(); err != nil {
			return nil, annos, "", execError(err)
		}
	}
	slices.SortFunc(result, labels.Compare)
	if result == nil {
		result = []labels.Labels{}
	}
	return result, annos, "", nil
}

func (s *Server) labelNames(r *http.Request) (any, annotations.Annotations, string, *apiError) {
	sets, start, end, err := selection(r)
	if err != nil {
		return nil, nil, "", err
	}
	return s.labelQuery(sets, start, end, func(q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(r.Context(), &storage.LabelHints{}, ms...)
	})
}

func (s *Server) labelValues(r *http.Request) (any, annotations.Annotations, string, *apiError) {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return nil, nil, "", badData("invalid label name: %q", name)
	}
	sets, start, end, err := selection(r)
	if err != nil {
		return nil, nil, "", err
	}
	return s.labelQuery(sets, start, end, func(q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(r.Context(), name, &storage.LabelHints{}, ms...)
	})
}

// labelQuery runs fn once per matcher set (once with none when there are none) and returns the
// sorted union.
func (s *Server) labelQuery(sets [][]*labels.Matcher, start, end time.Time,
	fn func(storage.Querier, []*labels.Matcher) ([]string, annotations.Annotations, error)) (any, annotations.Annotations, string, *apiError) {
	q, _ := s.db.Querier(timestamp.FromTime(start), timestamp.FromTime(end))
	defer q.Close()
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	union := map[string]bool{}
	var annos annotations.Annotations
	for _, ms := range sets {
		vals, w, err := fn(q, ms)
		annos.Merge(w)
		if err != nil {
			return nil, annos, "", &apiError{errExec, err}
		}
		for _, v := range vals {
			union[v] = true
		}
	}
	out := make([]string, 0, len(union))
	for v := range union {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, annos, "", nil
}

// selection reads match[], start and end as the series and label endpoints take them.
func selection(r *http.Request) ([][]*labels.Matcher, time.Time, time.Time, *apiError) {
	start, err := timeParam(r, "start", minTime)
	if err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	end, err := timeParam(r, "end", maxTime)
	if err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	p := parser.NewParser(parser.Options{})
	sets, perr := p.ParseMetricSelectors(r.Form["match[]"])
	if perr != nil {
		return nil, time.Time{}, time.Time{}, badData("invalid parameter %q: %w", "match[]", perr)
	}
outer:
	for _, ms := range sets {
		for _, m := range ms {
			if m != nil && !m.Matches("") {
				continue outer
			}
		}
		return nil, time.Time{}, time.Time{}, badData("match[] must contain at least one non-empty matcher")
	}
	return sets, start, end, nil
}

func timeParam(r *http.Request, name string, def time.Time) (time.Time, *apiError) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, badData("invalid parameter %q: invalid time value for '%s': %w", name, name, err)
	}
	return t, nil
}

// parseTime accepts what Prometheus accepts: Unix seconds (with a fraction) or RFC 3339.
func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTime.Format(time.RFC3339Nano):
		return minTime, nil
	case maxTime.Format(time.RFC3339Nano):
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration accepts seconds (with a fraction) or a Prometheus duration ("1m30s").
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		d := f * float64(time.Second)
		if math.IsNaN(d) || d >= float64(math.MaxInt64) || d < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(d), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}
