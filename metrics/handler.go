package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves m's private registry. OpenMetrics is enabled, and promhttp
// negotiates the protobuf format when a Prometheus with native histograms
// asks for it, so the native buckets of the provider latency histogram reach
// it alongside the classic ones.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		// A collector that fails (it should not: the consumer collector
		// drops a target instead) must not blank the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
		// Bounds concurrent scrapes; the consumer cache bounds NATS load.
		MaxRequestsInFlight: 8,
		Registry:            m.Registry, // exports promhttp_metric_handler_errors_total
	})
}
