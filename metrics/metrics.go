// Package metrics defines every Prometheus metric of docs/contract.md section 4 on
// a private registry. Components receive the struct of their own collectors;
// no label ever holds a dispute id or another unbounded value.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector of disputesync.
type Metrics struct {
	Registry *prometheus.Registry

	Actions         *prometheus.CounterVec   // provider, action, outcome
	ProviderLatency *prometheus.HistogramVec // provider, operation, result
	Idempotency     *prometheus.CounterVec   // result: claimed, replayed, inconsistent, busy
	DLQ             *prometheus.CounterVec   // provider, action, reason

	PollPages       *prometheus.CounterVec // source, list_type, result
	PollLastSuccess *prometheus.GaugeVec   // source
	DisputeEvents   *prometheus.CounterVec // source, type
	DisputesOpen    *prometheus.GaugeVec   // source, deadline
	NextDeadline    *prometheus.GaugeVec   // source

	WebhookNotifications *prometheus.CounterVec // provider, result

	// Ready is disputesync_ready{component}: 1 while a component (for
	// example "nats", "redis", "streams", "poller", "worker", "webhook") is
	// usable, 0 while it is not. It is an addition (docs/contract.md section 4); it is added
	// so that the "not ready" alert sees more than the scrape's own up.
	Ready *prometheus.GaugeVec // component

	// ConsumerCacheTTL is how long WatchConsumers' collector reuses one
	// reading of consumer info; zero means DefaultConsumerCacheTTL.
	ConsumerCacheTTL time.Duration

	consumers prometheus.Collector // registered by WatchConsumers
}

// ProviderBuckets fit provider latencies: 10 ms to 30 s.
var ProviderBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30}

// New registers every collector, with the Go and process collectors, on a
// new private registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{Registry: reg}
	m.Actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "disputesync_actions_total", Help: "Action commands finished, by outcome (succeeded, failed, rejected).",
	}, []string{"provider", "action", "outcome"})
	m.ProviderLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "disputesync_provider_request_duration_seconds", Help: "Duration of provider HTTP calls, by result class.",
		Buckets: ProviderBuckets, NativeHistogramBucketFactor: 1.1,
		NativeHistogramMaxBucketNumber: 100, NativeHistogramMinResetDuration: time.Hour,
	}, []string{"provider", "operation", "result"})
	m.Idempotency = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "disputesync_idempotency_total", Help: "Idempotency claims by result (claimed, replayed, inconsistent, busy).",
	}, []string{"result"})
	m.DLQ = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "disputesync_dlq_messages_total", Help: "Commands written to the dead-letter stream, by reason.",
	}, []string{"provider", "action", "reason"})
	m.PollPages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "disputesync_poll_pages_total", Help: "List API pages fetched by the poller, by result.",
	}, []string{"source", "list_type", "result"})
	m.PollLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "disputesync_poll_last_success_timestamp_seconds", Help: "Unix time of the poller's last complete successful cycle.",
	}, []string{"source"})
	m.DisputeEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "disputesync_dispute_events_total", Help: "Dispute events published, by type.",
	}, []string{"source", "type"})
	m.DisputesOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "disputesync_disputes_open", Help: "Open (pending) disputes by time left to their reply deadline.",
	}, []string{"source", "deadline"})
	m.NextDeadline = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "disputesync_dispute_next_reply_deadline_timestamp_seconds", Help: "Unix time of the earliest reply deadline among open disputes.",
	}, []string{"source"})
	m.WebhookNotifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "disputesync_webhook_notifications_total", Help: "Provider notifications received, by result.",
	}, []string{"provider", "result"})
	for _, r := range IdempotencyResults {
		m.Idempotency.WithLabelValues(r) // exported at 0 from the start: see Preset
	}
	m.Ready = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "disputesync_ready", Help: "1 while the component is ready (as /readyz judges it), 0 while it is not.",
	}, []string{"component"})
	for _, c := range []prometheus.Collector{m.Actions, m.ProviderLatency, m.Idempotency, m.DLQ, m.PollPages,
		m.PollLastSuccess, m.DisputeEvents, m.DisputesOpen, m.NextDeadline, m.WebhookNotifications, m.Ready} {
		f(c)
	}
	return m
}

// Deadline buckets of disputesync_disputes_open.
const (
	DeadlineOverdue = "overdue"
	Deadline24h     = "24h"
	Deadline72h     = "72h"
	Deadline7d      = "7d"
	DeadlineLater   = "later"
)

// DeadlineBucket returns the bucket of a reply deadline seen at now.
func DeadlineBucket(deadline, now time.Time) string {
	left := deadline.Sub(now)
	switch {
	case left <= 0:
		return DeadlineOverdue
	case left <= 24*time.Hour:
		return Deadline24h
	case left <= 72*time.Hour:
		return Deadline72h
	case left <= 7*24*time.Hour:
		return Deadline7d
	}
	return DeadlineLater
}

// ObserveProvider records one provider call; result is a bounded class such
// as "ok", "refused", "retryable", "error".
func (m *Metrics) ObserveProvider(provider, operation, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.ProviderLatency.WithLabelValues(provider, operation, result).Observe(d.Seconds())
}

// SetReady records whether a component is ready (disputesync_ready).
func (m *Metrics) SetReady(component string, ready bool) {
	if m == nil {
		return
	}
	v := 0.0
	if ready {
		v = 1
	}
	m.Ready.WithLabelValues(component).Set(v)
}
