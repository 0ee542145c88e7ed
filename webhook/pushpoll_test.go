package webhook_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/docs"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/poller"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/webhook"
)

// TestPushAndPoll (issue 9, acceptance 2): the sandbox changes its disputes
// and pushes a notification for half of them while the poller also sees all
// of them. Every dispute's last state event matches the sandbox, and no
// dispute state is published twice. DISPUTESYNC_PUSHPOLL_DISPUTES sets the
// size (default 200; the acceptance figure is 1000).
func TestPushAndPoll(t *testing.T) {
	t.Parallel()
	size := 200
	if v, err := strconv.Atoi(os.Getenv("DISPUTESYNC_PUSHPOLL_DISPUTES")); err == nil && v > 0 {
		size = v
	}
	b := newBundle(t, topology.Options{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b.sb = sandbox.New(sandbox.Config{Disputes: size, Seed: 9, Logger: quiet})
	list := httptest.NewServer(b.sb)
	t.Cleanup(list.Close)
	// The poller has its own Detector, as in a separate process; the two
	// meet in the snapshot bucket.
	p, err := poller.New(poller.Config{
		Source: webhook.ProviderDisputeAPI, BaseURL: list.URL, Token: []byte(sandbox.TestKeys.DisputeAPIToken),
		FullRescanInterval: time.Millisecond, FullRescanPagesPerCycle: 10_000,
		RetryBackoff: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond,
		JS: b.js, Names: b.names, Metrics: b.m, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cycle(ctx); err != nil {
		t.Fatalf("first cycle: %v", err)
	}

	// Change every dispute (a second chargeback, a closing, a reopening),
	// pushing half of them, while the poller keeps cycling.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var cycles int
	var cycleErr error
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := p.Cycle(ctx); err != nil {
				cycleErr = err
				return
			}
			cycles++
		}
	}()
	policy := sandbox.NotifyPolicy{MaxAttempts: 5, FirstBackoff: 10 * time.Millisecond}
	pushed := 0
	for i, r := range b.sb.Disputes() {
		id := r.Disputes.DisputesID
		switch {
		case r.Disputes.DisputesStatus == "closed":
			// A closed dispute reopens with a second chargeback.
			b.sb.UpdateDispute(id, func(r *sandbox.Record) {
				n, _ := strconv.Atoi(r.Disputes.DisputesTimes)
				r.Disputes.DisputesTimes = strconv.Itoa(n + 1)
				r.Disputes.DisputesStatus = "open"
			})
		case i%3 == 0:
			b.sb.CloseDispute(id)
		default:
			b.sb.UpdateDispute(id, func(r *sandbox.Record) {
				n, _ := strconv.Atoi(r.Disputes.DisputesTimes)
				r.Disputes.DisputesTimes = strconv.Itoa(n + 1)
				r.Disputes.DisputesReplyDeadline = sandbox.FormatTime(time.Now().Add(10 * 24 * time.Hour))
				r.Disputes.DisputesPeriodTo = r.Disputes.DisputesReplyDeadline
			})
		}
		if i%2 == 0 {
			n, err := b.sb.DisputeAPINotification(id, "")
			if err != nil {
				t.Fatal(err)
			}
			if d := b.sb.SendNotification(ctx, n, b.url, policy); !d.Delivered {
				t.Fatalf("push %s: %+v", id, d)
			}
			pushed++
		}
	}
	close(done)
	wg.Wait()
	if cycleErr != nil {
		t.Fatalf("cycle: %v", cycleErr)
	}
	if _, err := p.Cycle(ctx); err != nil {
		t.Fatalf("last cycle: %v", err)
	}
	t.Logf("%d disputes, %d pushed, %d cycles while pushing", size, pushed, cycles)

	evs := allEvents(t, ctx, b.js, b.names)
	last := map[string]poller.Record{}
	seen := map[string]bool{}
	ids := map[string]bool{}
	notified, reverts := 0, 0
	for _, ev := range evs {
		if ids[ev.ID] {
			t.Errorf("event id %s stored twice", ev.ID)
		}
		ids[ev.ID] = true
		switch ev.Type {
		case poller.TypeNotified:
			notified++
			continue
		case poller.TypeOpened, poller.TypeUpdated, poller.TypeClosed:
		default:
			continue
		}
		d, err := ev.DisputeData()
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[ev.Subject]; ok && reflect.DeepEqual(prev, d.Record) {
			t.Errorf("dispute %s: two consecutive %s events for one state", ev.Subject, ev.Type)
		}
		state, _ := json.Marshal(d.Record)
		key := ev.Subject + "|" + string(state)
		if seen[key] {
			reverts++
		}
		seen[key] = true
		last[ev.Subject] = d.Record
	}
	if notified != pushed {
		t.Errorf("%d dispute.notified events for %d pushes", notified, pushed)
	}
	for _, r := range b.sb.Disputes() {
		raw, _ := json.Marshal(r)
		want, err := poller.ParseRecord(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := last[want.DisputeID]; !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("dispute %s: last event %+v, sandbox %+v", want.DisputeID, got, want)
		}
	}
	// A state published again later (A, B, A, B) would come from a poll
	// page read before a pushed change and observed after it; the detector
	// orders observations (ObserveAt) so it must not happen.
	if reverts > 0 {
		t.Errorf("%d states published twice", reverts)
	}
}

// allEvents reads the events stream with an ordered consumer (fast for
// thousands of events).
func allEvents(t *testing.T, ctx context.Context, js jetstream.JetStream, names topology.Names) []poller.Event {
	t.Helper()
	st, err := js.Stream(ctx, names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int(info.State.Msgs)
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []poller.Event
	for len(out) < want {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			var ev poller.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			// Issue 8: the published schemas must accept every real event.
			if err := docs.ValidateMessage(names.Prefix(), m.Subject(), m.Headers(), m.Data()); err != nil {
				t.Fatalf("event does not match docs/schemas: %v\n%s", err, m.Data())
			}
			out = append(out, ev)
			got++
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
		if got == 0 {
			t.Fatalf("read %d of %d events", len(out), want)
		}
	}
	return out
}
