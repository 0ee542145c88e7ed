package worker_test

// The acceptance rig's fleet of workers cancelled at random, and the
// Jepsen-style checker of what they published.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disputesync/disputesync/worker"
)

// fleet runs size workers and, every interval, cancels one at random and
// starts a replacement (interval 0: no chaos).
type fleet struct {
	newWorker func(instance string) (*worker.Worker, error)
	t         *testing.T

	mu      sync.Mutex
	cancels []context.CancelFunc
	seq     int
	kills   int
	wg      sync.WaitGroup
	stop    chan struct{}
	once    sync.Once
}

func startFleet(t *testing.T, size int, interval time.Duration, newWorker func(instance string) (*worker.Worker, error)) *fleet {
	f := &fleet{newWorker: newWorker, t: t, cancels: make([]context.CancelFunc, size), stop: make(chan struct{})}
	for i := range size {
		f.launch(i)
	}
	if interval > 0 {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-f.stop:
					return
				case <-tick.C:
				}
				i := rand.IntN(size)
				f.mu.Lock()
				f.cancels[i]()
				f.kills++
				f.mu.Unlock()
				f.launch(i)
			}
		}()
	}
	t.Cleanup(func() { f.shutdown() })
	return f
}

func (f *fleet) launch(slot int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.stop:
		return
	default:
	}
	f.seq++
	w, err := f.newWorker(fmt.Sprintf("w%d", f.seq))
	if err != nil {
		f.t.Errorf("worker.New: %v", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancels[slot] = cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		// A worker cancelled while still starting may answer with the
		// cancellation; any other error is a failure.
		if err := w.Run(ctx); err != nil && ctx.Err() == nil {
			f.t.Errorf("worker.Run: %v", err)
		}
	}()
}

// shutdown stops the chaos and every worker, and returns how many workers
// were cancelled by the chaos.
func (f *fleet) shutdown() int {
	f.once.Do(func() {
		f.mu.Lock()
		close(f.stop)
		for _, c := range f.cancels {
			if c != nil {
				c()
			}
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kills
}

// tally is the checker's figures (RELIABILITY.md section 5).
type tally struct {
	attempted, results, lost, dupResults, unexpectedResults, wrongOutcome int
	succeeded, failed, rejected                                           int
	effects, dupEffects, missingEffects, strayEffects, unexpectedEffects  int
	callsForRejected                                                      int
}

func (t tally) String() string {
	return fmt.Sprintf("attempted %d, results %d (succeeded %d, failed %d, rejected %d); lost %d, duplicate results %d, "+
		"unexpected results %d, wrong outcome %d; effects %d, dup_effects %d, missing effects %d, effects of unsucceeded %d, "+
		"unexpected effects %d; provider calls for rejected %d",
		t.attempted, t.results, t.succeeded, t.failed, t.rejected, t.lost, t.dupResults, t.unexpectedResults, t.wrongOutcome,
		t.effects, t.dupEffects, t.missingEffects, t.strayEffects, t.unexpectedEffects, t.callsForRejected)
}

func (t tally) clean() bool {
	return t.lost == 0 && t.dupResults == 0 && t.unexpectedResults == 0 && t.wrongOutcome == 0 && t.dupEffects == 0 &&
		t.missingEffects == 0 && t.strayEffects == 0 && t.unexpectedEffects == 0 && t.callsForRejected == 0
}

// check applies the set algebra to the non-replayed results, the sandbox's
// effects and the provider calls; it reports each breach (up to a few per
// kind) and returns the figures.
func check(t *testing.T, cmds []expectation, results []worker.Result, p *providerRig) tally {
	t.Helper()
	var tl tally
	tl.attempted = len(cmds)
	want := make(map[string]expectation, len(cmds))
	for _, c := range cmds {
		want[c.id] = c
	}
	reported := map[string]int{}
	report := func(kind, format string, args ...any) {
		if reported[kind]++; reported[kind] <= 5 {
			t.Errorf(kind+": "+format, args...)
		}
	}
	got := map[string][]worker.Result{}
	for _, r := range results {
		if r.Replayed {
			continue
		}
		tl.results++
		if _, ok := want[r.DisputeRequestID]; !ok {
			tl.unexpectedResults++
			report("unexpected result", "%+v", r)
			continue
		}
		got[r.DisputeRequestID] = append(got[r.DisputeRequestID], r)
	}
	effects := map[string]int{}
	for _, e := range p.sb.Effects() {
		tl.effects++
		c, ok := want[e.DisputeRequestID]
		if !ok || c.provider != e.Provider {
			tl.unexpectedEffects++
			report("unexpected effect", "%+v", e)
			continue
		}
		effects[e.DisputeRequestID]++
	}
	for _, c := range cmds {
		rs := got[c.id]
		switch {
		case len(rs) == 0:
			tl.lost++
			report("lost", "%s has no result", c.id)
			continue
		case len(rs) > 1:
			tl.dupResults++
			report("duplicate results", "%s has %d non-replayed results: %+v", c.id, len(rs), rs)
		}
		r := rs[0]
		switch r.Outcome {
		case worker.Succeeded:
			tl.succeeded++
		case worker.Failed:
			tl.failed++
		case worker.Rejected:
			tl.rejected++
		}
		if r.Outcome != c.outcome || !containsString(c.codes, r.Code) {
			tl.wrongOutcome++
			report("wrong outcome", "%s: got %s/%s (%s), want %s/%v", c.id, r.Outcome, r.Code, r.Message, c.outcome, c.codes)
		}
		n := effects[c.id]
		switch {
		case r.Outcome == worker.Succeeded && n == 0:
			tl.missingEffects++
			report("missing effect", "%s succeeded with no effect at the provider", c.id)
		case r.Outcome == worker.Succeeded && n > 1:
			tl.dupEffects += n - 1
			report("duplicate effects", "%s applied %d times", c.id, n)
		case r.Outcome != worker.Succeeded && n > 0:
			tl.strayEffects += n
			report("effect of an unsucceeded command", "%s (%s) applied %d times", c.id, r.Outcome, n)
		}
		if c.outcome == worker.Rejected {
			if calls := p.calls.of(c.id); calls > 0 {
				tl.callsForRejected += calls
				report("provider call for a rejected command", "%s: %d calls", c.id, calls)
			}
		}
	}
	return tl
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// countingHandler counts log records by message, to prove a code path ran.
type countingHandler struct {
	mu    *sync.Mutex
	count map[string]int
}

func newCountingHandler() countingHandler {
	return countingHandler{mu: &sync.Mutex{}, count: map[string]int{}}
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.count[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

func (h countingHandler) of(msgPrefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for m, c := range h.count {
		if strings.HasPrefix(m, msgPrefix) {
			n += c
		}
	}
	return n
}
