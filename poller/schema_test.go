package poller

import (
	"testing"
	"time"

	"github.com/disputesync/disputesync/docs"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/sandbox"
)

// TestSchemasAcceptEveryEvent (issue 8 acceptance 2): every event the
// poller publishes, of every type, passes docs.ValidateMessage. h.events
// validates each event it reads, so every test of this package that reads
// events checks them too; this test makes sure each event type occurs and
// counts the validations.
func TestSchemasAcceptEveryEvent(t *testing.T) {
	h := newHarness(t, 40, topology.Options{})
	open := newDispute(h, 2*time.Hour, func(r *sandbox.Record) {
		r.Disputes.DisputesReplyDeadline = sandbox.FormatTime(time.Now().Add(20 * time.Hour)) // a deadline warning
	})
	toClose := newDispute(h, time.Hour, nil)
	p := h.poller(t, nil, nil)
	cycle(t, p)
	h.sb.UpdateDispute(open, func(r *sandbox.Record) { r.Disputes.DisputesAmount = "31.00" })
	h.sb.UpdateDispute(toClose, func(r *sandbox.Record) { r.Disputes.DisputesStatus = "closed" })
	cycle(t, p)
	h.sb.UpdateDispute(toClose, func(r *sandbox.Record) { r.Disputes.DisputesStatus = "pending" })
	cycle(t, p)

	before := docs.Validated()["event"]
	evs := h.events(t)
	checked := docs.Validated()["event"] - before
	types := map[string]int{}
	for _, ev := range evs {
		types[ev.Type]++
	}
	// Tests of this package do not run in parallel, so the difference is
	// exactly this test's events.
	if checked != len(evs) {
		t.Errorf("validated %d events, read %d", checked, len(evs))
	}
	for _, typ := range []string{TypeOpened, TypeUpdated, TypeClosed, TypeDeadlineApproaching} {
		if types[typ] == 0 {
			t.Errorf("no %s event was produced, so none was validated (types: %v)", typ, types)
		}
	}
	t.Logf("validated %d real events of this test against docs/schemas (by type %v); this process so far: %v",
		checked, types, docs.Validated())
}
