package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/internal/embedded"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/poller"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/webhook"
)

// TestNATSUnavailable: with NATS stopped every notification is answered
// with an error; the sandbox retries like a provider, and once NATS is back
// each is accepted and its events are stored exactly once.
func TestNATSUnavailable(t *testing.T) {
	t.Parallel()
	env := testenv.New(t) // Redis, and the prefix
	ctx := testenv.Context(t)
	dir := t.TempDir()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ns.URL())
	port, _ := strconv.Atoi(u.Port())
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			ns.Shutdown()
		}
	})
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topology.Setup(ctx, js, env.Names, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	det, err := poller.NewDetector(js, env.Names, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := parseKeys(t)
	cfg := config(t, keys, det, m)
	cfg.Names, cfg.Redis = env.Names, env.Redis
	cfg.Ledger = alipayplus.NewRedisLedger(env.Redis, env.Names)
	cfg.PublishTimeout = 300 * time.Millisecond
	srv, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	sb := sandbox.New(sandbox.Config{Disputes: -1})

	ns.Shutdown()
	stopped = true

	policy := sandbox.NotifyPolicy{MaxAttempts: 200, FirstBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Timeout: 5 * time.Second}
	var ids []string
	for _, k := range kinds {
		ids = append(ids, sb.NotifyWith(ctx, k.build(t, sb), ts.URL, policy))
	}
	// Every kind is refused with an error at least twice while NATS is down.
	waitFor(t, 30*time.Second, "error answers while NATS is down", func() bool {
		for _, d := range sb.Deliveries() {
			if d.Delivered || d.Attempts < 2 || d.LastStatus != http.StatusInternalServerError {
				return false
			}
		}
		return true
	})
	for _, k := range kinds {
		if n := count(m, k.provider, webhook.ResultError); n < 2 {
			t.Errorf("%s: %d error answers", k.provider, n)
		}
	}

	ns2, err := embedded.StartNATS(embedded.NATSOptions{Port: port, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns2.Shutdown)
	done := make(chan struct{})
	go func() { sb.WaitNotifications(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deliveries did not finish after NATS came back")
	}
	for _, d := range sb.Deliveries() {
		if !d.Delivered || !slices.Contains(ids, d.ID) {
			t.Fatalf("delivery %+v", d)
		}
	}
	var want []string
	for _, k := range kinds {
		want = append(want, k.want...)
	}
	got := types(events(t, js, env.Names))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("events after the outage %v, want each once: %v", got, want)
	}
}

// TestEscalationRule: escalate, receive responseEscalation, escalate again
// (allowed), and a third is refused locally with
// EXCEEDS_ESCALATION_REQUEST_LIMIT without a provider call.
func TestEscalationRule(t *testing.T) {
	t.Parallel()
	b := newBundle(t, topology.Options{}, nil)
	ctx := testenv.Context(t)
	provider := httptest.NewServer(b.sb)
	t.Cleanup(provider.Close)
	client, err := alipayplus.New(alipayplus.Config{BaseURL: provider.URL, ClientID: sandbox.TestKeys.AlipayPlusClientID,
		PrivateKey: b.keys.alipayPlusMerchantPriv, ProviderPublicKey: b.keys.alipayPlusProviderPub,
		Timeout: 10 * time.Second, Ledger: b.ledger, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	esc := newEscalator(t, ctx, client)
	calls := func() int { return b.sb.Requests()["alipayplus.initiateEscalation"] }
	pay := b.sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{}).PaymentRequestID

	answer := func(disputeRequestID string) {
		t.Helper()
		var id string
		for _, e := range b.sb.Escalations(pay) {
			if e.DisputeRequestID == disputeRequestID {
				id = e.DisputeID
			}
		}
		n, err := b.sb.EscalationResponse(id, webhook.RefundRefuse, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		// Delivered means: HTTP 200, result S, and our answer's signature
		// verified with the merchant public key.
		if d := b.once(t, n); !d.Delivered {
			t.Fatalf("responseEscalation for %s: %+v", disputeRequestID, d)
		}
	}

	if code := esc(pay, "esc-1"); code != "SUCCESS" {
		t.Fatalf("first escalation: %s", code)
	}
	before := calls()
	if code := esc(pay, "esc-2"); code != alipayplus.CodeExceedsEscalationLimit || calls() != before {
		t.Fatalf("second while the first is ongoing: %s (calls %d -> %d)", code, before, calls())
	}
	answer("esc-1")
	if code := esc(pay, "esc-2"); code != "SUCCESS" {
		t.Fatalf("second after responseEscalation: %s", code)
	}
	answer("esc-2")
	before = calls()
	if code := esc(pay, "esc-3"); code != alipayplus.CodeExceedsEscalationLimit || calls() != before {
		t.Fatalf("third: %s (calls %d -> %d)", code, before, calls())
	}
	want := []string{"alipayplus/dispute.notified", "alipayplus/dispute.notified"}
	if got := types(events(t, b.js, b.names)); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	l, err := b.ledger.Escalations(ctx, pay)
	if err != nil || len(l) != 2 || l[0].ClosedAt.IsZero() || l[1].ClosedAt.IsZero() {
		t.Fatalf("ledger %+v %v", l, err)
	}
}

// newEscalator returns a function that applies alipayplus.initiate_escalation
// as the worker would and returns the result code.
func newEscalator(t *testing.T, ctx context.Context, c *alipayplus.Client) func(payment, id string) string {
	mux := handlers.NewMux()
	c.Register(mux)
	h, ok := mux.Handler(alipayplus.Provider, "initiate_escalation")
	if !ok {
		t.Fatal("initiate_escalation not registered")
	}
	return func(payment, id string) string {
		t.Helper()
		cmd := &handlers.Command{DisputeRequestID: id, Params: json.RawMessage(`{"disputeRequestId":"` + id +
			`","paymentRequestId":"` + payment + `","disputeReasonCode":"7802","disputeReasonCodeDescription":"AMOUNT_DIFFER",` +
			`"escalationAmount":{"currency":"USD","value":"500"}}`)}
		if err := h.Validate(cmd); err != nil {
			t.Fatalf("validate %s: %v", id, err)
		}
		resp, err := h.Apply(ctx, &handlers.Call{Provider: alipayplus.Provider, Action: "initiate_escalation", Command: cmd, Attempt: 1})
		if err != nil {
			return handlers.Code(err)
		}
		return resp.Code
	}
}

// TestLedgerUnavailable: when the escalation bookkeeping cannot be written
// the answer is an error (Alipay+ retries) and nothing is published.
func TestLedgerUnavailable(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	b := newBundle(t, topology.Options{}, func(c *webhook.Config) {
		c.Redis = dead
		c.Ledger = alipayplus.NewRedisLedger(dead, c.Names)
	})
	n := kinds[2].build(t, b.sb)
	d := b.once(t, n)
	if d.Delivered || d.LastStatus != http.StatusInternalServerError {
		t.Fatalf("delivery with the ledger down: %+v", d)
	}
	if evs := events(t, b.js, b.names); len(evs) != 0 {
		t.Fatalf("published %v", types(evs))
	}
	if got := count(b.m, webhook.ProviderAlipayPlus, webhook.ResultError); got != 1 {
		t.Fatalf("error count %d", got)
	}
}
