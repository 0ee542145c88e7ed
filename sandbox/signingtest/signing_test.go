package signingtest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipay"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/handlers/ingenico"
	"github.com/disputesync/disputesync/internal/alipaysig"
	"github.com/disputesync/disputesync/sandbox"
)

// tamper is a RoundTripper that changes a request after the client signed it.
type tamper struct {
	next http.RoundTripper
	f    func(*http.Request)
}

func (t tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
	}
	t.f(r)
	return t.next.RoundTrip(r)
}

// addSpace inserts a space after the opening brace: the same JSON, other bytes.
func addSpace(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	b = append([]byte("{ "), b[1:]...)
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
}

func priv(t *testing.T, p string) *rsa.PrivateKey {
	t.Helper()
	k, err := alipaysig.ParsePrivateKey([]byte(p))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(t *testing.T, p string) *rsa.PublicKey {
	t.Helper()
	k, err := alipaysig.ParsePublicKey([]byte(p))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func apply(t *testing.T, mux *handlers.Mux, provider, action string, cmd *handlers.Command) (*handlers.Response, error) {
	t.Helper()
	h, ok := mux.Handler(provider, action)
	if !ok {
		t.Fatalf("no handler %s.%s", provider, action)
	}
	if err := h.Validate(cmd); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.Apply(ctx, &handlers.Call{Provider: provider, Action: action, Command: cmd, Attempt: 1})
}

// variant is one way of breaking a request; zero is the control that works.
type variant struct {
	name    string
	wrong   bool          // sign with another merchant's key / secret
	skew    time.Duration // the client's clock is off by this much
	tamper  func(*http.Request)
	refused string // the provider's code, "" for success
}

func TestAlipayRefusesBadRequestSignatures(t *testing.T) {
	variants := []variant{
		{name: "wrong key", wrong: true, refused: "INVALID_SIGNATURE"},
		{name: "changed body", tamper: addSpace, refused: "INVALID_SIGNATURE"},
		{name: "stale timestamp", skew: -10 * time.Minute, refused: "INVALID_SIGNATURE"},
		{name: "control", refused: ""},
	}
	keys := sandbox.TestKeys
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Config{Disputes: -1})
			ts := httptest.NewServer(sb)
			defer ts.Close()
			cfg := alipay.Config{BaseURL: ts.URL, ClientID: keys.AlipayClientID, PrivateKey: priv(t, keys.AlipayMerchantPrivatePEM),
				ProviderPublicKey: pub(t, keys.AlipayProviderPublicPEM), Timeout: 5 * time.Second,
				Now: func() time.Time { return time.Now().Add(v.skew) }}
			if v.wrong {
				cfg.PrivateKey = priv(t, keys.AlipayPlusMerchantPrivatePEM)
			}
			if v.tamper != nil {
				cfg.HTTPClient = &http.Client{Transport: tamper{http.DefaultTransport, v.tamper}}
			}
			c, err := alipay.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			mux := handlers.NewMux()
			c.Register(mux)
			d := sb.CreateAlipayDispute(sandbox.AlipayDispute{})
			_, err = apply(t, mux, alipay.Provider, "accept_dispute", &handlers.Command{DisputeRequestID: "sig-" + v.name, DisputeID: d.DisputeID})
			checkOutcome(t, sb, err, v.refused)
		})
	}
}

func TestAlipayPlusRefusesBadRequestSignatures(t *testing.T) {
	variants := []variant{
		{name: "wrong key", wrong: true, refused: "INVALID_SIGNATURE"},
		{name: "changed body", tamper: addSpace, refused: "INVALID_SIGNATURE"},
		{name: "stale timestamp", skew: 10 * time.Minute, refused: "INVALID_SIGNATURE"},
		{name: "control", refused: ""},
	}
	keys := sandbox.TestKeys
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Config{Disputes: -1})
			ts := httptest.NewServer(sb)
			defer ts.Close()
			cfg := alipayplus.Config{BaseURL: ts.URL, ClientID: keys.AlipayPlusClientID, PrivateKey: priv(t, keys.AlipayPlusMerchantPrivatePEM),
				ProviderPublicKey: pub(t, keys.AlipayPlusProviderPublicPEM), Timeout: 5 * time.Second,
				Now: func() time.Time { return time.Now().Add(v.skew) }}
			if v.wrong {
				cfg.PrivateKey = priv(t, keys.AlipayMerchantPrivatePEM)
			}
			if v.tamper != nil {
				cfg.HTTPClient = &http.Client{Transport: tamper{http.DefaultTransport, v.tamper}}
			}
			c, err := alipayplus.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			mux := handlers.NewMux()
			c.Register(mux)
			pay := sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{})
			params := []byte(`{"paymentRequestId":"` + pay.PaymentRequestID + `","disputeReasonCode":"7801",` +
				`"disputeReasonCodeDescription":"NOT_AS_DESCRIBED","escalationAmount":{"currency":"USD","value":"100"}}`)
			_, err = apply(t, mux, alipayplus.Provider, "initiate_escalation", &handlers.Command{DisputeRequestID: "sig-1", Params: params})
			checkOutcome(t, sb, err, v.refused)
		})
	}
}

func TestIngenicoRefusesBadAuthorization(t *testing.T) {
	variants := []variant{
		{name: "wrong secret", wrong: true, refused: "MISSING_OR_INVALID_AUTHORIZATION"},
		// v1HMAC does not sign the body; a signed header changed in transit is refused.
		{name: "changed idempotence key", tamper: func(r *http.Request) { r.Header.Set("X-GCS-Idempotence-Key", "other") }, refused: "MISSING_OR_INVALID_AUTHORIZATION"},
		{name: "stale date", skew: -10 * time.Minute, refused: "MISSING_OR_INVALID_AUTHORIZATION"},
		{name: "control", refused: ""},
	}
	keys := sandbox.TestKeys
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			sb := sandbox.New(sandbox.Config{Disputes: -1})
			ts := httptest.NewServer(sb)
			defer ts.Close()
			cfg := ingenico.Config{BaseURL: ts.URL, MerchantID: keys.IngenicoMerchantID, APIKeyID: keys.IngenicoAPIKeyID,
				SecretAPIKey: []byte(keys.IngenicoSecretAPIKey), Timeout: 5 * time.Second,
				Now: func() time.Time { return time.Now().Add(v.skew) }}
			if v.wrong {
				cfg.SecretAPIKey = []byte("another-secret")
			}
			if v.tamper != nil {
				cfg.HTTPClient = &http.Client{Transport: tamper{http.DefaultTransport, v.tamper}}
			}
			c, err := ingenico.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			mux := handlers.NewMux()
			c.Register(mux)
			d := sb.CreateIngenicoDispute(sandbox.IngenicoDispute{})
			_, err = apply(t, mux, ingenico.Provider, "submit_dispute", &handlers.Command{DisputeRequestID: "sig-1", DisputeID: d.ID})
			checkOutcome(t, sb, err, v.refused)
		})
	}
}

// checkOutcome: a refusal carries the provider's code and applied nothing;
// the control succeeded and applied exactly once.
func checkOutcome(t *testing.T, sb *sandbox.Server, err error, refused string) {
	t.Helper()
	effects := sb.Effects()
	if refused == "" {
		if err != nil || len(effects) != 1 {
			t.Fatalf("control: err %v, %d effects", err, len(effects))
		}
		return
	}
	if err == nil || handlers.Code(err) != refused {
		t.Fatalf("got %v (code %q), want %s", err, handlers.Code(err), refused)
	}
	if len(effects) != 0 {
		t.Fatalf("a refused request applied: %+v", effects)
	}
}
