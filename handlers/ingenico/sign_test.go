package ingenico

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
)

// TestSignatureInterop checks what the client puts on the wire against the
// independent string-to-sign of fake_test.go, recomputed by the server.
func TestSignatureInterop(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	const nonASCII = `{"fileName":"Beweis—Ünïcødé 日本.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`
	tests := []struct {
		name, action, disputeID, params, basePath string
		reqID                                     string
		wantURI, wantContentType                  string
		wantBody                                  string
	}{
		{name: "submit", action: "submit_dispute", disputeID: "162",
			wantURI: "/v1/9991/disputes/162/submit"},
		{name: "cancel with escaped id", action: "cancel_dispute", disputeID: "D 1/ä?x",
			wantURI: "/v1/9991/disputes/D%201%2F%C3%A4%3Fx/cancel"},
		{name: "upload with non-ASCII body", action: "upload_file", disputeID: "162", params: nonASCII,
			wantURI: "/v1/9991/disputes/162/files", wantContentType: "application/json",
			wantBody: `{"fileName":"Beweis—Ünïcødé 日本.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`},
		{name: "non-ASCII idempotence key", action: "submit_dispute", disputeID: "8", reqID: "ops-ä-日本-1",
			wantURI: "/v1/9991/disputes/8/submit"},
		{name: "base URL with a path", action: "submit_dispute", disputeID: "7", basePath: "/gw/ingenico/",
			wantURI: "/gw/ingenico/v1/9991/disputes/7/submit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var got *http.Request
			var gotBody []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got, gotBody = r, b
				mu.Unlock()
				if r.Header.Get("Authorization") != wantAuthorization(r, testKeyID, []byte(testSecret)) {
					w.WriteHeader(401)
					w.Write(errorBody("MISSING_OR_INVALID_AUTHORIZATION", "CONNECT_PLATFORM_ERROR", "bad signature", 401))
					return
				}
				w.Write([]byte(`{"id":"f1","status":"CREATED"}`))
			}))
			defer srv.Close()
			c, _ := newTestClient(t, srv.URL+tt.basePath, func(cfg *Config) { cfg.Now = func() time.Time { return now } })
			cmd := command(tt.disputeID, tt.params)
			cmd.DisputeRequestID = "ops-2026-11-23-0001"
			if tt.reqID != "" {
				cmd.DisputeRequestID = tt.reqID
			}
			resp, err := handler(t, c, tt.action).Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 1})
			if err != nil {
				t.Fatalf("Apply: %v (the server's independent HMAC must match)", err)
			}
			if resp.Code != "CREATED" {
				t.Errorf("code = %q, want CREATED", resp.Code)
			}
			mu.Lock()
			defer mu.Unlock()
			if got.RequestURI != tt.wantURI {
				t.Errorf("request URI = %q, want %q", got.RequestURI, tt.wantURI)
			}
			if d := got.Header.Get("Date"); d != "Mon, 23 Nov 2026 10:00:00 GMT" {
				t.Errorf("Date = %q, want RFC 1123 in GMT", d)
			}
			if k := got.Header.Get("X-GCS-Idempotence-Key"); k != cmd.DisputeRequestID {
				t.Errorf("X-GCS-Idempotence-Key = %q", k)
			}
			if ct := got.Header.Get("Content-Type"); ct != tt.wantContentType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantContentType)
			}
			if string(gotBody) != tt.wantBody {
				t.Errorf("body = %s, want %s", gotBody, tt.wantBody)
			}
			if !strings.HasPrefix(got.Header.Get("Authorization"), "GCS v1HMAC:"+testKeyID+":") {
				t.Errorf("Authorization = %q", got.Header.Get("Authorization"))
			}
			for name, vs := range got.Header {
				if strings.Contains(strings.Join(vs, " "), testSecret) {
					t.Errorf("header %s carries the secret", name)
				}
			}
		})
	}
}

// TestSignatureRejectedWhenTampered shows the server check above can fail:
// a body-carrying request whose headers change after signing no longer
// verifies with the independent implementation.
func TestSignatureRejectedWhenTampered(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != wantAuthorization(r, testKeyID, []byte(testSecret)) {
			status.Store(401)
			w.WriteHeader(401)
			w.Write(errorBody("MISSING_OR_INVALID_AUTHORIZATION", "CONNECT_PLATFORM_ERROR", "bad signature", 401))
			return
		}
		w.Write([]byte(`{"status":"CREATED"}`))
	}))
	defer srv.Close()
	tamper := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("X-GCS-Idempotence-Key", "someone-else")
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.HTTPClient = tamper })
	_, err := handler(t, c, "submit_dispute").Apply(context.Background(), &handlers.Call{Command: command("162", "")})
	if status.Load() != 401 || kind(err) != "permanent" || handlers.Code(err) != "MISSING_OR_INVALID_AUTHORIZATION" {
		t.Fatalf("status %d, err %v (%s); want a refused signature", status.Load(), err, kind(err))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestIndependentSignerKnownAnswer anchors the test's own implementation to
// the answer published with Ingenico's SDK tests, so that agreement with it
// means agreement with Ingenico.
func TestIndependentSignerKnownAnswer(t *testing.T) {
	t.Parallel()
	h := http.Header{"Date": {"Fri, 06 Jun 2014 13:39:43 GMT"}}
	got := "GCS v1HMAC:5e45c937b9db33ae:" + hmacBase64([]byte("I42Zf4pVnRdroHfuHnRiJjJ2B6+22h0yQt/R3nZR8Xg="),
		stringToSign("GET", "/v1/9991/tokens/123456789", h))
	if want := "GCS v1HMAC:5e45c937b9db33ae:J5LjfSBvrQNhu7gG0gvifZt+IWNDReGCmHmBmth6ueI="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
