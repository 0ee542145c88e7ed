package poller

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/topology"
)

// syncRSS runs one poller process through the initial sync of the harness's
// population and returns its peak RSS in KiB.
func syncRSS(t *testing.T, h *harness) int64 {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1", childEnv+"_NATS="+h.env.NATSURL,
		childEnv+"_PREFIX="+h.env.Prefix, childEnv+"_URL="+h.ts.URL, childEnv+"_FULLPAGES=100000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(10 * time.Minute)
	for readCheckpoint(t, h).FullDoneAt.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("initial sync not done; stderr:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond) // polling an external process's progress
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("poller process: %v; stderr:\n%s", err, stderr.String())
	}
	var kib int64
	for _, l := range strings.Split(stderr.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "child-peak-rss "); ok {
			if _, err := fmt.Sscanf(rest, "%d kB", &kib); err != nil {
				t.Fatalf("peak RSS line %q: %v", l, err)
			}
		}
	}
	if kib == 0 {
		t.Fatalf("no peak RSS reported; stderr:\n%s", stderr.String())
	}
	return kib
}

// TestMemory is issue 4 acceptance 4 (memory): the peak RSS of a poller
// process syncing a population 10 times (full size: 20 times) larger stays
// within 1.5x. Sizes: DISPUTESYNC_POLLER_MEM_SMALL / _LARGE (issue: 10000 /
// 200000).
func TestMemory(t *testing.T) {
	small := sizeFromEnv(t, "DISPUTESYNC_POLLER_MEM_SMALL", 300)
	large := sizeFromEnv(t, "DISPUTESYNC_POLLER_MEM_LARGE", 3000)
	var rss [2]int64
	for i, n := range []int{small, large} {
		h := newHarness(t, n, topology.Options{})
		start := time.Now()
		rss[i] = syncRSS(t, h)
		if got, want := len(h.events(t)), n; got < want {
			t.Fatalf("%d events for %d disputes", got, want)
		}
		t.Logf("%d disputes: initial sync in %v, peak RSS %d KiB", n, time.Since(start).Round(time.Millisecond), rss[i])
	}
	if ratio := float64(rss[1]) / float64(rss[0]); ratio > 1.5 {
		t.Errorf("peak RSS %d KiB for %d disputes vs %d KiB for %d: %.2fx, want at most 1.5x", rss[1], large, rss[0], small, ratio)
	}
}
