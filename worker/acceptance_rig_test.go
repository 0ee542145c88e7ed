package worker_test

// The acceptance rig: the provider sandbox behind httptest, the real
// provider handlers wired to it as cmd/disputesync wires them, a fleet of
// workers that can be cancelled at random, a result collector and a
// Jepsen-style checker (RELIABILITY.md section 5); the fleet and the
// checker are in acceptance_fleet_test.go.

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipay"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/handlers/ingenico"
	"github.com/disputesync/disputesync/internal/alipaysig"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/worker"
)

// providerTimeout bounds each provider call, so that the sandbox's injected
// timeouts (a request held until the client gives up) stay cheap.
const providerTimeout = 300 * time.Millisecond

// envInt reads a positive integer knob of the acceptance tests.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// envDuration reads a duration knob of the acceptance tests.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration", name, v)
	}
	return d
}

// callLog records every request that reaches the sandbox, by the command id
// the handlers send with it (Dispute-Request-Id for Alipay and Alipay+,
// X-GCS-Idempotence-Key for Ingenico). It observes; the sandbox answers.
type callLog struct {
	mu   sync.Mutex
	byID map[string]int
	at   []time.Time
}

func (c *callLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Dispute-Request-Id")
		if id == "" {
			id = r.Header.Get("X-GCS-Idempotence-Key")
		}
		c.mu.Lock()
		c.byID[id]++
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *callLog) of(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

func (c *callLog) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.at)
}

// between counts the requests that arrived in [from, to).
func (c *callLog) between(from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, at := range c.at {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// providerRig is the sandbox served over HTTP.
type providerRig struct {
	sb    *sandbox.Server
	url   string
	calls *callLog
}

func newProviderRig(t *testing.T) *providerRig {
	t.Helper()
	sb := sandbox.New(sandbox.Config{Disputes: -1})
	calls := &callLog{byID: map[string]int{}}
	ts := httptest.NewServer(calls.wrap(sb))
	t.Cleanup(ts.Close)
	return &providerRig{sb: sb, url: ts.URL, calls: calls}
}

// mux registers the real Alipay, Alipay+ and Ingenico handlers against the
// sandbox with its published test keys; the Alipay+ ledger lives in rdb.
func (p *providerRig) mux(t *testing.T, rdb redis.UniversalClient, names topology.Names, m *metrics.Metrics) *handlers.Mux {
	t.Helper()
	k := sandbox.TestKeys
	priv := func(s string) *rsa.PrivateKey {
		key, err := alipaysig.ParsePrivateKey([]byte(s))
		if err != nil {
			t.Fatalf("test key: %v", err)
		}
		return key
	}
	pub := func(s string) *rsa.PublicKey {
		key, err := alipaysig.ParsePublicKey([]byte(s))
		if err != nil {
			t.Fatalf("test key: %v", err)
		}
		return key
	}
	log := slog.New(slog.DiscardHandler)
	mux := handlers.NewMux()
	ali, err := alipay.New(alipay.Config{BaseURL: p.url, ClientID: k.AlipayClientID, PrivateKey: priv(k.AlipayMerchantPrivatePEM),
		ProviderPublicKey: pub(k.AlipayProviderPublicPEM), Timeout: providerTimeout, Metrics: m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ali.Register(mux)
	aps, err := alipayplus.New(alipayplus.Config{BaseURL: p.url, ClientID: k.AlipayPlusClientID, PrivateKey: priv(k.AlipayPlusMerchantPrivatePEM),
		ProviderPublicKey: pub(k.AlipayPlusProviderPublicPEM), Timeout: providerTimeout, Metrics: m, Logger: log,
		Ledger: alipayplus.NewRedisLedger(rdb, names)})
	if err != nil {
		t.Fatal(err)
	}
	aps.Register(mux)
	ing, err := ingenico.New(ingenico.Config{BaseURL: p.url, MerchantID: k.IngenicoMerchantID, APIKeyID: k.IngenicoAPIKeyID,
		SecretAPIKey: []byte(k.IngenicoSecretAPIKey), Timeout: providerTimeout, Metrics: m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ing.Register(mux)
	return mux
}

// expectation is one command and what must become of it.
type expectation struct {
	id       string
	subject  string
	body     []byte
	provider string // the sandbox provider whose effects carry the id
	outcome  string
	codes    []string // acceptable result codes
}

func escalationBody(id, payment, desc, value string) string {
	return fmt.Sprintf(`{"disputeRequestId":%q,"requestedBy":"acceptance","params":{"paymentRequestId":%q,`+
		`"disputeReasonCode":"7802","disputeReasonCodeDescription":%q,"escalationAmount":{"currency":"USD","value":%q}}}`,
		id, payment, desc, value)
}

func disputeBody(id, dispute, params string) string {
	return fmt.Sprintf(`{"disputeRequestId":%q,"disputeId":%q,"requestedBy":"acceptance","params":%s}`, id, dispute, params)
}

// workload builds n commands over the sandbox: per 20, 18 that must succeed
// (Alipay+ initiate_escalation, Ingenico submit_dispute and Alipay
// accept_dispute in turn, each on its own payment or dispute), one the
// provider refuses (failed) and one the worker must reject without a call.
func workload(p *providerRig, names topology.Names, n int) []expectation {
	sb := p.sb
	subj := names.ActionSubject
	out := make([]expectation, 0, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("acc-%05d", i)
		var e expectation
		switch {
		case i%20 == 0: // rejected before any provider call
			e.outcome = worker.Rejected
			e.codes = []string{worker.CodeInvalidCommand}
			switch (i / 20) % 5 {
			case 0: // accept_dispute needs a disputeId
				e.provider, e.subject = sandbox.ProviderAlipay, subj("alipay", "accept_dispute")
				e.body = []byte(fmt.Sprintf(`{"disputeRequestId":%q}`, id))
			case 1: // submit_dispute takes no params
				d := sb.CreateIngenicoDispute(sandbox.IngenicoDispute{})
				e.provider, e.subject = sandbox.ProviderIngenico, subj("ingenico", "submit_dispute")
				e.body = []byte(disputeBody(id, d.ID, `{"note":"x"}`))
			case 2: // a description of another reason code: the provider's own rule
				pay := sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{})
				e.provider, e.subject = sandbox.ProviderAlipayPlus, subj("alipayplus", "initiate_escalation")
				e.body = []byte(escalationBody(id, pay.PaymentRequestID, "NOT_AS_DESCRIBED", "500"))
				e.codes = []string{alipayplus.CodeParamIllegal}
			case 3: // the value must be a positive integer string
				pay := sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{})
				e.provider, e.subject = sandbox.ProviderAlipayPlus, subj("alipayplus", "initiate_escalation")
				e.body = []byte(escalationBody(id, pay.PaymentRequestID, "AMOUNT_DIFFER", "12,00"))
			case 4: // not an action of the contract
				e.provider, e.subject = sandbox.ProviderAlipay, subj("alipay", "refund_everything")
				e.body = []byte(disputeBody(id, "D1", `{}`))
			}
		case i%20 == 1: // sent, and refused by the provider
			e.outcome = worker.Failed
			switch (i / 20) % 3 {
			case 0:
				d := sb.CreateAlipayDispute(sandbox.AlipayDispute{CreatedAt: time.Now().Add(-10 * 24 * time.Hour),
					DefenseDueTime: time.Now().Add(-time.Hour)})
				e.provider, e.subject = sandbox.ProviderAlipay, subj("alipay", "accept_dispute")
				e.body = []byte(disputeBody(id, d.DisputeID, `{}`))
				e.codes = []string{"TIME_EXCEEDS_LIMIT"}
			case 1:
				d := sb.CreateIngenicoDispute(sandbox.IngenicoDispute{Status: sandbox.IngenicoCancelled})
				e.provider, e.subject = sandbox.ProviderIngenico, subj("ingenico", "submit_dispute")
				e.body = []byte(disputeBody(id, d.ID, `{}`))
				e.codes = []string{"DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION"}
			case 2:
				e.provider, e.subject = sandbox.ProviderAlipayPlus, subj("alipayplus", "initiate_escalation")
				e.body = []byte(escalationBody(id, fmt.Sprintf("NOPAY%023d", i), "AMOUNT_DIFFER", "500"))
				e.codes = []string{"ORDER_NOT_EXIST"}
			}
		default:
			e.outcome = worker.Succeeded
			switch i % 3 {
			case 0:
				pay := sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{})
				e.provider, e.subject = sandbox.ProviderAlipayPlus, subj("alipayplus", "initiate_escalation")
				e.body = []byte(escalationBody(id, pay.PaymentRequestID, "AMOUNT_DIFFER", "500"))
				e.codes = []string{"SUCCESS"}
			case 1:
				d := sb.CreateIngenicoDispute(sandbox.IngenicoDispute{})
				e.provider, e.subject = sandbox.ProviderIngenico, subj("ingenico", "submit_dispute")
				e.body = []byte(disputeBody(id, d.ID, `{}`))
				e.codes = []string{sandbox.IngenicoCreated}
			case 2:
				d := sb.CreateAlipayDispute(sandbox.AlipayDispute{})
				e.provider, e.subject = sandbox.ProviderAlipay, subj("alipay", "accept_dispute")
				e.body = []byte(disputeBody(id, d.DisputeID, `{}`))
				// REPEAT_REQUEST is the proof of an earlier attempt's effect.
				e.codes = []string{"SUCCESS", "REPEAT_REQUEST"}
			}
		}
		e.id = id
		out = append(out, e)
	}
	return out
}

// publishAll publishes every command with the Nats-Msg-Id tag+id, so that
// a second round with another tag is not dropped by the stream's dedup.
func publishAll(t *testing.T, js jetstream.JetStream, cmds []expectation, tag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(cmds))
	for _, c := range cmds {
		m := nats.NewMsg(c.subject)
		m.Data = c.body
		m.Header.Set(worker.HeaderMsgID, tag+":"+c.id)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatalf("publish %s: %v", c.id, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				t.Fatalf("command %s was dropped as a duplicate", cmds[i].id)
			}
		case err := <-f.Err():
			t.Fatalf("publish %s: %v", cmds[i].id, err)
		case <-ctx.Done():
			t.Fatal("publish acks did not arrive")
		}
	}
}

// collector keeps every result published on the results stream.
type collector struct {
	mu  sync.Mutex
	all []worker.Result
}

func collect(t *testing.T, env *testenv.Env) *collector {
	t.Helper()
	c := &collector{}
	ctx := testenv.Context(t)
	cons, err := env.JS.OrderedConsumer(ctx, env.Names.ResultsStream(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var r worker.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			t.Errorf("result is not JSON: %v: %s", err, m.Data())
		}
		c.mu.Lock()
		c.all = append(c.all, r)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return c
}

func (c *collector) snapshot() []worker.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]worker.Result(nil), c.all...)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.all)
}

// awaitDrained waits until the worker consumer has nothing pending or
// unacknowledged, the collector has read the whole results stream and holds
// at least min results. Results are published before their command is
// acked, so after this no further result can appear.
func awaitDrained(t *testing.T, env *testenv.Env, c *collector, min int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		cons, err := env.JS.Consumer(ctx, env.Names.ActionsStream(), env.Names.WorkerConsumer())
		if err == nil {
			var ci *jetstream.ConsumerInfo
			ci, err = cons.Info(ctx)
			if err == nil {
				var st jetstream.Stream
				st, err = env.JS.Stream(ctx, env.Names.ResultsStream())
				if err == nil {
					var si *jetstream.StreamInfo
					si, err = st.Info(ctx)
					if err == nil {
						got := c.len()
						last = fmt.Sprintf("pending %d, ack pending %d, results read %d of %d in the stream, want at least %d",
							ci.NumPending, ci.NumAckPending, got, si.State.Msgs, min)
						if ci.NumPending == 0 && ci.NumAckPending == 0 && uint64(got) == si.State.Msgs && got >= min {
							return
						}
					}
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not drained after %v: %s", timeout, last)
		case <-time.After(50 * time.Millisecond): // polling the server's state
		}
	}
}
