package poller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
)

// counterSum sums a counter family, optionally only where label = value.
func counterSum(t *testing.T, m *metrics.Metrics, name, label, value string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, mt := range mf.GetMetric() {
			if label != "" {
				for _, lp := range mt.GetLabel() {
					if lp.GetName() == label && lp.GetValue() != value {
						continue metric
					}
				}
			}
			if mt.GetCounter() != nil {
				sum += mt.GetCounter().GetValue()
			} else if mt.GetGauge() != nil {
				sum += mt.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestLeaseOneActive is issue 4 acceptance 3: two pollers of one source run
// at once, only the lease holder calls the list API and publishes; when it
// dies (its NATS connection is gone: it can neither renew nor release), the
// other takes over within the lease time.
func TestLeaseOneActive(t *testing.T) {
	h := newHarness(t, 300, topology.Options{})
	ttl := 1500 * time.Millisecond

	ncA, err := nats.Connect(h.env.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer ncA.Close()
	jsA, err := jetstream.New(ncA)
	if err != nil {
		t.Fatal(err)
	}
	mA, mB := metrics.New(), metrics.New()
	pA := h.poller(t, mA, func(c *Config) { c.JS, c.Instance, c.LeaseTTL = jsA, "A", ttl })
	pB := h.poller(t, mB, func(c *Config) { c.Instance, c.LeaseTTL = "B", ttl })
	pages := func(m *metrics.Metrics) float64 {
		return counterSum(t, m, "disputesync_poll_pages_total", "", "")
	}

	ctx := testenv.Context(t)
	ctxA, cancelA := context.WithCancel(ctx)
	ctxB, cancelB := context.WithCancel(ctx)
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- pA.Run(ctxA) }()
	waitFor(t, 10*time.Second, "A polls", func() bool { return pages(mA) > 0 })
	go func() { doneB <- pB.Run(ctxB) }()

	// Both run for two lease times: B stands by, A keeps polling.
	before := pages(mA)
	waitFor(t, 10*time.Second, "A keeps polling", func() bool { return pages(mA) > before+5 })
	time.Sleep(2 * ttl) // a standby must stay idle for longer than a lease time
	if n := pages(mB); n != 0 {
		t.Fatalf("standby B made %v list calls while A held the lease", n)
	}
	if pages(mA) <= before+5 {
		t.Fatal("A stopped polling")
	}

	// A dies.
	ncA.Close()
	took := waitFor(t, 3*ttl, "B takes over", func() bool { return pages(mB) > 0 })
	if took > ttl+ttl/3+time.Second { // a lease time, a standby tick, slack for a loaded CI machine
		t.Errorf("takeover took %v, lease time %v", took, ttl)
	}
	t.Logf("takeover after %v (lease %v)", took, ttl)
	cancelA()
	if err := <-doneA; err != nil {
		t.Errorf("A Run: %v", err)
	}
	events := len(h.events(t))
	if events < 300 {
		t.Errorf("%d events for 300 disputes", events)
	}
	cancelB()
	if err := <-doneB; err != nil {
		t.Errorf("B Run: %v", err)
	}
	checkGroundTruth(t, h, h.events(t))
}

// TestRunStopsOnRejected: a rejected request (here a wrong token, HTTP 401;
// code "400" is classified the same way) stops the source without retries and
// without Run returning early (no crash loop).
func TestRunStopsOnRejected(t *testing.T) {
	h := newHarness(t, 10, topology.Options{})
	m := metrics.New()
	p := h.poller(t, m, func(c *Config) { c.Token = []byte("wrong") })
	ctx, cancel := context.WithCancel(testenv.Context(t))
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, 10*time.Second, "rejected call", func() bool {
		return counterSum(t, m, "disputesync_poll_pages_total", "result", "rejected") > 0
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned before shutdown: %v", err)
	case <-time.After(300 * time.Millisecond): // several intervals: no retry, no return
	}
	if n := counterSum(t, m, "disputesync_poll_pages_total", "", ""); n != 1 {
		t.Errorf("%v list calls, want exactly 1", n)
	}
	cancel()
	if err := <-done; !errors.Is(err, ErrRejected) {
		t.Errorf("Run: %v, want ErrRejected", err)
	}
	if n := counterSum(t, m, "disputesync_poll_last_success_timestamp_seconds", "", ""); n != 0 {
		t.Errorf("last success set to %v after a rejected call", n)
	}
}
