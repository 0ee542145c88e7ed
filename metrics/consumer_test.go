package metrics

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// countingJS counts consumer-info requests, to prove the cache works.
type countingJS struct {
	jetstream.JetStream
	calls atomic.Int64
}

func (c *countingJS) Consumer(ctx context.Context, stream, name string) (jetstream.Consumer, error) {
	c.calls.Add(1)
	return c.JetStream.Consumer(ctx, stream, name)
}

// clock is a settable time source for the cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestCollector(js jetstream.JetStream, targets []ConsumerTarget, ttl time.Duration) (*consumerCollector, *clock) {
	c := NewConsumerCollector(js, targets, ttl).(*consumerCollector)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	c.now = clk.now
	return c, clk
}

// backlog is what one target is expected to export; absent: no gauges.
type backlog struct {
	target                                       ConsumerTarget
	pending, ackPending, redelivered, maxPending int
	errors                                       float64
	absent                                       bool
}

// expect renders backlogs in the text format, grouped by metric name.
func expect(bs ...backlog) string {
	var b strings.Builder
	for _, m := range []struct {
		name, typ string
		v         func(backlog) float64
	}{
		{namePending, "gauge", func(x backlog) float64 { return float64(x.pending) }},
		{nameAckPending, "gauge", func(x backlog) float64 { return float64(x.ackPending) }},
		{nameRedelivered, "gauge", func(x backlog) float64 { return float64(x.redelivered) }},
		{nameMaxAckPending, "gauge", func(x backlog) float64 { return float64(x.maxPending) }},
		{nameInfoErrors, "counter", func(x backlog) float64 { return x.errors }},
	} {
		fmt.Fprintf(&b, "# TYPE %s %s\n", m.name, m.typ)
		for _, x := range bs {
			if m.typ == "gauge" && x.absent {
				continue
			}
			fmt.Fprintf(&b, "%s{consumer=%q,stream=%q} %g\n", m.name, x.target.Consumer, x.target.Stream, m.v(x))
		}
	}
	return b.String()
}

// helps are the HELP lines CollectAndCompare needs alongside expectBacklog.
func helps() string {
	var b strings.Builder
	for _, h := range [][2]string{{namePending, helpPending}, {nameAckPending, helpAckPending},
		{nameRedelivered, helpRedelivered}, {nameMaxAckPending, helpMaxAckPending}, {nameInfoErrors, helpInfoErrors}} {
		fmt.Fprintf(&b, "# HELP %s %s\n", h[0], h[1])
	}
	return b.String()
}

// publishCommands publishes n commands, then waits until the worker
// consumer's info counts wantPending pending messages. The PubAck alone does
// not say the consumer counts the message: the server sends the PubAck
// first and tells the stream's consumers afterwards, from another goroutine,
// so consumer info read right after the last PubAck may still miss it.
func publishCommands(t *testing.T, ctx context.Context, env *testenv.Env, n, wantPending int) {
	t.Helper()
	for i := range n {
		subj := env.Names.ActionSubject("disputeapi", "accept")
		if _, err := env.JS.Publish(ctx, subj, fmt.Appendf(nil, `{"disputeRequestId":"m-%d"}`, i)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		info := consumerInfo(t, ctx, env)
		if info.NumPending == uint64(wantPending) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer info counts %d pending messages, want %d", info.NumPending, wantPending)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func consumerInfo(t *testing.T, ctx context.Context, env *testenv.Env) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := env.JS.Consumer(ctx, env.Names.ActionsStream(), env.Names.WorkerConsumer())
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestConsumerCollectorMatchesConsumerInfo(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	env.Setup(t, topology.Options{MaxAckPending: 16})
	ctx := testenv.Context(t)
	target := ConsumerTarget{Stream: env.Names.ActionsStream(), Consumer: env.Names.WorkerConsumer()}
	names := []string{"disputesync_consumer_pending_messages", "disputesync_consumer_ack_pending_messages",
		"disputesync_consumer_redelivered_messages", "disputesync_consumer_max_ack_pending", "disputesync_consumer_info_errors_total"}

	const n = 7
	publishCommands(t, ctx, env, n, n)
	js := &countingJS{JetStream: env.JS}
	c, clk := newTestCollector(js, []ConsumerTarget{target}, time.Minute)

	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"published", func() {}, expect(backlog{target: target, pending: n, maxPending: 16})},
		{"cached: more published within the TTL", func() { publishCommands(t, ctx, env, 3, n+3) },
			expect(backlog{target: target, pending: n, maxPending: 16})},
		{"after the TTL", func() { clk.add(time.Minute) },
			expect(backlog{target: target, pending: n + 3, maxPending: 16})},
		{"two fetched, not acked", func() {
			cons, err := env.JS.Consumer(ctx, target.Stream, target.Consumer)
			if err != nil {
				t.Fatal(err)
			}
			batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			for range batch.Messages() {
				got++
			}
			if got != 2 {
				t.Fatalf("fetched %d messages, want 2", got)
			}
			clk.add(time.Minute)
		}, expect(backlog{target: target, pending: n + 1, ackPending: 2, maxPending: 16})},
	}
	for _, s := range steps {
		s.do()
		if err := testutil.CollectAndCompare(c, strings.NewReader(helps()+s.want), names...); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		// The gauges say what `nats consumer info` says (unless cached).
		if !strings.HasPrefix(s.name, "cached") {
			info := consumerInfo(t, ctx, env)
			pending := testutil.ToFloat64(gaugeOf(t, c, "disputesync_consumer_pending_messages"))
			ack := testutil.ToFloat64(gaugeOf(t, c, "disputesync_consumer_ack_pending_messages"))
			if pending != float64(info.NumPending) || ack != float64(info.NumAckPending) {
				t.Fatalf("%s: collector pending=%g ack=%g, consumer info pending=%d ack=%d",
					s.name, pending, ack, info.NumPending, info.NumAckPending)
			}
		}
	}
	// Three refreshes (published, after the TTL, fetched); every other
	// collection was served from the cache.
	if got := js.calls.Load(); got != 3 {
		t.Fatalf("consumer info requests: %d, want 3", got)
	}
}

// gaugeOf wraps one metric of c by name as a collector, for ToFloat64.
func gaugeOf(t *testing.T, c prometheus.Collector, name string) prometheus.Collector {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	for m := range ch {
		if strings.Contains(m.Desc().String(), `"`+name+`"`) {
			return constCollector{m}
		}
	}
	t.Fatalf("no %s collected", name)
	return nil
}

type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }

func TestConsumerCollectorScrapeStormCostsOneRequest(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	env.Setup(t, topology.Options{})
	ctx := testenv.Context(t)
	publishCommands(t, ctx, env, 4, 4)
	js := &countingJS{JetStream: env.JS}
	m := New()
	m.ConsumerCacheTTL = time.Hour // the storm below is far shorter
	m.WatchConsumers(js, []ConsumerTarget{{Stream: env.Names.ActionsStream(), Consumer: env.Names.WorkerConsumer()}})

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			mfs, err := m.Registry.Gather()
			if err != nil {
				errs <- err
				return
			}
			for _, mf := range mfs {
				if mf.GetName() == "disputesync_consumer_pending_messages" {
					if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 4 {
						errs <- fmt.Errorf("pending %g, want 4", v)
					}
					return
				}
			}
			errs <- fmt.Errorf("no disputesync_consumer_pending_messages in the scrape")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := js.calls.Load(); got != 1 {
		t.Fatalf("20 concurrent scrapes made %d consumer info requests, want 1", got)
	}
	// A second WatchConsumers replaces the collector instead of panicking.
	m.WatchConsumers(js, []ConsumerTarget{{Stream: env.Names.ActionsStream(), Consumer: env.Names.WorkerConsumer()}})
	if n := testutil.CollectAndCount(m.Registry, "disputesync_consumer_pending_messages"); n != 1 {
		t.Fatalf("after re-watching: %d pending series, want 1", n)
	}
}

func TestConsumerCollectorWhenNATSFails(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	env.Setup(t, topology.Options{})
	ctx := testenv.Context(t)
	names := []string{"disputesync_consumer_pending_messages", "disputesync_consumer_ack_pending_messages",
		"disputesync_consumer_redelivered_messages", "disputesync_consumer_max_ack_pending", "disputesync_consumer_info_errors_total"}

	// A connection that is closed behaves like a NATS server that is down.
	closed, err := nats.Connect(env.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	closedJS, err := jetstream.New(closed)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()

	// The actions stream is a work queue, so the consumer that appears later
	// lives on the events stream.
	missing := ConsumerTarget{Stream: env.Names.EventsStream(), Consumer: "LATER"}
	worker := ConsumerTarget{Stream: env.Names.ActionsStream(), Consumer: env.Names.WorkerConsumer()}
	tests := []struct {
		name    string
		js      jetstream.JetStream
		targets []ConsumerTarget
		want    string
	}{
		{"connection closed", closedJS, []ConsumerTarget{worker}, expect(backlog{target: worker, errors: 1, absent: true})},
		{"no jetstream", nil, []ConsumerTarget{worker}, expect(backlog{target: worker, errors: 1, absent: true})},
		{"consumer missing, other fine", env.JS, []ConsumerTarget{missing, worker},
			expect(backlog{target: missing, errors: 1, absent: true}, backlog{target: worker, maxPending: 64})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCollector(tc.js, tc.targets, time.Minute)
			// A failing scrape must return, not hang; 60 s is only a hang
			// guard, since a loaded machine under -race can take longer
			// than ConsumerInfoTimeout plus slack to finish one.
			done := make(chan error, 1)
			go func() { done <- testutil.CollectAndCompare(c, strings.NewReader(helps()+tc.want), names...) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("a failing scrape did not finish within 60 s")
			}
		})
	}

	// The missing consumer appears: its gauges come back after the TTL, and
	// its error count stays as it was.
	c, clk := newTestCollector(env.JS, []ConsumerTarget{missing}, time.Minute)
	if err := testutil.CollectAndCompare(c, strings.NewReader(helps()+expect(backlog{target: missing, errors: 1, absent: true})), names...); err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.ConsumerConfig{Durable: missing.Consumer, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 5}
	if _, err := env.JS.CreateConsumer(ctx, missing.Stream, cfg); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the failed reading is reused: still absent.
	if n := testutil.CollectAndCount(c, "disputesync_consumer_pending_messages"); n != 0 {
		t.Fatalf("within the TTL: %d pending series, want 0", n)
	}
	clk.add(time.Minute)
	if err := testutil.CollectAndCompare(c, strings.NewReader(helps()+expect(backlog{target: missing, maxPending: 5, errors: 1})), names...); err != nil {
		t.Fatal(err)
	}
}
