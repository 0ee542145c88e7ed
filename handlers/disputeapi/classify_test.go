package disputeapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

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
