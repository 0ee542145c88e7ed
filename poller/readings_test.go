package poller

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/sandbox"
)

// TestReadings is issue 13 acceptance 1: against a sandbox with sub-second
// creation times, under each reading of the list type "disputes-period",
// n disputes get n/5 changes while the poller pages them and the poller
// process is killed (kill -9) during the initial sync; a new poller then
// finishes the sync, and after two completed cycles the last event of
// every dispute equals the sandbox's record and no state was published
// twice. The changes are those a cycle must see without a full rescan: new
// disputes (some of the appeal-stage type), and changes and closes of the
// live ones. DISPUTESYNC_POLLER_A1_SIZE=10000 for the size (default 400).
func TestReadings(t *testing.T) {
	n := sizeFromEnv(t, "DISPUTESYNC_POLLER_A1_SIZE", 400)
	for _, reading := range []string{sandbox.PeriodView, sandbox.PeriodCategory} {
		t.Run(reading, func(t *testing.T) {
			h := newHarnessWith(t, sandbox.Config{Disputes: n, CreatedPrecision: time.Millisecond, PeriodReading: reading}, topology.Options{})
			mut := newLiveMutator(h, n, n/5, 13)
			rng := rand.New(rand.NewPCG(13, 13))
			killChildAt(t, h, 1+rng.Int64N(firstStopWindow), mut.onList)
			h.setHook(mut.onList)
			p := h.poller(t, nil, nil)
			cycles := 0
			for !mut.finished() {
				cycle(t, p)
				if cycles++; cycles > 500 {
					t.Fatal("changes never finished")
				}
			}
			cycle(t, p)
			st := cycle(t, p)
			if want := reading == sandbox.PeriodCategory; (p.cp.Reading == readingCategory) != want {
				t.Errorf("reading detected %q, sandbox reads %s", p.cp.Reading, reading)
			}
			events := h.events(t)
			checkGroundTruth(t, h, events)
			byType := map[string]int{}
			for _, ev := range events {
				byType[ev.Type]++
			}
			t.Logf("%s: %d disputes, %d changes, %d cycles after the kill; last cycle %d pages; %d list calls in all; events %v",
				reading, n, n/5, cycles+2, st.Pages, h.lists.Load(), byType)
		})
	}
}

// newLiveMutator is a mutator for a population of n whose k changes a cycle must see without a
// full rescan: a quarter creates (every third of the appeal-stage type
// second_chargeback), a half updates of live disputes (open, inside their
// appeal period: status, deadline, amount, comment history), a quarter
// closes of other live ones. A dispute is closed at most once and never
// changed after its close.
func newLiveMutator(h *harness, n, k int, seed uint64) *mutator {
	m := &mutator{h: h, rng: rand.New(rand.NewPCG(seed, 1)), done: make(chan struct{})}
	now := time.Now()
	var live []string
	for _, r := range h.sb.Disputes() {
		from, err1 := sandbox.ParseTime(r.Disputes.DisputesPeriodFrom)
		to, err2 := sandbox.ParseTime(r.Disputes.DisputesPeriodTo)
		if r.Disputes.DisputesStatus != "closed" && err1 == nil && err2 == nil && !now.Before(from) && now.Add(time.Hour).Before(to) {
			live = append(live, r.Disputes.DisputesID)
		}
	}
	m.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	closes := min(k/4, len(live)/2)
	toClose, toUpdate := live[:closes], live[closes:]
	for i := range k / 4 {
		skew := time.Duration(m.rng.IntN(300)) * time.Second
		m.pending = append(m.pending, func() {
			newDispute(h, skew, func(r *sandbox.Record) {
				r.Disputes.DisputesAmount = fmt.Sprintf("%d.00", 10+i)
				if i%3 == 0 {
					r.Disputes.DisputesType = "second_chargeback"
				}
			})
		})
	}
	for _, id := range toClose {
		m.pending = append(m.pending, func() { h.sb.CloseDispute(id) })
	}
	for i := range k - k/4 - closes {
		id := toUpdate[m.rng.IntN(len(toUpdate))]
		m.pending = append(m.pending, func() {
			h.sb.UpdateDispute(id, func(r *sandbox.Record) {
				switch i % 4 {
				case 0:
					r.Status = "under_review"
				case 1:
					r.Disputes.DisputesReplyDeadline = sandbox.FormatTime(time.Now().Add(time.Duration(1+i%20) * 24 * time.Hour))
				case 2:
					r.Disputes.DisputesAmount = fmt.Sprintf("%d.%02d", 1+i, i%100)
				case 3:
					r.Disputes.DisputesCommentsHistory += fmt.Sprintf("\nmessage %d", i)
				}
			})
		})
	}
	m.rng.Shuffle(len(m.pending), func(i, j int) { m.pending[i], m.pending[j] = m.pending[j], m.pending[i] })
	// Spread over about four full scans: the initial sync and many cycles
	// after it, so most changes are seen by cycles, not by the full scan.
	m.perCall = max(1, len(m.pending)/max(100, n/25))
	return m
}
