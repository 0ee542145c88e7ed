package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/worker"
)

func TestSucceededThenReplayedThenInconsistent(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, nil)
	b.command(t, "req-1", "D1", `{}`)
	r := b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Succeeded || r.Replayed || r.Attempts != 1 || r.Code != "SUCCESS" || r.RequestedBy != "test" || r.DisputeID != "D1" {
		t.Fatalf("first result = %+v", r)
	}
	// The same command again (a different publish): replayed, not applied.
	b.command(t, "req-1", "D1", `{}`)
	r = b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Succeeded || !r.Replayed {
		t.Fatalf("republished result = %+v, want a replayed success", r)
	}
	// Same id, other dispute: rejected, no provider call.
	b.command(t, "req-1", "D2", `{}`)
	r = b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Rejected || r.Code != worker.CodeRepeatReqInconsistent || r.Replayed {
		t.Fatalf("inconsistent result = %+v", r)
	}
	if got := b.fake.callsOf("req-1"); got != 1 {
		t.Fatalf("provider calls for req-1 = %d, want 1", got)
	}
	select {
	case m := <-b.dlq:
		if m.Header.Get(worker.HeaderDLQReason) != worker.ReasonInconsistent {
			t.Fatalf("dead letter reason = %q", m.Header.Get(worker.HeaderDLQReason))
		}
	case <-time.After(60 * time.Second): // a hang guard for a loaded machine
		t.Fatal("no dead letter for the inconsistent command")
	}
	if v := testutil.ToFloat64(b.metrics.Idempotency.WithLabelValues("inconsistent")); v != 1 {
		t.Fatalf("idempotency inconsistent = %v", v)
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, nil)
	b.fake.behave = func(_ *handlers.Call, n int) error {
		if n <= 2 {
			return fmt.Errorf("UNKNOWN_EXCEPTION %d", n)
		}
		return nil
	}
	b.command(t, "req-r", "D1", `{}`)
	r := b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Succeeded || r.Attempts != 3 {
		t.Fatalf("result = %+v, want succeeded after 3 attempts", r)
	}
}

func TestApplyThenFailIsAppliedOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, nil)
	b.fake.behave = func(call *handlers.Call, n int) error {
		if n == 1 {
			return errApplyThenFail
		}
		if !call.Recover {
			return fmt.Errorf("retry without Recover")
		}
		return nil
	}
	b.command(t, "req-a", "D1", `{}`)
	r := b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Succeeded || r.Attempts != 2 {
		t.Fatalf("result = %+v", r)
	}
	if e := b.fake.effectsOf("req-a"); e != 1 {
		t.Fatalf("effects = %d, want 1", e)
	}
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, nil)
	b.fake.behave = func(*handlers.Call, int) error {
		return handlers.Permanent(&handlers.ProviderError{Code: "TIME_EXCEEDS_LIMIT", Message: "overdue"})
	}
	b.command(t, "req-p", "D1", `{}`)
	r := b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Failed || r.Code != "TIME_EXCEEDS_LIMIT" || r.Attempts != 1 {
		t.Fatalf("result = %+v", r)
	}
	if c := b.fake.callsOf("req-p"); c != 1 {
		t.Fatalf("calls = %d, want 1", c)
	}
}

func TestRetriesExhaustedGoToDLQ(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, nil)
	b.fake.behave = func(*handlers.Call, int) error {
		return &handlers.ProviderError{Code: "UNKNOWN_EXCEPTION", Message: "try later"}
	}
	b.command(t, "req-x", "D1", `{}`)
	r := b.awaitResults(t, 1, 30*time.Second)[0]
	if r.Outcome != worker.Failed || r.Code != "UNKNOWN_EXCEPTION" || r.Attempts != 5 {
		t.Fatalf("result = %+v, want failed UNKNOWN_EXCEPTION after 5 attempts", r)
	}
	select {
	case m := <-b.dlq:
		if m.Header.Get(worker.HeaderDLQReason) != worker.ReasonRetriesExhausted || !strings.Contains(string(m.Data), "req-x") {
			t.Fatalf("dead letter = %v %s", m.Header, m.Data)
		}
	case <-time.After(60 * time.Second): // a hang guard for a loaded machine
		t.Fatal("no dead letter")
	}
	if c := b.fake.callsOf("req-x"); c != 5 {
		t.Fatalf("calls = %d, want 5", c)
	}
}

func TestRejectionsNeverCallTheProvider(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, nil)
	subj := b.env.Names.ActionSubject("alipay", "accept_dispute")
	cases := []struct {
		subject, body, wantID, wantCode string
	}{
		{subj, `not json`, "", worker.CodeInvalidCommand},
		{subj, `{"disputeRequestId":"rule-1","disputeId":"D","params":{"reject":"EXCEEDS_ESCALATION_REQUEST_LIMIT"}}`, "rule-1", "EXCEEDS_ESCALATION_REQUEST_LIMIT"},
		{subj, `{"disputeRequestId":"bad id","disputeId":"D"}`, "", worker.CodeInvalidCommand},
		{b.env.Names.ActionSubject("alipay", "refund_everything"), `{"disputeRequestId":"unk-1"}`, "unk-1", worker.CodeInvalidCommand},
		{b.env.Names.ActionSubject("ingenico", "submit_dispute"), `{"disputeRequestId":"nc-1","disputeId":"D"}`, "nc-1", worker.CodeProviderNotConfigured},
	}
	for _, c := range cases {
		b.publish(t, c.subject, []byte(c.body), "")
	}
	results := b.awaitResults(t, len(cases), 20*time.Second)
	byCode := map[string]int{}
	for _, r := range results {
		if r.Outcome != worker.Rejected {
			t.Errorf("result %+v, want rejected", r)
		}
		byCode[r.DisputeRequestID+"/"+r.Code]++
	}
	for _, c := range cases {
		if byCode[c.wantID+"/"+c.wantCode] == 0 {
			t.Errorf("no rejected result %s/%s in %v", c.wantID, c.wantCode, byCode)
		}
	}
	for i := 0; i < len(cases); i++ {
		select {
		case <-b.dlq:
		case <-time.After(60 * time.Second): // a hang guard for a loaded machine
			t.Fatalf("only %d dead letters of %d", i, len(cases))
		}
	}
	b.fake.mu.Lock()
	defer b.fake.mu.Unlock()
	if len(b.fake.calls) != 0 {
		t.Fatalf("provider calls for rejected commands: %v", b.fake.calls)
	}
}

// W3: commands on the same dispute never call the provider at once.
func TestOneCallPerDisputeAtATime(t *testing.T) {
	t.Parallel()
	b := setup(t, 3, nil)
	b.fake.hold = 30 * time.Millisecond
	const disputes, perDispute = 5, 6
	for i := 0; i < disputes*perDispute; i++ {
		b.command(t, fmt.Sprintf("req-%d", i), fmt.Sprintf("D%d", i%disputes), `{}`)
	}
	results := b.awaitResults(t, disputes*perDispute, 60*time.Second)
	for _, r := range results {
		if r.Outcome != worker.Succeeded || r.Replayed {
			t.Errorf("result %+v", r)
		}
	}
	if b.fake.maxInflight != 1 {
		t.Fatalf("max concurrent calls per dispute = %d, want 1", b.fake.maxInflight)
	}
}

// W1/W2: many deliveries and republishes, several workers: one effect and
// one non-replayed result per command.
func TestExactlyOnceUnderRedeliveryAndRepublish(t *testing.T) {
	t.Parallel()
	b := setup(t, 3, nil)
	var mu sync.Mutex
	b.fake.behave = func(call *handlers.Call, n int) error {
		mu.Lock()
		defer mu.Unlock()
		if n == 1 && len(call.Command.DisputeRequestID)%3 == 0 {
			return errApplyThenFail
		}
		return nil
	}
	const n = 60
	for i := 0; i < n; i++ {
		b.command(t, fmt.Sprintf("req-%03d", i), fmt.Sprintf("D%d", i), `{"x":"1"}`)
	}
	for i := 0; i < n; i++ { // each published again, in another order of keys
		b.command(t, fmt.Sprintf("req-%03d", i), fmt.Sprintf("D%d", i), `{ "x" : "1" }`)
	}
	results := b.awaitResults(t, 2*n, 60*time.Second)
	original, replayed := map[string]int{}, 0
	for _, r := range results {
		if r.Replayed {
			replayed++
			continue
		}
		original[r.DisputeRequestID]++
	}
	if len(original) != n || replayed != n {
		t.Fatalf("%d commands with an original result, %d replayed; want %d and %d", len(original), replayed, n, n)
	}
	for id, c := range original {
		if c != 1 {
			t.Errorf("%s has %d non-replayed results", id, c)
		}
		if e := b.fake.effectsOf(id); e != 1 {
			t.Errorf("%s applied %d times", id, e)
		}
	}
	b.assertQuiet(t, 300*time.Millisecond)
}

// A provider call longer than the lease keeps its claim by heartbeat; no
// second worker calls (W7).
func TestHeartbeatKeepsTheLease(t *testing.T) {
	t.Parallel()
	b := setup(t, 2, func(c *worker.Config) { c.Lease = 600 * time.Millisecond })
	b.fake.hold = 2 * time.Second
	b.command(t, "req-slow", "D1", `{}`)
	r := b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Succeeded || r.Replayed {
		t.Fatalf("result %+v", r)
	}
	if c := b.fake.callsOf("req-slow"); c != 1 {
		t.Fatalf("calls = %d, want 1", c)
	}
}

func TestShutdownReleasesInFlightWork(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, nil)
	mux := handlers.NewMux()
	mux.Register("alipay", "accept_dispute", b.fake)
	b.fake.hold = time.Hour // never finishes on its own
	ctx, cancel := context.WithCancel(context.Background())
	w, err := worker.New(worker.Config{JS: b.env.JS, Redis: b.env.Redis, Names: b.env.Names, Mux: mux,
		ShutdownGrace: 200 * time.Millisecond, Lease: time.Second, BackoffBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	b.command(t, "req-s", "D1", `{}`)
	deadline := time.Now().Add(10 * time.Second)
	for b.fake.callsOf("req-s") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call never started")
		}
		time.Sleep(5 * time.Millisecond) // polling the fake's state
	}
	cancel()
	// The held call never finishes on its own (an hour), so stopping at all
	// shows the grace was honoured; the 60 s is only a hang guard, generous
	// for a loaded machine under -race.
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop within 60 s although its grace is 200 ms")
	}
	// A restarted worker finishes it: the command was released, not failed.
	b.fake.hold = 0
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	w2, _ := worker.New(worker.Config{JS: b.env.JS, Redis: b.env.Redis, Names: b.env.Names, Mux: mux, BackoffBase: 10 * time.Millisecond})
	go func() { _ = w2.Run(ctx2) }()
	r := b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Succeeded || r.Attempts != 2 {
		t.Fatalf("result after restart = %+v, want succeeded on the second call", r)
	}
}

// A worker whose consumer is deleted under it stops with an error (so the
// process is restarted), instead of staying up doing nothing.
func TestRunFailsWhenTheConsumerIsDeleted(t *testing.T) {
	t.Parallel()
	b := setup(t, 0, nil)
	mux := handlers.NewMux()
	mux.Register("alipay", "accept_dispute", b.fake)
	w, err := worker.New(worker.Config{JS: b.env.JS, Redis: b.env.Redis, Names: b.env.Names, Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// Once a command is answered the worker is surely consuming.
	b.command(t, "req-del", "D1", `{}`)
	b.awaitResults(t, 1, 20*time.Second)
	if err := b.env.JS.DeleteConsumer(ctx, b.env.Names.ActionsStream(), b.env.Names.WorkerConsumer()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil after its consumer was deleted")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run kept going after its consumer was deleted")
	}
}
