package alipayplus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/internal/testenv"
)

func wantRule(t *testing.T, err error, code string) {
	t.Helper()
	var re *handlers.RuleError
	if !errors.As(err, &re) || re.Code != code {
		t.Fatalf("error %v, want RuleError %s", err, code)
	}
}

func TestLedgerLimitsAgainstRedis(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testenv.Context(t)
	ledger := alipayplus.NewRedisLedger(env.Redis, env.Names)
	clock := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	b := setup(t, options{ledger: ledger, now: func() time.Time { return clock }})
	b.fake.Always(alipayfake.Reply{Code: "SUCCESS", Status: "S", Message: "success", Fields: map[string]string{"disputeId": "AP-1"}})
	calls := func() int { return len(b.fake.Requests()) }

	// First escalation: sent and recorded as ongoing.
	if _, err := b.apply(t, escalation("esc-1", "pay-A")); err != nil {
		t.Fatalf("first escalation: %v", err)
	}
	got, err := ledger.Escalations(ctx, "pay-A")
	if err != nil || len(got) != 1 || got[0].DisputeRequestID != "esc-1" || got[0].DisputeID != "AP-1" ||
		!got[0].StartedAt.Equal(clock) || !got[0].ClosedAt.IsZero() {
		t.Fatalf("ledger after the first: %+v %v", got, err)
	}

	// A second one while the first is ongoing: refused locally, no call.
	_, err = b.apply(t, escalation("esc-2", "pay-A"))
	wantRule(t, err, alipayplus.CodeExceedsEscalationLimit)
	if calls() != 1 {
		t.Fatalf("%d calls, want 1", calls())
	}

	// A retry of the first is not refused by its own record, and recording
	// it again changes nothing.
	clock = clock.Add(time.Minute)
	if _, err := b.apply(t, escalation("esc-1", "pay-A")); err != nil {
		t.Fatalf("retry of the first: %v", err)
	}
	got, _ = ledger.Escalations(ctx, "pay-A")
	if len(got) != 1 || !got[0].StartedAt.Equal(clock.Add(-time.Minute)) || calls() != 2 {
		t.Fatalf("after the retry: %+v, %d calls", got, calls())
	}

	// responseEscalation closes the first: the second is allowed.
	if err := ledger.Close(ctx, "pay-A", "esc-1", clock); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(24 * time.Hour)
	if _, err := b.apply(t, escalation("esc-2", "pay-A")); err != nil {
		t.Fatalf("second escalation after close: %v", err)
	}
	if calls() != 3 {
		t.Fatalf("%d calls, want 3", calls())
	}
	// Closed through the back reference (responseEscalation carries no
	// paymentRequestId).
	if err := ledger.Close(ctx, "", "esc-2", clock); err != nil {
		t.Fatal(err)
	}
	got, _ = ledger.Escalations(ctx, "pay-A")
	if len(got) != 2 || got[0].DisputeRequestID != "esc-1" || got[1].DisputeRequestID != "esc-2" || got[1].ClosedAt.IsZero() {
		t.Fatalf("ledger: %+v", got)
	}

	// A third: at most 2 per transaction, refused with no call.
	_, err = b.apply(t, escalation("esc-3", "pay-A"))
	wantRule(t, err, alipayplus.CodeExceedsEscalationLimit)
	if calls() != 3 {
		t.Fatalf("third escalation reached the provider: %d calls", calls())
	}

	// Another payment is not affected.
	if _, err := b.apply(t, escalation("esc-b1", "pay-B")); err != nil {
		t.Fatalf("other payment: %v", err)
	}

	if err := ledger.Close(ctx, "", "never-started", clock); !errors.Is(err, alipayplus.ErrUnknownEscalation) {
		t.Fatalf("close of an unknown escalation: %v", err)
	}
}

func TestLedgerWindowAndCanceled(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testenv.Context(t)
	ledger := alipayplus.NewRedisLedger(env.Redis, env.Names)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	seed := []alipayplus.Escalation{
		{PaymentRequestID: "pay-late", DisputeRequestID: "l1", StartedAt: now.Add(-40 * day), ClosedAt: now.Add(-26 * day)},
		{PaymentRequestID: "pay-ok", DisputeRequestID: "o1", StartedAt: now.Add(-30 * day), ClosedAt: now.Add(-24 * day)},
		{PaymentRequestID: "pay-cancel", DisputeRequestID: "c1", StartedAt: now.Add(-10 * day), Canceled: true},
		{PaymentRequestID: "pay-cancel", DisputeRequestID: "c2", StartedAt: now.Add(-5 * day), ClosedAt: now.Add(-day)},
	}
	for _, e := range seed {
		if err := ledger.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	b := setup(t, options{ledger: ledger, now: func() time.Time { return now }})
	_, err := b.apply(t, escalation("l2", "pay-late"))
	wantRule(t, err, alipayplus.CodeProcessFail)
	if n := len(b.fake.Requests()); n != 0 {
		t.Fatalf("late second escalation reached the provider")
	}
	for _, c := range []struct{ id, pay string }{{"o2", "pay-ok"}, {"c3", "pay-cancel"}} {
		if _, err := b.apply(t, escalation(c.id, c.pay)); err != nil {
			t.Fatalf("%s: %v", c.pay, err)
		}
	}
	got, _ := ledger.Escalations(ctx, "pay-cancel")
	if len(got) != 3 || !got[0].Canceled || got[2].DisputeRequestID != "c3" {
		t.Fatalf("pay-cancel: %+v", got)
	}
}

func TestLedgerWritesAreIdempotent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testenv.Context(t)
	ledger := alipayplus.NewRedisLedger(env.Redis, env.Names)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	e := alipayplus.Escalation{PaymentRequestID: "p|1:x", DisputeRequestID: "d|1", StartedAt: t0}
	for i := range 3 { // go-redis may run a write twice: the state must not change
		e.StartedAt = t0.Add(time.Duration(i) * time.Hour)
		if err := ledger.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	closed := t0.Add(48 * time.Hour)
	for i := range 2 {
		if err := ledger.Close(ctx, "p|1:x", "d|1", closed.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	e.DisputeID = "AP-9"
	if err := ledger.Record(ctx, e); err != nil { // a late Record after Close keeps it closed
		t.Fatal(err)
	}
	got, err := ledger.Escalations(ctx, "p|1:x")
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	if g := got[0]; g.DisputeRequestID != "d|1" || !g.StartedAt.Equal(t0) || !g.ClosedAt.Equal(closed) || g.DisputeID != "AP-9" || g.Canceled {
		t.Fatalf("escalation %+v", g)
	}
	ttl, err := env.Redis.TTL(ctx, env.Names.RedisKey("escalations", "p|1:x")).Result()
	if err != nil || ttl <= 0 {
		t.Fatalf("ledger key has no expiry: %v %v", ttl, err)
	}
}

type failingLedger struct{ alipayplus.Ledger }

func (failingLedger) Escalations(context.Context, string) ([]alipayplus.Escalation, error) {
	return nil, errors.New("redis: connection refused")
}

func TestLedgerUnavailableMeansNoCall(t *testing.T) {
	t.Parallel()
	b := setup(t, options{ledger: failingLedger{}})
	_, err := b.apply(t, escalation("e", "p"))
	if err == nil || handlers.IsPermanent(err) || handlers.Code(err) != "" {
		t.Fatalf("error %v, want a plain retryable error", err)
	}
	if n := len(b.fake.Requests()); n != 0 {
		t.Fatalf("%d calls without the ledger", n)
	}
}

type recordFails struct{ alipayplus.Ledger }

func (recordFails) Escalations(context.Context, string) ([]alipayplus.Escalation, error) {
	return nil, nil
}
func (recordFails) Record(context.Context, alipayplus.Escalation) error {
	return errors.New("redis: connection reset")
}

func TestRecordFailureIsRetryable(t *testing.T) {
	t.Parallel()
	b := setup(t, options{ledger: recordFails{}})
	resp, err := b.apply(t, escalation("e", "p"))
	if err == nil || resp != nil || handlers.IsPermanent(err) {
		t.Fatalf("got %v, %v; want a retryable error so that the S is recorded on the retry", resp, err)
	}
}
