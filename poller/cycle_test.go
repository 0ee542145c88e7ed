package poller

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/sandbox"
)

// newDispute creates a dispute in the sandbox created ago before now.
func newDispute(h *harness, ago time.Duration, f func(*sandbox.Record)) string {
	r := sandbox.Record{Disputes: sandbox.DisputeInfo{DisputesDate: sandbox.FormatTime(time.Now().Add(-ago))}}
	if f != nil {
		f(&r)
	}
	return h.sb.CreateDispute(r).Disputes.DisputesID
}

type wantEvent struct {
	typ, subject string
	changes      []string
	threshold    string
}

func checkEvents(t *testing.T, h *harness, got []Event, want []wantEvent) {
	t.Helper()
	key := func(w wantEvent) string {
		b, _ := json.Marshal([]any{w.typ, w.subject, w.changes, w.threshold})
		return string(b)
	}
	var g, w []string
	for _, ev := range got {
		d, err := ev.DisputeData()
		if err != nil {
			t.Fatal(err)
		}
		g = append(g, key(wantEvent{ev.Type, ev.Subject, d.Changes, d.Threshold}))
		// docs/contract.md section 2 envelope and data.
		if ev.SpecVersion != "1.0" || ev.DataContentType != "application/json" || ev.Source != "disputeapi" ||
			ev.ID == "" || ev.Time.IsZero() || d.DisputeID != ev.Subject || d.ListType == "" {
			t.Errorf("event envelope %+v / data %+v", ev, d.Record)
		}
		sr, ok := h.sb.Dispute(ev.Subject)
		if !ok {
			t.Fatalf("event for unknown dispute %s", ev.Subject)
		}
		if rec, err := ParseRecord(d.Raw); err != nil || rec != d.Record {
			t.Errorf("event %s: raw %s does not parse to its data (%v)", ev.Type, d.Raw, err)
		}
		_ = sr
	}
	for _, x := range want {
		w = append(w, key(x))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("events:\n got  %v\n want %v", g, w)
	}
}

// TestCycleEvents: opened once, updated with the exact changes, closed,
// reopened, a deadline warning once, an update for a changed comment or
// comment history (changes ["raw"]), nothing for unchanged records, and
// nothing after a restart past the duplicate window.
func TestCycleEvents(t *testing.T) {
	// A one-second duplicate window: the restart below is past it, so only
	// the snapshot can prevent a second event.
	h := newHarness(t, -1, topology.Options{EventsDuplicates: time.Second})
	d1 := newDispute(h, 3*time.Hour, nil)
	d2 := newDispute(h, 2*time.Hour, nil)
	d3 := newDispute(h, time.Hour, func(r *sandbox.Record) { r.Disputes.DisputesStatus = "closed" })
	d4 := newDispute(h, 30*time.Minute, func(r *sandbox.Record) {
		r.Disputes.DisputesReplyDeadline = sandbox.FormatTime(time.Now().Add(20 * time.Hour))
	})
	m := metrics.New()
	p := h.poller(t, m, nil)
	seen := 0
	step := func(name string, p *Poller, want []wantEvent) {
		t.Helper()
		st := cycle(t, p)
		all := h.events(t)
		n := 0
		for _, c := range st.Events {
			n += c
		}
		if n != len(all)-seen {
			t.Errorf("%s: cycle reports %d events, the stream got %d", name, n, len(all)-seen)
		}
		checkEvents(t, h, all[seen:], want)
		seen = len(all)
	}

	step("first sight", p, []wantEvent{
		{typ: TypeOpened, subject: d1}, {typ: TypeOpened, subject: d2}, {typ: TypeClosed, subject: d3},
		{typ: TypeOpened, subject: d4}, {typ: TypeDeadlineApproaching, subject: d4, threshold: "24h"},
	})
	step("unchanged", p, nil)

	// Gauges from the index of open disputes: d1 and d2 are pending with
	// about 10 days left, d4 with 20 hours; d3 is closed.
	gauge := func(name, label, value string) float64 { return counterSum(t, m, name, label, value) }
	for bucket, want := range map[string]float64{"24h": 1, "72h": 0, "7d": 0, "later": 2, "overdue": 0} {
		if got := gauge("disputesync_disputes_open", "deadline", bucket); got != want {
			t.Errorf("disputes_open{deadline=%q} = %v, want %v", bucket, got, want)
		}
	}
	d4rec, _ := h.sb.Dispute(d4)
	d4dl, _ := truth(t, d4rec).Deadline()
	if got := gauge("disputesync_dispute_next_reply_deadline_timestamp_seconds", "", ""); got != float64(d4dl.Unix()) {
		t.Errorf("next reply deadline %v, want %v", got, d4dl.Unix())
	}
	if got := gauge("disputesync_poll_last_success_timestamp_seconds", "", ""); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success %v", got)
	}
	if got := gauge("disputesync_dispute_events_total", "type", TypeOpened); got != 3 {
		t.Errorf("dispute_events_total{type=opened} = %v, want 3", got)
	}

	h.sb.UpdateDispute(d1, func(r *sandbox.Record) {
		r.Disputes.DisputesAmount = "30.00"
		r.Disputes.DisputesReplyDeadline = sandbox.FormatTime(time.Now().Add(48 * time.Hour))
	})
	h.sb.UpdateDispute(d2, func(r *sandbox.Record) {
		r.Disputes.DisputesComment = "only a comment"
		r.Disputes.DisputesCommentsHistory = "2026-04-02T16:28:09+08:00 only a comment"
	})
	step("update", p, []wantEvent{
		{typ: TypeUpdated, subject: d1, changes: []string{"amount", "replyDeadline"}},
		// the new deadline is 48h away: inside 72h, a warning for the new deadline
		{typ: TypeDeadlineApproaching, subject: d1, threshold: "72h"},
		// a comment is state too: raw and the snapshot must show it
		{typ: TypeUpdated, subject: d2, changes: []string{"raw"}},
	})
	h.sb.UpdateDispute(d2, func(r *sandbox.Record) {
		r.Disputes.DisputesCommentsHistory += "\n2026-04-03T10:00:00+08:00 a second message"
	})
	step("comment history", p, []wantEvent{{typ: TypeUpdated, subject: d2, changes: []string{"raw"}}})

	h.sb.CloseDispute(d2)
	step("close", p, []wantEvent{{typ: TypeClosed, subject: d2, changes: []string{"status", "closeStatus"}}})

	// Restart: a new poller (fresh memory, same buckets) after the duplicate
	// window has passed; the stored snapshots suppress every event.
	time.Sleep(1100 * time.Millisecond) // outlive the stream's 1s duplicate window
	p2 := h.poller(t, nil, func(c *Config) { c.FullRescanInterval = time.Nanosecond })
	step("restart", p2, nil)

	// A closed dispute reopens (second chargeback); only the full rescan
	// revisits closed disputes, and p2 runs one every cycle.
	h.sb.UpdateDispute(d3, func(r *sandbox.Record) {
		r.Disputes.DisputesStatus = "open"
		r.Disputes.DisputesTimes = "2"
	})
	step("reopen", p2, []wantEvent{{typ: TypeOpened, subject: d3, changes: []string{"status", "closeStatus", "disputeTimes"}}})
	step("settled", p2, nil)

	// The snapshot is readable by others under <source>.<id>.
	kv, err := h.env.JS.KeyValue(testenv.Context(t), h.env.Names.DisputesBucket())
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(testenv.Context(t), "disputeapi."+d1)
	if err != nil {
		t.Fatal(err)
	}
	var s snapshot
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		t.Fatal(err)
	}
	sr, _ := h.sb.Dispute(d1)
	if s.Record != truth(t, sr) || s.Fingerprint != fingerprint(s.Record, s.Raw) || s.Version != 2 {
		t.Errorf("snapshot %+v", s)
	}
}
