package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerTarget names one JetStream consumer whose backlog is exported.
type ConsumerTarget struct{ Stream, Consumer string }

// DefaultConsumerCacheTTL is how long one reading of consumer info is
// reused when no other TTL is given: short enough for a 5 s scrape interval,
// long enough that several Prometheus servers (or a scrape storm) cost the
// NATS server one consumer-info request per target every two seconds.
const DefaultConsumerCacheTTL = 2 * time.Second

// ConsumerInfoTimeout bounds the consumer-info requests of one scrape, all
// targets together, so a slow or absent NATS server cannot make /metrics
// hang past Prometheus' default 10 s scrape timeout.
const ConsumerInfoTimeout = 3 * time.Second

// Names and help of the consumer collector's metrics.
const (
	namePending       = "disputesync_consumer_pending_messages"
	nameAckPending    = "disputesync_consumer_ack_pending_messages"
	nameRedelivered   = "disputesync_consumer_redelivered_messages"
	nameMaxAckPending = "disputesync_consumer_max_ack_pending"
	nameInfoErrors    = "disputesync_consumer_info_errors_total"

	helpPending       = "Messages matching the consumer's filter not yet delivered (JetStream consumer info NumPending)."
	helpAckPending    = "Messages delivered and not yet acknowledged (NumAckPending); delivery stalls when it reaches disputesync_consumer_max_ack_pending."
	helpRedelivered   = "Messages redelivered and not yet acknowledged, each counted once (NumRedelivered)."
	helpMaxAckPending = "The consumer's MaxAckPending setting (-1: unlimited); the threshold of ack pending."
	helpInfoErrors    = "Consumer info requests that failed; while the last one failed the consumer's gauges are absent."
)

var (
	consumerLabels    = []string{"stream", "consumer"}
	descPending       = prometheus.NewDesc(namePending, helpPending, consumerLabels, nil)
	descAckPending    = prometheus.NewDesc(nameAckPending, helpAckPending, consumerLabels, nil)
	descRedelivered   = prometheus.NewDesc(nameRedelivered, helpRedelivered, consumerLabels, nil)
	descMaxAckPending = prometheus.NewDesc(nameMaxAckPending, helpMaxAckPending, consumerLabels, nil)
	descInfoErrors    = prometheus.NewDesc(nameInfoErrors, helpInfoErrors, consumerLabels, nil)
)

// consumerCollector reads consumer info at scrape time.
//
// The rule when NATS does not answer: a target whose latest reading failed
// has no backlog gauges at all (no series rather than a stale number that
// looks healthy), and its disputesync_consumer_info_errors_total grows. A
// reading, good or failed, is reused for ttl, so a NATS outage is not
// hammered either. The gauges come back with the first good reading.
type consumerCollector struct {
	js      jetstream.JetStream
	targets []ConsumerTarget
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time

	mu     sync.Mutex // held across a refresh, so concurrent scrapes share it
	read   time.Time  // when readings were taken; zero: never
	infos  []*jetstream.ConsumerInfo
	errors []float64
}

// NewConsumerCollector returns a collector of the backlog gauges of
// docs/contract.md section 4 (disputesync_consumer_pending_messages,
// _ack_pending_messages, _redelivered_messages) plus
// disputesync_consumer_max_ack_pending and
// disputesync_consumer_info_errors_total, for each target. cacheTTL <= 0
// means DefaultConsumerCacheTTL.
func NewConsumerCollector(js jetstream.JetStream, targets []ConsumerTarget, cacheTTL time.Duration) prometheus.Collector {
	if cacheTTL <= 0 {
		cacheTTL = DefaultConsumerCacheTTL
	}
	return &consumerCollector{
		js:      js,
		targets: append([]ConsumerTarget(nil), targets...),
		ttl:     cacheTTL,
		timeout: ConsumerInfoTimeout,
		now:     time.Now,
		infos:   make([]*jetstream.ConsumerInfo, len(targets)),
		errors:  make([]float64, len(targets)),
	}
}

func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descAckPending, descRedelivered, descMaxAckPending, descInfoErrors} {
		ch <- d
	}
}

func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.read.IsZero() || c.now().Sub(c.read) >= c.ttl {
		c.refresh()
	}
	for i, t := range c.targets {
		ch <- prometheus.MustNewConstMetric(descInfoErrors, prometheus.CounterValue, c.errors[i], t.Stream, t.Consumer)
		info := c.infos[i]
		if info == nil {
			continue
		}
		g := func(d *prometheus.Desc, v int) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), t.Stream, t.Consumer)
		}
		g(descPending, int(info.NumPending))
		g(descAckPending, info.NumAckPending)
		g(descRedelivered, info.NumRedelivered)
		g(descMaxAckPending, info.Config.MaxAckPending)
	}
}

// refresh reads every target's consumer info under one deadline; c.mu is held.
func (c *consumerCollector) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for i, t := range c.targets {
		info, err := c.info(ctx, t)
		if err != nil {
			c.infos[i] = nil
			c.errors[i]++
			continue
		}
		c.infos[i] = info
	}
	c.read = c.now()
}

func (c *consumerCollector) info(ctx context.Context, t ConsumerTarget) (*jetstream.ConsumerInfo, error) {
	if c.js == nil {
		return nil, jetstream.ErrJetStreamNotEnabled
	}
	cons, err := c.js.Consumer(ctx, t.Stream, t.Consumer)
	if err != nil {
		return nil, err
	}
	// js.Consumer has just fetched the consumer's info: one request per
	// target and refresh, not two.
	return cons.CachedInfo(), nil
}

// WatchConsumers registers the backlog collector for targets on m's
// registry, replacing one registered by an earlier call. It is meant for
// start-up and is not safe to call concurrently with itself.
func (m *Metrics) WatchConsumers(js jetstream.JetStream, targets []ConsumerTarget) {
	if m == nil {
		return
	}
	if m.consumers != nil {
		m.Registry.Unregister(m.consumers)
	}
	m.consumers = NewConsumerCollector(js, targets, m.ConsumerCacheTTL)
	m.Registry.MustRegister(m.consumers)
}
