package alipayclient_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/handlers/internal/providerhttp"
)

// The string to sign, written here from the documentation and nothing else:
// "<METHOD> <path>\n<Client-Id>.<time>.<body>", RSA PKCS#1 v1.5 over
// SHA-256, base64 then URL-escaped in
// "algorithm=RSA256,keyVersion=1,signature=...".
func docContent(method, path, clientID, ts string, body []byte) []byte {
	return []byte(method + " " + path + "\n" + clientID + "." + ts + "." + string(body))
}

func docSign(t *testing.T, key *rsa.PrivateKey, method, path, clientID, ts string, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(docContent(method, path, clientID, ts, body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return "algorithm=RSA256,keyVersion=1,signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
}

func docVerify(pub *rsa.PublicKey, method, path, clientID, ts string, body []byte, header string) error {
	const prefix = "algorithm=RSA256,keyVersion=1,signature="
	if !strings.HasPrefix(header, prefix) {
		return errors.New("signature header does not have the documented shape")
	}
	unescaped, err := url.QueryUnescape(strings.TrimPrefix(header, prefix))
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(unescaped)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(docContent(method, path, clientID, ts, body))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw)
}

// nonASCII is a body with multi-byte UTF-8 and characters JSON encoders like
// to escape.
const nonASCII = `{"disputeId":"D-1","remarks":"Kunde sagt: Ware nicht erhalten – 退款未处理 <ü&ß> 🚚"}`

func newClient(t *testing.T, keys alipayfake.Keys, baseURL string, now func() time.Time) *alipayclient.Client {
	t.Helper()
	c, err := alipayclient.New(alipayclient.Config{
		Provider: "alipay", BaseURL: baseURL, ClientID: keys.ClientID,
		PrivateKey: keys.MerchantKey, ProviderPublicKey: keys.ProviderPub,
		Timeout: time.Minute, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRequestSignatureVerifiesWithIndependentImplementation(t *testing.T) {
	t.Parallel()
	keys := alipayfake.AlipayKeys(t)
	type seen struct {
		path   string
		header http.Header
		body   []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.EscapedPath(), r.Header.Clone(), b}
		// Answer signed by the independent signer.
		out := []byte(`{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"成功 – ok"},"disputeId":"D-1"}`)
		ts := "2026-11-23T10:00:00+08:00"
		w.Header().Set("Response-Time", ts)
		w.Header().Set("Client-Id", keys.ClientID)
		w.Header().Set("Signature", docSign(t, keys.ProviderKey, "POST", r.URL.EscapedPath(), keys.ClientID, ts, out))
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)

	fixed := time.Date(2026, 11, 23, 9, 30, 15, 0, time.FixedZone("", 8*3600))
	c := newClient(t, keys, srv.URL+"/", func() time.Time { return fixed })
	ans, err := c.Post(context.Background(), alipayclient.Request{
		Operation: "acceptDispute", Path: "/ams/api/v1/payments/acceptDispute", Body: []byte(nonASCII),
	})
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if ans.Result.Code != "SUCCESS" || ans.Result.Message != "成功 – ok" {
		t.Fatalf("answer %+v", ans.Result)
	}
	s := <-got
	if s.path != "/ams/api/v1/payments/acceptDispute" {
		t.Fatalf("path %q", s.path)
	}
	if string(s.body) != nonASCII {
		t.Fatalf("body changed in transit: %q", s.body)
	}
	if s.header.Get("Client-Id") != keys.ClientID {
		t.Fatalf("Client-Id %q", s.header.Get("Client-Id"))
	}
	reqTime := s.header.Get("Request-Time")
	if reqTime != "2026-11-23T09:30:15+08:00" {
		t.Fatalf("Request-Time %q, want ISO 8601 of the clock", reqTime)
	}
	if _, err := time.Parse(time.RFC3339, reqTime); err != nil {
		t.Fatalf("Request-Time is not ISO 8601: %v", err)
	}
	if err := docVerify(keys.MerchantPub, "POST", s.path, keys.ClientID, reqTime, s.body, s.header.Get("Signature")); err != nil {
		t.Fatalf("independent verification of the request signature: %v", err)
	}
	// The signature covers the exact header values sent: another time fails.
	if err := docVerify(keys.MerchantPub, "POST", s.path, keys.ClientID, "2026-11-23T09:30:16+08:00", s.body, s.header.Get("Signature")); err == nil {
		t.Fatal("signature verified over a different Request-Time")
	}
	if ct := s.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestUnverifiedAnswersAreErrorsNeverSuccess(t *testing.T) {
	t.Parallel()
	keys := alipayfake.AlipayKeys(t)
	forger := alipayfake.AlipayPlusKeys(t).ProviderKey
	cases := []struct {
		name  string
		reply alipayfake.Reply
	}{
		{"missing signature", alipayfake.Reply{Code: "SUCCESS", Status: "S", Signing: alipayfake.SignNone}},
		{"forged signature", alipayfake.Reply{Code: "SUCCESS", Status: "S", Signing: alipayfake.SignForged}},
		{"signature over another body", alipayfake.Reply{Code: "SUCCESS", Status: "S", Signing: alipayfake.SignOtherBody}},
		{"missing Response-Time", alipayfake.Reply{Code: "SUCCESS", Status: "S", Signing: alipayfake.SignNoTime}},
		{"answer for another client", alipayfake.Reply{Code: "SUCCESS", Status: "S", Header: http.Header{"Client-Id": {"SOMEONE_ELSE"}}}},
		{"forged refusal", alipayfake.Reply{Code: "PROCESS_FAIL", Status: "F", Signing: alipayfake.SignForged}},
		{"garbage signature header", alipayfake.Reply{Code: "SUCCESS", Status: "S", Header: http.Header{"Signature": {"algorithm=RSA256,keyVersion=1,signature=%%%"}}, Signing: alipayfake.SignNone}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := alipayfake.New(t, keys, forger)
			fake.Always(tc.reply)
			c := newClient(t, keys, fake.URL, nil)
			ans, err := c.Post(context.Background(), alipayclient.Request{Operation: "acceptDispute", Path: "/ams/api/v1/payments/acceptDispute", Body: []byte(`{"disputeId":"D"}`)})
			if err == nil {
				t.Fatalf("unverified answer accepted: %+v", ans.Result)
			}
			if !errors.Is(err, alipayclient.ErrUnverified) {
				t.Fatalf("error %v does not wrap ErrUnverified", err)
			}
			if handlers.IsPermanent(err) {
				t.Fatalf("unverified answer must be retryable (unknown outcome), got permanent: %v", err)
			}
			if len(fake.Requests()) != 1 || !fake.Requests()[0].SigValid {
				t.Fatalf("the fake did not receive one validly signed request")
			}
		})
	}
}

func TestTransportAndHTTPFailures(t *testing.T) {
	t.Parallel()
	keys := alipayfake.AlipayKeys(t)
	forger := alipayfake.AlipayPlusKeys(t).ProviderKey
	cases := []struct {
		name      string
		reply     alipayfake.Reply
		permanent bool
		delay     time.Duration // RetryAfter delay, 0 for none
		is        error
		code      string
	}{
		{"HTTP 500 unsigned", alipayfake.Reply{HTTPStatus: 500, Body: []byte("oops"), Signing: alipayfake.SignNone}, false, 0, nil, "HTTP_500"},
		{"HTTP 503 signed", alipayfake.Reply{HTTPStatus: 503, Code: "SUCCESS", Status: "S"}, false, 0, nil, "HTTP_503"},
		{"HTTP 429", alipayfake.Reply{HTTPStatus: 429, Body: []byte("slow down"), Signing: alipayfake.SignNone}, false, alipayclient.ThrottleDelay, nil, "HTTP_429"},
		{"HTTP 429 with Retry-After", alipayfake.Reply{HTTPStatus: 429, Body: []byte("x"), Signing: alipayfake.SignNone, Header: http.Header{"Retry-After": {"30"}}}, false, 30 * time.Second, nil, "HTTP_429"},
		{"signed body that is not JSON", alipayfake.Reply{Body: []byte("<html>")}, false, 0, alipayclient.ErrMalformed, ""},
		{"signed body without result", alipayfake.Reply{Body: []byte(`{"disputeId":"x"}`)}, false, 0, alipayclient.ErrMalformed, ""},
		{"signed 400 without result", alipayfake.Reply{HTTPStatus: 400, Body: []byte(`{"error":"bad"}`)}, true, 0, nil, "HTTP_400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := alipayfake.New(t, keys, forger)
			fake.Always(tc.reply)
			c := newClient(t, keys, fake.URL, nil)
			_, err := c.Post(context.Background(), alipayclient.Request{Operation: "op", Path: "/p", Body: []byte(`{}`)})
			if err == nil {
				t.Fatal("no error")
			}
			if handlers.IsPermanent(err) != tc.permanent {
				t.Fatalf("permanent = %v, want %v (%v)", handlers.IsPermanent(err), tc.permanent, err)
			}
			d, ok := handlers.RetryDelay(err)
			if tc.delay == 0 && ok || tc.delay != 0 && d != tc.delay {
				t.Fatalf("retry delay %v (%v), want %v", d, ok, tc.delay)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
			if handlers.Code(err) != tc.code {
				t.Fatalf("code %q, want %q", handlers.Code(err), tc.code)
			}
		})
	}

	t.Run("no answer", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			_ = conn.Close()
		}))
		t.Cleanup(srv.Close)
		c := newClient(t, keys, srv.URL, nil)
		_, err := c.Post(context.Background(), alipayclient.Request{Operation: "op", Path: "/p", Body: []byte(`{}`)})
		if !errors.Is(err, providerhttp.ErrTransport) || handlers.IsPermanent(err) {
			t.Fatalf("dropped connection: %v, want a retryable transport error", err)
		}
	})
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	t.Parallel()
	keys := alipayfake.AlipayKeys(t)
	good := alipayclient.Config{Provider: "alipay", BaseURL: "http://127.0.0.1:1", ClientID: "C", PrivateKey: keys.MerchantKey, ProviderPublicKey: keys.ProviderPub}
	cases := map[string]func(*alipayclient.Config){
		"no base URL":    func(c *alipayclient.Config) { c.BaseURL = "" },
		"relative URL":   func(c *alipayclient.Config) { c.BaseURL = "/ams" },
		"no client id":   func(c *alipayclient.Config) { c.ClientID = "" },
		"no private key": func(c *alipayclient.Config) { c.PrivateKey = nil },
		"no public key":  func(c *alipayclient.Config) { c.ProviderPublicKey = nil },
	}
	if _, err := alipayclient.New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mut := range cases {
		cfg := good
		mut(&cfg)
		if _, err := alipayclient.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
