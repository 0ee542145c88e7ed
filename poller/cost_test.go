package poller

import (
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/sandbox"
)

// TestCost is issue 4 acceptance 4 (pages): n disputes over 400 days, of
// which 2% (the newest, inside their appeal period) are open; a steady-state
// cycle, with a little churn, must cost at most 5% of the pages of a full
// scan (asserted at the full size, DISPUTESYNC_POLLER_COST_SIZE=100000; at
// CI size the page count is checked against the cost model of doc.go).
//
// It runs under each reading of "disputes-period" (issue 13 acceptance 2:
// at most 5% under the view, 10% under the category reading); a third of
// the disputes are of the appeal-stage type, listed under
// "disputes-period" under the category reading.
func TestCost(t *testing.T) {
	n := sizeFromEnv(t, "DISPUTESYNC_POLLER_COST_SIZE", 2000)
	for _, tt := range []struct {
		reading string
		limit   float64
	}{{sandbox.PeriodView, 0.05}, {sandbox.PeriodCategory, 0.10}} {
		t.Run(tt.reading, func(t *testing.T) { cost(t, n, tt.reading, tt.limit) })
	}
}

func cost(t *testing.T, n int, reading string, limit float64) {
	h := newHarnessWith(t, sandbox.Config{Disputes: -1, PeriodReading: reading}, topology.Options{})
	now := time.Now()
	lookback := 400 * 24 * time.Hour
	open := n / 50
	for i := range n {
		// Evenly spread, oldest first; the newest 2% stay open.
		created := now.Add(-lookback + time.Hour).Add((lookback - 2*time.Hour) / time.Duration(n) * time.Duration(i))
		h.sb.CreateDispute(sandbox.Record{Disputes: sandbox.DisputeInfo{
			DisputesDate:   sandbox.FormatTime(created),
			DisputesStatus: map[bool]string{true: "open", false: "closed"}[i >= n-open],
			DisputesType:   map[bool]string{true: "second_chargeback", false: "chargeback"}[i%3 == 0],
		}})
	}
	if got := len(h.sb.Disputes()); got != n {
		t.Fatalf("sandbox holds %d", got)
	}
	p := h.poller(t, nil, func(c *Config) { c.Lookback = lookback })

	// Initial sync: the first cycle runs the full rescan.
	st := cycle(t, p)
	if !st.FullRescanDone {
		t.Fatalf("initial sync not done: %+v", st)
	}
	full := 0
	for _, s := range st.Scans {
		if s.Kind == "full" {
			full += s.Pages
		}
	}
	if got := p.cp.Reading == readingCategory; got != (reading == sandbox.PeriodCategory) {
		t.Errorf("reading detected %q under %s", p.cp.Reading, reading)
	}
	if full < n/PageSize {
		t.Fatalf("full scan %d pages for %d disputes", full, n)
	}
	if st.Tracked < open*9/10 || st.Tracked > open {
		t.Errorf("%d disputes tracked in memory, %d open", st.Tracked, open)
	}

	// Steady state with churn: each cycle one new dispute, one change, one
	// close among the open ones.
	ids := []string{}
	for _, r := range h.sb.Disputes()[:open] {
		ids = append(ids, r.Disputes.DisputesID)
	}
	worst := 0
	for i := range 5 {
		newDispute(h, 0, nil)
		h.sb.UpdateDispute(ids[2*i], func(r *sandbox.Record) { r.Disputes.DisputesAmount = "1.00" })
		h.sb.CloseDispute(ids[2*i+1])
		st := cycle(t, p)
		if st.Events[TypeOpened] != 1 || st.Events[TypeUpdated] != 1 || st.Events[TypeClosed] != 1 {
			t.Errorf("steady cycle %d events %v", i, st.Events)
		}
		worst = max(worst, st.Pages)
	}
	// The full rescan at its default interval, amortized over 1-minute cycles.
	perRescan := float64(DefaultFullRescanInterval / time.Minute)
	amortized := float64(worst) + float64(full)/perRescan
	ratio := amortized / float64(full)
	t.Logf("cost under the %s reading over %d disputes (%d open): full scan %d pages; steady cycle at most %d pages + %.2f amortized full rescan = %.1f%% of a full scan",
		reading, n, open, full, worst, float64(full)/perRescan, 100*ratio)
	// The model under the view reading: one page for new disputes, the
	// period list's own pages, one lookup page for the dispute that closed
	// since the last cycle. Under the category reading: one page per list
	// for new disputes, and the live disputes (created close together)
	// looked up in one window per list: their own pages, plus one.
	model := 1 + (open+PageSize-1)/PageSize + 1
	if reading == sandbox.PeriodCategory {
		model = 2 + (open+PageSize-1)/PageSize + 2
	}
	if worst > model {
		t.Errorf("steady cycle %d pages, model %d", worst, model)
	}
	// At the size the fixed pages are small beside a full scan; at
	// CI sizes they are not, so the limit is asserted from 100 000 on.
	if n >= 100_000 && ratio > limit {
		t.Errorf("steady state costs %.1f%% of a full scan, want at most %.0f%%", 100*ratio, 100*limit)
	}
	checkGroundTruth(t, h, h.events(t))
}
