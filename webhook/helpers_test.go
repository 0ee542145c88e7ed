package webhook_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/disputesync/disputesync/docs"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/internal/alipaysig"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/poller"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/webhook"
)

func TestMain(m *testing.M) {
	testenv.Main(m, func() { fmt.Printf("schemas: validated %v\n", docs.Validated()) })
}

var quiet = slog.New(slog.DiscardHandler)

// testKeys are the parsed sandbox test keys, from disputesync's side.
type testKeys struct {
	alipayProviderPub      *rsa.PublicKey  // verifies Alipay's notifications
	alipayProviderPriv     *rsa.PrivateKey // Alipay signs them
	alipayPlusProviderPub  *rsa.PublicKey
	alipayPlusProviderPriv *rsa.PrivateKey
	alipayPlusMerchantPriv *rsa.PrivateKey // signs our answers
	alipayPlusMerchantPub  *rsa.PublicKey
}

func parseKeys(t *testing.T) testKeys {
	t.Helper()
	k := sandbox.TestKeys
	pub := func(s string) *rsa.PublicKey {
		p, err := alipaysig.ParsePublicKey([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	priv := func(s string) *rsa.PrivateKey {
		p, err := alipaysig.ParsePrivateKey([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return testKeys{
		alipayProviderPub: pub(k.AlipayProviderPublicPEM), alipayProviderPriv: priv(k.AlipayProviderPrivatePEM),
		alipayPlusProviderPub: pub(k.AlipayPlusProviderPublicPEM), alipayPlusProviderPriv: priv(k.AlipayPlusProviderPrivatePEM),
		alipayPlusMerchantPriv: priv(k.AlipayPlusMerchantPrivatePEM), alipayPlusMerchantPub: pub(k.AlipayPlusMerchantPublicPEM),
	}
}

// bundle is one test's receiver, its NATS and Redis, and a sandbox as the
// sender.
type bundle struct {
	js     jetstream.JetStream
	names  topology.Names
	m      *metrics.Metrics
	det    *poller.Detector
	ledger alipayplus.Ledger
	sb     *sandbox.Server
	srv    *webhook.Server
	url    string
	keys   testKeys
}

// config is the receiver configuration with the sandbox test credentials.
func config(t *testing.T, keys testKeys, det webhook.Notifier, m *metrics.Metrics) webhook.Config {
	t.Helper()
	k := sandbox.TestKeys
	return webhook.Config{
		Detector:       det,
		AlipayClientID: k.AlipayClientID, AlipayPublicKey: keys.alipayProviderPub,
		AlipayPlusClientID: k.AlipayPlusClientID, AlipayPlusPublicKey: keys.alipayPlusProviderPub,
		AlipayPlusPrivateKey: keys.alipayPlusMerchantPriv,
		DisputeAPISecret:     []byte(k.DisputeAPIWebhookSecret),
		PublishTimeout:       5 * time.Second,
		Metrics:              m,
		Logger:               quiet,
	}
}

// newBundle sets up a prefix on the test NATS and Redis (with topology
// options o) and a receiver; mod may change its configuration.
func newBundle(t *testing.T, o topology.Options, mod func(*webhook.Config)) *bundle {
	t.Helper()
	env := testenv.New(t)
	env.Setup(t, o)
	m := metrics.New()
	det, err := poller.NewDetector(env.JS, env.Names, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{js: env.JS, names: env.Names, m: m, det: det, keys: parseKeys(t),
		ledger: alipayplus.NewRedisLedger(env.Redis, env.Names), sb: sandbox.New(sandbox.Config{Disputes: -1})}
	cfg := config(t, b.keys, det, m)
	cfg.Names, cfg.Redis, cfg.Ledger = env.Names, env.Redis, b.ledger
	if mod != nil {
		mod(&cfg)
	}
	b.srv, err = webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(b.srv.Handler())
	t.Cleanup(ts.Close)
	b.url = ts.URL
	return b
}

// sandboxRecord is a dispute as a poll page would hold it now.
func sandboxRecord(t *testing.T, sb *sandbox.Server, id string) (poller.Record, json.RawMessage) {
	t.Helper()
	rec, _ := sb.Dispute(id)
	raw, _ := json.Marshal(rec)
	pr, err := poller.ParseRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pr, raw
}

// events returns every event stored under the prefix, in order.
func events(t *testing.T, js jetstream.JetStream, names topology.Names) []poller.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []poller.Event
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		var ev poller.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		if m.Header.Get("Nats-Msg-Id") != ev.ID || m.Header.Get("Dispute-Id") != ev.Subject {
			t.Fatalf("event %d headers %v do not match id %s subject %s", seq, m.Header, ev.ID, ev.Subject)
		}
		// Issue 8: the published schemas must accept every real event.
		if err := docs.ValidateMessage(names.Prefix(), m.Subject, m.Header, m.Data); err != nil {
			t.Fatalf("event %d does not match docs/schemas: %v\n%s", seq, err, m.Data)
		}
		out = append(out, ev)
	}
	return out
}

func types(evs []poller.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Source + "/" + e.Type
	}
	return out
}

func count(m *metrics.Metrics, provider, result string) int {
	return int(testutil.ToFloat64(m.WebhookNotifications.WithLabelValues(provider, result)))
}

// once sends a notification once (no retries) through the sandbox sender.
func (b *bundle) once(t *testing.T, n sandbox.Notification) sandbox.Delivery {
	t.Helper()
	return b.sb.SendNotification(testenv.Context(t), n, b.url, sandbox.NotifyPolicy{MaxAttempts: 1})
}

// post sends a body with the given headers to a path.
func post(t *testing.T, url string, body []byte, h http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp, buf.Bytes()
}

// alipayHeaders signs body for path as an Alipay-style sender.
func alipayHeaders(t *testing.T, key *rsa.PrivateKey, path, clientID string, body []byte) http.Header {
	t.Helper()
	rt := time.Now().Format(alipaysig.TimeLayout)
	sig, err := alipaysig.Sign(key, http.MethodPost, path, clientID, rt, body)
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{"Client-Id": {clientID}, "Request-Time": {rt}, "Signature": {sig}}
}

// signedHeaders signs body for path as the provider of kind does.
func signedHeaders(t *testing.T, keys testKeys, provider, path string, body []byte) http.Header {
	t.Helper()
	k := sandbox.TestKeys
	switch provider {
	case webhook.ProviderDisputeAPI:
		return http.Header{"X-Dispute-Signature": {webhook.SignDisputeAPI([]byte(k.DisputeAPIWebhookSecret), body)}}
	case webhook.ProviderAlipay:
		return alipayHeaders(t, keys.alipayProviderPriv, path, k.AlipayClientID, body)
	}
	return alipayHeaders(t, keys.alipayPlusProviderPriv, path, k.AlipayPlusClientID, body)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
