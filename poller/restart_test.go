package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
)

func readCheckpoint(t *testing.T, h *harness) checkpoint {
	t.Helper()
	kv, err := h.env.JS.KeyValue(testenv.Context(t), h.env.Names.PollerBucket())
	if err != nil {
		t.Fatal(err)
	}
	var cp checkpoint
	e, err := kv.Get(testenv.Context(t), "disputeapi.checkpoint")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cp
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		t.Fatal(err)
	}
	return cp
}

// settle runs cycles, each with a whole full rescan, until a cycle that
// started after the mutator was done publishes nothing. A full rescan
// already under way when the last change was made may have passed the
// changed dispute, so only the rescans of later cycles count.
func settle(t *testing.T, h *harness, mut *mutator) {
	t.Helper()
	h.setHook(mut.onList)
	p := h.poller(t, nil, func(c *Config) { c.FullRescanInterval = time.Nanosecond })
	finished := false
	for i := 0; ; i++ {
		st := cycle(t, p)
		if finished && len(st.Events) == 0 && st.FullRescanDone {
			return
		}
		finished = mut.finished()
		if i > 200 {
			t.Fatal("never settled")
		}
	}
}

// TestRestartResumes is issue 4 acceptance 2 (graceful stops): the poller is
// stopped at random list calls during the initial sync while the sandbox
// changes; every restarted poller resumes the full rescan from its stored
// cursor (not from the top), and the ground truth holds at the end.
func TestRestartResumes(t *testing.T) {
	n := sizeFromEnv(t, "DISPUTESYNC_POLLER_RESTART_SIZE", 1000)
	restarts := sizeFromEnv(t, "DISPUTESYNC_POLLER_RESTARTS", 8)
	h := newHarness(t, n, topology.Options{})
	mut := newMutator(h, n, 9)
	rng := rand.New(rand.NewPCG(5, 5))
	resumed := 0
	for i := range restarts {
		cp := readCheckpoint(t, h)
		ctx, cancel := context.WithCancel(testenv.Context(t))
		// A full-rescan chunk holds up to 40 pages and more disputes mean more
		// of them, so the stop window grows with the population.
		stopAt := h.lists.Load() + 1 + rng.Int64N(stopWindow(n, i))
		var mu sync.Mutex
		var calls []listCall
		h.setHook(func(n int64, c listCall) {
			mut.onList(n, c)
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
			if n >= stopAt {
				cancel() // the poller's context ends while this call is served
			}
		})
		p := h.poller(t, nil, func(c *Config) { c.FullRescanPagesPerCycle = 3 })
		var err error
		for err == nil {
			_, err = p.Cycle(ctx)
		}
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run %d: stopped with %v", i, err)
		}
		mu.Lock()
		if resumedAtCursor(t, fmt.Sprintf("run %d", i), cp, calls) {
			resumed++
		}
		mu.Unlock()
	}
	if resumed == 0 {
		t.Errorf("no run resumed a full rescan from its cursor")
	}
	settle(t, h, mut)
	checkGroundTruth(t, h, h.events(t))
	t.Logf("%d stops (%d resumed a full rescan at its cursor); %d list calls in all", restarts, resumed, h.lists.Load())
}

// stopWindow is how many list calls run i may make before it is stopped.
// The first run is stopped within firstStopWindow calls, inside the initial
// sync at every population size (at 1 000 disputes the chunks double until
// one holds the whole lookback, and the sync is done in about 35 calls): a
// first run that finished the sync would leave no rescan for the others to
// resume, and the test would depend on luck.
func stopWindow(disputes, run int) int64 {
	if run == 0 {
		return firstStopWindow
	}
	return 40 + int64(disputes)/100
}

const firstStopWindow = 20

// resumedAtCursor checks the list calls of one run that started with the
// checkpoint cp: with a full rescan in progress, no call went back to the
// rescan's top before the rescan went on at its cursor; it reports whether
// it did go on at the cursor.
//
// A call ending at the top is not by itself a restarted rescan: the
// new-disputes scan ends at "now" truncated to the second, which is the top
// whenever a run starts within the second the rescan began. A restarted
// rescan's first chunk is [top - chunk, top] for the stored chunk or one of
// its halvings, so those are the windows looked for; and only before the
// cursor's chunk, since a later rescan may start in the same second again.
func resumedAtCursor(t *testing.T, run string, cp checkpoint, calls []listCall) bool {
	t.Helper()
	if cp.FullCursor.IsZero() || cp.FullCursor.Equal(cp.FullTo) {
		return false
	}
	top, cursor := formatProviderTime(cp.FullTo), formatProviderTime(cp.FullCursor)
	topChunks := map[string]bool{}
	chunk := cp.Chunk
	if chunk <= 0 {
		chunk = startChunk // saved before the rescan's first chunk
	}
	for ; ; chunk = max(minChunk, chunk/2) {
		topChunks[formatProviderTime(laterOf(cp.FullTo.Add(-chunk), cp.FullFrom))] = true
		if chunk == minChunk {
			break
		}
	}
	for _, c := range calls {
		if c.Type == ListDispute && c.To == top && topChunks[c.From] {
			t.Errorf("%s restarted the full rescan at its top [%s, %s] (cursor %s)", run, c.From, top, cursor)
			return false
		}
		if c.Type == ListDispute && c.To == cursor && c.Page == "1" {
			return true
		}
	}
	return false
}
