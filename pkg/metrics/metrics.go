// Package metrics declares every Prometheus series the SAGA services export. Dashboards, alert
// rules and canary gates are checked against Names, so a panel cannot silently query a metric
// nobody exports.
//
// Each process labels its series with `service`; the `version` label (v1 stable, v2 canary)
// comes from the pod label through the ServiceMonitor's podTargetLabels.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metric names.
const (
	RecordsConsumed     = "saga_kafka_records_consumed_total"
	RecordsFailed       = "saga_kafka_records_failed_total"
	RecordsDeadLettered = "saga_kafka_records_dead_lettered_total"
	OutboxBacklog       = "saga_outbox_backlog"
	OutboxOldestAge     = "saga_outbox_oldest_age_seconds"
	Orders              = "saga_orders"
	HTTPRequests        = "saga_http_requests_total"
	HTTPDuration        = "saga_http_request_duration_seconds"
	BusinessErrors      = "saga_business_errors_total"
	BusinessOutcomes    = "saga_business_outcomes_total"
	Compensations       = "saga_compensations_total"
	OutboxFailed        = "saga_outbox_failed"
	PaymentsUnresolved  = "saga_payments_unresolved"
)

// Outcomes of saga_business_outcomes_total: what a customer's request came to, refusals included.
// None of them is a failure of the system.
const (
	OutcomePaymentApproved = "payment_approved"
	OutcomePaymentDeclined = "payment_declined"
	OutcomeStockShort      = "stock_short"
	OutcomeCouponInvalid   = "coupon_invalid"
	OutcomeOptionNotFound  = "option_not_found"
)

// Names lists every series name the services export, including the _bucket/_sum/_count series
// of histograms.
func Names() []string {
	return []string{RecordsConsumed, RecordsFailed, RecordsDeadLettered, OutboxBacklog, OutboxOldestAge,
		Orders, HTTPRequests, HTTPDuration + "_bucket", HTTPDuration + "_sum", HTTPDuration + "_count",
		BusinessErrors, BusinessOutcomes, Compensations, OutboxFailed, PaymentsUnresolved}
}

// Saga holds one service's collectors.
type Saga struct {
	// Registry is what /metrics serves: these collectors plus the Go and process collectors.
	Registry *prometheus.Registry

	Consumed      *prometheus.CounterVec // topic, group
	Failed        *prometheus.CounterVec // topic, group, error_code
	DeadLettered  *prometheus.CounterVec // topic, group, error_code
	OutboxBacklog prometheus.Gauge
	OutboxAge     prometheus.Gauge
	Orders        *prometheus.GaugeVec   // state
	HTTPRequests  *prometheus.CounterVec // method, route, code
	HTTPDuration  *prometheus.HistogramVec
	// BusinessErrors counts failures of our own system in business processing — a paid amount
	// that differs from the order, a payment for an order already failed, a compensation that
	// cannot be applied — by code. The canary gate reads it; normal refusals do not belong here.
	BusinessErrors *prometheus.CounterVec // code
	// BusinessOutcomes counts normal business results, including refusals the customer caused
	// (payment_declined, stock_short, coupon_invalid), by outcome.
	BusinessOutcomes *prometheus.CounterVec // outcome
	Compensations    *prometheus.CounterVec // step
	// OutboxFailedRows is how many outbox rows the relay gave up on after its attempts; they wait
	// for an operator.
	OutboxFailedRows prometheus.Gauge
	// PaymentsUnresolved is how many payments payment-service has sent to the gateway without
	// knowing the outcome yet (the reconciler is working on them).
	PaymentsUnresolved prometheus.Gauge
}

// New registers the collectors of service (e.g. "order-service") on a fresh registry.
func New(service string) *Saga {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"service": service}
	f := func(c prometheus.Collector) prometheus.Collector { reg.MustRegister(c); return c }
	m := &Saga{Registry: reg}
	m.Consumed = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: RecordsConsumed, ConstLabels: labels,
		Help: "Kafka records processed successfully (including records skipped as duplicates)."}, []string{"topic", "group"})).(*prometheus.CounterVec)
	m.Failed = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: RecordsFailed, ConstLabels: labels,
		Help: "Failed processing attempts of Kafka records, by error code."}, []string{"topic", "group", "error_code"})).(*prometheus.CounterVec)
	m.DeadLettered = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: RecordsDeadLettered, ConstLabels: labels,
		Help: "Kafka records sent to their dead-letter topic, by error code."}, []string{"topic", "group", "error_code"})).(*prometheus.CounterVec)
	m.OutboxBacklog = f(prometheus.NewGauge(prometheus.GaugeOpts{Name: OutboxBacklog, ConstLabels: labels,
		Help: "Outbox rows not yet published to Kafka."})).(prometheus.Gauge)
	m.OutboxAge = f(prometheus.NewGauge(prometheus.GaugeOpts{Name: OutboxOldestAge, ConstLabels: labels,
		Help: "Age in seconds of the oldest unpublished outbox row (0 when empty)."})).(prometheus.Gauge)
	m.Orders = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: Orders, ConstLabels: labels,
		Help: "Orders by state."}, []string{"state"})).(*prometheus.GaugeVec)
	m.HTTPRequests = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: HTTPRequests, ConstLabels: labels,
		Help: "HTTP requests served, by route and status code."}, []string{"method", "route", "code"})).(*prometheus.CounterVec)
	m.HTTPDuration = f(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: HTTPDuration, ConstLabels: labels,
		Help: "HTTP request duration in seconds.", Buckets: prometheus.DefBuckets}, []string{"method", "route"})).(*prometheus.HistogramVec)
	m.BusinessErrors = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: BusinessErrors, ConstLabels: labels,
		Help: "Failures of the system in business processing (amount mismatch, payment for a failed order, compensation that cannot be applied), by code."}, []string{"code"})).(*prometheus.CounterVec)
	m.BusinessOutcomes = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: BusinessOutcomes, ConstLabels: labels,
		Help: "Normal business results, refusals included (payment_approved, payment_declined, stock_short, coupon_invalid, ...)."}, []string{"outcome"})).(*prometheus.CounterVec)
	m.Compensations = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: Compensations, ConstLabels: labels,
		Help: "Compensation steps applied (order_failed, coupon_restored, stock_restored)."}, []string{"step"})).(*prometheus.CounterVec)
	m.OutboxFailedRows = f(prometheus.NewGauge(prometheus.GaugeOpts{Name: OutboxFailed, ConstLabels: labels,
		Help: "Outbox rows the relay gave up on after its maximum attempts (status FAILED); they need an operator."})).(prometheus.Gauge)
	m.PaymentsUnresolved = f(prometheus.NewGauge(prometheus.GaugeOpts{Name: PaymentsUnresolved, ConstLabels: labels,
		Help: "Payments sent to the gateway whose outcome is not known yet (UNKNOWN or an interrupted IN_PROGRESS)."})).(prometheus.Gauge)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
