package poller

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
)

func newDetector(t *testing.T) (*Detector, *harness) {
	t.Helper()
	h := newHarness(t, -1, topology.Options{})
	d, err := NewDetector(h.env.JS, h.env.Names, metrics.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d, h
}

func mustParse(t *testing.T, raw string) Record {
	t.Helper()
	r, err := ParseRecord(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDetectorConcurrent: the webhook and the poller (here 8 goroutines)
// observing the same new state at once publish it once.
func TestDetectorConcurrent(t *testing.T) {
	d, h := newDetector(t)
	rec := mustParse(t, goodRecord)
	var wg sync.WaitGroup
	var mu sync.Mutex
	returned := 0
	for range 8 {
		wg.Go(func() {
			evs, err := d.Observe(testenv.Context(t), "disputeapi", ListDispute, rec, json.RawMessage(goodRecord), nil)
			if err != nil {
				t.Errorf("Observe: %v", err)
			}
			mu.Lock()
			returned += len(evs)
			mu.Unlock()
		})
	}
	wg.Wait()
	if got := h.events(t); len(got) != 1 || got[0].Type != TypeOpened || returned != 1 {
		t.Errorf("%d events stored, %d returned; want 1 and 1", len(got), returned)
	}
}

// TestDetectorABAB: a state that comes back is a new change, not a replay
// (the version in the event id keeps A->B->A->B apart within the duplicate
// window).
func TestDetectorABAB(t *testing.T) {
	d, h := newDetector(t)
	rawB := strings.Replace(goodRecord, `"disputes_amount":"25.00"`, `"disputes_amount":"30.00"`, 1)
	a, b := mustParse(t, goodRecord), mustParse(t, rawB)
	var types []string
	for i, r := range []Record{a, a, b, b, a, b} {
		raw := goodRecord
		if r == b {
			raw = rawB
		}
		evs, err := d.Observe(testenv.Context(t), "disputeapi", ListDispute, r, json.RawMessage(raw), nil)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for _, ev := range evs {
			types = append(types, ev.Type)
		}
	}
	// The contract example's dispute is "open": opened, then three updates.
	want := []string{TypeOpened, TypeUpdated, TypeUpdated, TypeUpdated}
	if strings.Join(types, ",") != strings.Join(want, ",") || len(h.events(t)) != 4 {
		t.Errorf("events %v (stream %d), want %v", types, len(h.events(t)), want)
	}
}

// TestPublishNotified: one event per notification id, however often the
// provider retries; the CloudEvents envelope and data of docs/contract.md section 6.
func TestPublishNotified(t *testing.T) {
	d, h := newDetector(t)
	body := json.RawMessage(`{"notify_id":"N1","event_code":"CHARGEBACK","data":{}}`)
	for i := range 3 {
		ev, dup, err := d.PublishNotifiedDup(testenv.Context(t), "disputeapi", "CHARGEBACK", "D100", body, "N1")
		if err != nil || dup != (i > 0) || ev.Type != TypeNotified || ev.Subject != "D100" {
			t.Fatalf("attempt %d: %+v dup=%v err=%v", i, ev, dup, err)
		}
	}
	if _, err := d.PublishNotified(testenv.Context(t), "disputeapi", "CHARGEBACK", "D100", body, "N2"); err != nil {
		t.Fatal(err)
	}
	evs := h.events(t)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	var data NotifiedData
	if err := json.Unmarshal(evs[0].Data, &data); err != nil || data.NotificationType != "CHARGEBACK" ||
		data.DisputeID != "D100" || string(data.Notification) != string(body) || evs[0].SpecVersion != "1.0" {
		t.Errorf("event %+v data %+v (%v)", evs[0], data, err)
	}
}
