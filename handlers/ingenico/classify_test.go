package ingenico

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

// TestClassification is the classification table of the package doc, row
// by row, each answer served over HTTP by a fake.
func TestClassification(t *testing.T) {
	t.Parallel()
	notAllowed := string(errorBody("DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION", "DISPUTE_SERVICE_ERROR", "Action not allowed for current state", 400))
	tests := []struct {
		name      string
		action    string
		status    int
		header    map[string]string
		body      string
		wantKind  string
		wantCode  string
		wantDelay time.Duration
	}{
		{name: "200 submit", action: "submit_dispute", status: 200, body: `{"id":"162","status":"CREATED"}`, wantKind: "succeeded", wantCode: "CREATED"},
		{name: "200 cancel", action: "cancel_dispute", status: 200, body: `{"id":"162","status":"CANCELLED"}`, wantKind: "succeeded", wantCode: "CANCELLED"},
		{name: "200 without status", action: "submit_dispute", status: 200, body: `{"id":"162"}`, wantKind: "succeeded", wantCode: "HTTP_200"},
		{name: "201 upload", action: "upload_file", status: 201, body: `{"id":"f1"}`, wantKind: "succeeded", wantCode: "HTTP_201"},
		{name: "200 upload without file id", action: "upload_file", status: 200, body: `{}`, wantKind: "retryable", wantCode: "HTTP_200"},
		{name: "200 unparsable", action: "submit_dispute", status: 200, body: `<html>`, wantKind: "retryable", wantCode: "HTTP_200"},
		{name: "204 empty", action: "submit_dispute", status: 204, body: ``, wantKind: "retryable", wantCode: "HTTP_204"},
		{name: "400 action not allowed", action: "submit_dispute", status: 400, body: notAllowed, wantKind: "permanent", wantCode: "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION"},
		{name: "400 code only", action: "submit_dispute", status: 400, body: `{"errorId":"e","errors":[{"code":"21000020","category":"CONNECT_PLATFORM_ERROR","httpStatusCode":400}]}`, wantKind: "permanent", wantCode: "21000020"},
		{name: "400 unparsable", action: "submit_dispute", status: 400, body: `bad request`, wantKind: "permanent", wantCode: "HTTP_400"},
		{name: "401", action: "submit_dispute", status: 401, body: string(errorBody("MISSING_OR_INVALID_AUTHORIZATION", "CONNECT_PLATFORM_ERROR", "no", 401)), wantKind: "permanent", wantCode: "MISSING_OR_INVALID_AUTHORIZATION"},
		{name: "403", action: "cancel_dispute", status: 403, body: string(errorBody("ACCESS_TO_MERCHANT_NOT_ALLOWED", "CONNECT_PLATFORM_ERROR", "no", 403)), wantKind: "permanent", wantCode: "ACCESS_TO_MERCHANT_NOT_ALLOWED"},
		{name: "404", action: "cancel_dispute", status: 404, body: string(errorBody("DISPUTE_NOT_FOUND", "DISPUTE_SERVICE_ERROR", "no", 404)), wantKind: "permanent", wantCode: "DISPUTE_NOT_FOUND"},
		{name: "409 key in progress", action: "submit_dispute", status: 409, body: string(errorBody("DUPLICATE_REQUEST_IN_PROGRESS", "CONNECT_PLATFORM_ERROR", "busy", 409)), wantKind: "retryable", wantCode: "DUPLICATE_REQUEST_IN_PROGRESS"},
		{name: "429 Retry-After seconds", action: "submit_dispute", status: 429, header: map[string]string{"Retry-After": "7"}, body: `{}`, wantKind: "retry_after", wantCode: "HTTP_429", wantDelay: 7 * time.Second},
		{name: "429 no Retry-After", action: "upload_file", status: 429, body: ``, wantKind: "retry_after", wantCode: "HTTP_429", wantDelay: DefaultRetryAfter},
		{name: "429 huge Retry-After", action: "upload_file", status: 429, header: map[string]string{"Retry-After": "86400"}, wantKind: "retry_after", wantCode: "HTTP_429", wantDelay: maxRetryAfter},
		{name: "400 IO_ERROR", action: "submit_dispute", status: 400, body: string(errorBody("PROCESSING_ERROR", CategoryIOError, "io", 400)), wantKind: "retryable", wantCode: "PROCESSING_ERROR"},
		{name: "500", action: "submit_dispute", status: 500, body: string(errorBody("INTERNAL_ERROR", "CONNECT_PLATFORM_ERROR", "boom", 500)), wantKind: "retryable", wantCode: "INTERNAL_ERROR"},
		{name: "502 html", action: "submit_dispute", status: 502, body: `<html>bad gateway</html>`, wantKind: "retryable", wantCode: "HTTP_502"},
		{name: "503 IO_ERROR", action: "cancel_dispute", status: 503, body: string(errorBody("SERVICE_UNAVAILABLE", CategoryIOError, "later", 503)), wantKind: "retryable", wantCode: "SERVICE_UNAVAILABLE"},
		{name: "504", action: "upload_file", status: 504, body: ``, wantKind: "retryable", wantCode: "HTTP_504"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, _ := newTestClient(t, srv.URL, nil)
			params := ""
			if tt.action == "upload_file" {
				params = `{"fileName":"a.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`
			}
			resp, err := handler(t, c, tt.action).Apply(context.Background(), &handlers.Call{Command: command("162", params)})
			if got := kind(err); got != tt.wantKind {
				t.Fatalf("outcome = %s (%v), want %s", got, err, tt.wantKind)
			}
			code := handlers.Code(err)
			if err == nil {
				code = resp.Code
				if string(resp.Body) != tt.body {
					t.Errorf("body = %s, want the whole answer %s", resp.Body, tt.body)
				}
			}
			if code != tt.wantCode {
				t.Errorf("code = %q, want %q", code, tt.wantCode)
			}
			if d, _ := handlers.RetryDelay(err); d != tt.wantDelay {
				t.Errorf("retry delay = %v, want %v", d, tt.wantDelay)
			}
		})
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	h := http.Header{"Retry-After": {now.Add(42 * time.Second).Format(http.TimeFormat)}}
	if d := retryAfter(h, now); d != 42*time.Second {
		t.Fatalf("delay = %v, want 42s", d)
	}
	h.Set("Retry-After", "soon")
	if d := retryAfter(h, now); d != DefaultRetryAfter {
		t.Fatalf("delay = %v, want the default", d)
	}
}

// TestTransportFailures: no answer means an unknown outcome, retryable.
func TestTransportFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range testsupport.TransportFailures(t) {
		t.Run(tt.Name, func(t *testing.T) {
			c, logs := newTestClient(t, tt.URL, func(cfg *Config) { cfg.Timeout = tt.Timeout })
			_, err := handler(t, c, "submit_dispute").Apply(context.Background(), &handlers.Call{Command: command("162", "")})
			if kind(err) != "retryable" {
				t.Fatalf("outcome = %s (%v), want retryable", kind(err), err)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(logs.String(), testSecret) {
				t.Fatal("secret leaked")
			}
		})
	}
}

// TestRedirectNotFollowed: a redirect is an unexpected answer, retryable,
// and the signed request is not sent anywhere else.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL, nil)
	_, err := handler(t, c, "submit_dispute").Apply(context.Background(), &handlers.Call{Command: command("162", "")})
	if kind(err) != "retryable" || handlers.Code(err) != "HTTP_307" || calls.Load() != 1 {
		t.Fatalf("outcome %s %q after %d requests, want retryable HTTP_307 after 1", kind(err), handlers.Code(err), calls.Load())
	}
}
