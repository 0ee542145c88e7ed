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
