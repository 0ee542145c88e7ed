package embedded_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/internal/embedded"
)

// TestStreamStoreFailureCause reproduces nats-server's "error creating
// store for stream" (10049) answer for a fresh stream, here by a file where
// the stream's store directory goes, and checks that Problems receives the
// cause the API answer leaves out.
func TestStreamStoreFailureCause(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var lines []string
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: dir, Problems: func(line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	const name = "BROKEN"
	streams := filepath.Join(dir, "jetstream", "$G", "streams")
	if err := os.MkdirAll(streams, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(streams, name), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"broken.>"}, Storage: jetstream.FileStorage})
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10049 || !strings.Contains(apiErr.Description, "error creating store for stream") {
		t.Fatalf("create stream over a file: %v, want 10049 error creating store for stream", err)
	}
	// The server logs before it answers, so the line is there now.
	mu.Lock()
	defer mu.Unlock()
	want := "Stream create failed for '$G > " + name + "': storage directory is not a directory"
	for _, line := range lines {
		if strings.Contains(line, want) {
			return
		}
	}
	t.Fatalf("server problems %q do not say %q", lines, want)
}
