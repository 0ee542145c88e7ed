// Package testsupport holds small fakes the provider handler tests share.
package testsupport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
)

// LogBuffer is a log sink that parallel requests may share.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Evidence is an in-memory handlers.Evidence keyed by object name; a missing
// name fails as the object store does.
type Evidence map[string][]byte

// Get implements handlers.Evidence.
func (m Evidence) Get(_ context.Context, ref handlers.ContentRef) ([]byte, error) {
	d, ok := m[ref.Name]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", ref.Name, jetstream.ErrObjectNotFound)
	}
	return d, nil
}

// Failure is a provider address from which no answer can be read.
type Failure struct {
	Name    string
	URL     string
	Timeout time.Duration // the client timeout to use with it
}

// TransportFailures starts a server that hangs up, one that never answers,
// and finds a port that refuses connections; all stop when the test ends.
func TransportFailures(t testing.TB) []Failure {
	t.Helper()
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	t.Cleanup(hangup.Close)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets Close finish
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	return []Failure{
		{"connection closed", hangup.URL, 2 * time.Second},
		{"timeout", slow.URL, 100 * time.Millisecond},
		{"connection refused", refused, 2 * time.Second},
	}
}

// FakeEvidence is Evidence whose reads can all be made to fail with Err.
type FakeEvidence struct {
	Objects Evidence
	Err     error
}

// Get implements handlers.Evidence.
func (e FakeEvidence) Get(ctx context.Context, ref handlers.ContentRef) ([]byte, error) {
	if e.Err != nil {
		return nil, e.Err
	}
	return e.Objects.Get(ctx, ref)
}

// Digest is the "SHA-256=" digest of a ContentRef for b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "SHA-256=" + base64.URLEncoding.EncodeToString(s[:])
}

// NewClient applies mod (if set) to cfg and builds a client with
// newClient, failing the test on error; logs is a debug log sink for the
// secret checks, which the caller put in cfg.
func NewClient[C, T any](t testing.TB, cfg C, mod func(*C), newClient func(C) (T, error)) T {
	t.Helper()
	if mod != nil {
		mod(&cfg)
	}
	c, err := newClient(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// DebugLogger logs everything, as JSON, into the returned buffer.
func DebugLogger() (*slog.Logger, *LogBuffer) {
	logs := &LogBuffer{}
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs
}
