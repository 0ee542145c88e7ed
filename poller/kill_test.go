package poller

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/sandbox"
)

// childEnv makes the test binary run one poller process instead of tests.
const childEnv = "DISPUTESYNC_POLLER_CHILD"

// childMain runs Poller.Run against the NATS, prefix and sandbox the parent
// test names, until it is killed.
func childMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	nc, err := nats.Connect(os.Getenv(childEnv + "_NATS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	budget := 3
	if b := os.Getenv(childEnv + "_FULLPAGES"); b != "" {
		fmt.Sscan(b, &budget)
	}
	p, err := New(Config{
		Source: "disputeapi", BaseURL: os.Getenv(childEnv + "_URL"), Token: []byte(sandbox.TestKeys.DisputeAPIToken),
		Interval: 20 * time.Millisecond, FullRescanInterval: time.Hour, LeaseTTL: 400 * time.Millisecond,
		RetryBackoff: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, FullRescanPagesPerCycle: budget,
		Instance: fmt.Sprintf("child-%d", os.Getpid()),
		JS:       js, Names: topology.MustNew(os.Getenv(childEnv + "_PREFIX")), Metrics: metrics.New(),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	err = p.Run(ctx)
	// Peak RSS as the kernel counts it for this process (TestMemory). Not
	// the wait4 rusage: after a vfork-style exec it also holds the parent's
	// peak, i.e. the sandbox's population.
	if st, rerr := os.ReadFile("/proc/self/status"); rerr == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				fmt.Fprintln(os.Stderr, "child-peak-rss", strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:")))
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// TestRestartKill is issue 4 acceptance 2 with kill -9: poller processes
// are killed at random list calls while the sandbox changes; each new
// process resumes the full rescan from the stored cursor, and the ground
// truth holds at the end. DISPUTESYNC_POLLER_KILLS=20 for the count.
func TestRestartKill(t *testing.T) {
	n := sizeFromEnv(t, "DISPUTESYNC_POLLER_RESTART_SIZE", 1000)
	kills := sizeFromEnv(t, "DISPUTESYNC_POLLER_KILLS", 4)
	h := newHarness(t, n, topology.Options{})
	mut := newMutator(h, n, 11)
	rng := rand.New(rand.NewPCG(3, 3))
	resumed := 0
	for i := range kills {
		cp := readCheckpoint(t, h)
		// A full-rescan chunk holds up to 40 pages and more disputes mean more
		// of them, so the stop window grows with the population.
		stopAt := h.lists.Load() + 1 + rng.Int64N(stopWindow(n, i))
		var mu sync.Mutex
		var calls []listCall
		killChildAt(t, h, stopAt, func(n int64, c listCall) {
			mut.onList(n, c)
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
		})
		h.setHook(mut.onList)
		mu.Lock()
		if resumedAtCursor(t, fmt.Sprintf("process %d", i), cp, calls) {
			resumed++
		}
		mu.Unlock()
	}
	if resumed == 0 {
		t.Errorf("no process resumed a full rescan from its cursor")
	}
	settle(t, h, mut)
	checkGroundTruth(t, h, h.events(t))
	t.Logf("%d kill -9 (%d resumed a full rescan at its cursor); %d list calls in all", kills, resumed, h.lists.Load())
}

// killChildAt runs a poller process (childMain) against the harness, with
// onList as the list hook, and kill -9s it while its list call number
// stopAt is served; it returns once the process is gone.
func killChildAt(t *testing.T, h *harness, stopAt int64, onList func(int64, listCall)) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var proc atomic.Pointer[os.Process]
	var once sync.Once
	killed := make(chan struct{})
	h.setHook(func(n int64, c listCall) {
		onList(n, c)
		if pr := proc.Load(); pr != nil && n >= stopAt {
			once.Do(func() {
				_ = pr.Signal(syscall.SIGKILL)
				close(killed)
			})
		}
	})
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1", childEnv+"_NATS="+h.env.NATSURL,
		childEnv+"_PREFIX="+h.env.Prefix, childEnv+"_URL="+h.ts.URL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc.Store(cmd.Process)
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatalf("child made no list call %d; stderr:\n%s", stopAt, stderr.String())
	}
	_ = cmd.Wait()
}
