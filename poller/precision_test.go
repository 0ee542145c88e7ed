package poller

import (
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/sandbox"
)

// TestSubSecondLookup: with creation times finer than the list's
// whole-second bounds, a dispute shown at second S is outside [S, S]; the
// lookup of a dispute that left the period list must still find it, in the
// same cycle, and the dispute must stay known.
func TestSubSecondLookup(t *testing.T) {
	h := newHarnessWith(t, sandbox.Config{Disputes: -1, CreatedPrecision: time.Millisecond}, topology.Options{})
	base := time.Now().Add(-6 * time.Hour).Truncate(time.Second)
	var ids []string
	for i := range 30 {
		// Six disputes in each of five seconds, an hour apart: one lookup
		// window each.
		at := base.Add(time.Duration(i%5) * time.Hour)
		ids = append(ids, h.sb.CreateDispute(sandbox.Record{Disputes: sandbox.DisputeInfo{DisputesDate: sandbox.FormatTime(at)}}).Disputes.DisputesID)
	}
	p := h.poller(t, nil, nil)
	if st := cycle(t, p); st.Events[TypeOpened] != 30 || st.Tracked != 30 {
		t.Fatalf("initial sync: events %v, %d tracked", st.Events, st.Tracked)
	}
	for _, id := range ids[:15] {
		h.sb.CloseDispute(id)
	}
	for _, id := range ids[15:] {
		// Out of the period list, still open: looked up, kept as dormant
		// or live according to its deadline, never dropped.
		h.sb.UpdateDispute(id, func(r *sandbox.Record) {
			r.Disputes.DisputesPeriodTo = sandbox.FormatTime(base.Add(-time.Minute))
		})
	}
	st := cycle(t, p)
	if st.Events[TypeClosed] != 15 || st.Events[TypeUpdated] != 15 {
		t.Errorf("cycle after the changes: events %v, want 15 closed and 15 updated", st.Events)
	}
	if st.Tracked != 15 {
		t.Errorf("%d disputes tracked, want the 15 still open", st.Tracked)
	}
	checkGroundTruth(t, h, h.events(t))
}
