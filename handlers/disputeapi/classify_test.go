package disputeapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

// TestClassification is the classification table of the package doc, row
// by row, each answer served over HTTP.
func TestClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		action    string
		status    int
		header    map[string]string
		body      string
		wantKind  string
		wantCode  string
		wantMsg   string
		wantDelay time.Duration
	}{
		{name: "200 abandon", action: "abandon", status: 200, body: `{"code":"200","msg":"SUCCESS","data":null}`, wantKind: "succeeded", wantCode: "200", wantMsg: "SUCCESS"},
		{name: "200 numeric code", action: "submit_defense", status: 200, body: `{"code":200,"msg":"SUCCESS"}`, wantKind: "succeeded", wantCode: "200", wantMsg: "SUCCESS"},
		{name: "200 upload", action: "upload_document", status: 200, body: `{"code":"200","msg":"SUCCESS","data":{"document_id":"doc-1"}}`, wantKind: "succeeded", wantCode: "200", wantMsg: "SUCCESS"},
		{name: "200 upload without document_id", action: "upload_document", status: 200, body: `{"code":"200","msg":"SUCCESS","data":{}}`, wantKind: "retryable", wantCode: "200"},
		{name: "200 remove", action: "remove_document", status: 200, body: `{"code":"200","msg":"SUCCESS"}`, wantKind: "succeeded", wantCode: "200", wantMsg: "SUCCESS"},
		{name: "envelope 400 in HTTP 200", action: "abandon", status: 200, body: `{"code":"400","msg":"PARAM_ERROR"}`, wantKind: "permanent", wantCode: "400", wantMsg: "PARAM_ERROR"},
		{name: "envelope 400 in HTTP 400", action: "submit_defense", status: 400, body: `{"code":"400","msg":"DISPUTE_ALREADY_DEFENDED"}`, wantKind: "permanent", wantCode: "400", wantMsg: "DISPUTE_ALREADY_DEFENDED"},
		{name: "already closed without Recover", action: "abandon", status: 200, body: `{"code":"400","msg":"DISPUTE_ALREADY_CLOSED"}`, wantKind: "permanent", wantCode: "400", wantMsg: "DISPUTE_ALREADY_CLOSED"},
		{name: "document not found without Recover", action: "remove_document", status: 200, body: `{"code":"400","msg":"DOCUMENT_NOT_FOUND"}`, wantKind: "permanent", wantCode: "400", wantMsg: "DOCUMENT_NOT_FOUND"},
		{name: "envelope 500 in HTTP 200", action: "abandon", status: 200, body: `{"code":"500","msg":"SYSTEM_ERROR"}`, wantKind: "retryable", wantCode: "500", wantMsg: "SYSTEM_ERROR"},
		{name: "unknown envelope code", action: "abandon", status: 200, body: `{"code":"302","msg":"?"}`, wantKind: "retryable", wantCode: "302"},
		{name: "200 unreadable", action: "abandon", status: 200, body: `<html>`, wantKind: "retryable", wantCode: "HTTP_200"},
		{name: "200 empty object", action: "abandon", status: 200, body: `{}`, wantKind: "retryable", wantCode: "HTTP_200"},
		{name: "200 code with HTTP 404", action: "abandon", status: 404, body: `{"code":"200","msg":"SUCCESS"}`, wantKind: "permanent", wantCode: "HTTP_404"},
		{name: "401", action: "abandon", status: 401, body: `{"code":"401","msg":"UNAUTHORIZED"}`, wantKind: "permanent", wantCode: "HTTP_401", wantMsg: "UNAUTHORIZED"},
		{name: "401 no body", action: "upload_document", status: 401, wantKind: "permanent", wantCode: "HTTP_401"},
		{name: "403", action: "abandon", status: 403, body: `forbidden`, wantKind: "permanent", wantCode: "HTTP_403"},
		{name: "404 html", action: "abandon", status: 404, body: `<html>`, wantKind: "permanent", wantCode: "HTTP_404"},
		{name: "429 Retry-After", action: "abandon", status: 429, header: map[string]string{"Retry-After": "3"}, wantKind: "retry_after", wantCode: "HTTP_429", wantDelay: 3 * time.Second},
		{name: "429 default", action: "abandon", status: 429, body: `{"code":"500","msg":"TOO_MANY"}`, wantKind: "retry_after", wantCode: "500", wantDelay: DefaultRetryAfter},
		{name: "500 envelope", action: "abandon", status: 500, body: `{"code":"500","msg":"SYSTEM_ERROR"}`, wantKind: "retryable", wantCode: "500"},
		{name: "500 with envelope 400", action: "abandon", status: 500, body: `{"code":"400","msg":"PARAM_ERROR"}`, wantKind: "retryable", wantCode: "400"},
		{name: "502 html", action: "submit_defense", status: 502, body: `<html>`, wantKind: "retryable", wantCode: "HTTP_502"},
		{name: "503", action: "remove_document", status: 503, wantKind: "retryable", wantCode: "HTTP_503"},
	}
	params := map[string]string{
		"abandon":         "",
		"upload_document": `{"file_name":"a.pdf","content_type":"pdf","content":"JVBERi0xLjQK"}`,
		"remove_document": `{"document_id":"doc-1"}`,
		"submit_defense":  `{"comment":"delivered"}`,
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
			resp, err := clientHandler(t, c, tt.action).Apply(context.Background(),
				&handlers.Call{Command: command("r1", "D100", params[tt.action])})
			if got := kind(err); got != tt.wantKind {
				t.Fatalf("outcome = %s (%v), want %s", got, err, tt.wantKind)
			}
			code, msg := handlers.Code(err), ""
			if err == nil {
				code, msg = resp.Code, resp.Message
				if string(resp.Body) != tt.body {
					t.Errorf("body = %s, want the whole answer", resp.Body)
				}
			}
			if code != tt.wantCode {
				t.Errorf("code = %q, want %q", code, tt.wantCode)
			}
			if tt.wantMsg != "" && err != nil {
				var pe *handlers.ProviderError
				if errors.As(err, &pe) {
					msg = pe.Message
				}
			}
			if tt.wantMsg != "" && msg != tt.wantMsg {
				t.Errorf("message = %q, want %q", msg, tt.wantMsg)
			}
			if d, _ := handlers.RetryDelay(err); d != tt.wantDelay {
				t.Errorf("retry delay = %v, want %v", d, tt.wantDelay)
			}
		})
	}
}

// TestTransportFailures: no answer means an unknown outcome, retryable.
func TestTransportFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range testsupport.TransportFailures(t) {
		c, _ := newTestClient(t, tt.URL, func(cfg *Config) { cfg.Timeout = tt.Timeout })
		_, err := clientHandler(t, c, "abandon").Apply(context.Background(), &handlers.Call{Command: command("r1", "D100", "")})
		if kind(err) != "retryable" {
			t.Errorf("%s: outcome = %s (%v), want retryable", tt.Name, kind(err), err)
		}
	}
}

// TestRedirectNotFollowed: a redirect is an unexpected answer, retryable,
// and the POST is not replayed elsewhere (Go would turn it into a GET).
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL, nil)
	_, err := clientHandler(t, c, "abandon").Apply(context.Background(), &handlers.Call{Command: command("r1", "D100", "")})
	if kind(err) != "retryable" || handlers.Code(err) != "HTTP_302" || calls.Load() != 1 {
		t.Fatalf("outcome %s %q after %d requests, want retryable HTTP_302 after 1", kind(err), handlers.Code(err), calls.Load())
	}
}
