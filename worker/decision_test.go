package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/topology"
)

// The decision table, row by row, without servers: deciding is pure, and
// carrying out is tested against a recording message and stream. Storing a
// result (fateFinish) needs Redis and is covered by worker_test.go.

// fakeMsg records what was done to it.
type fakeMsg struct {
	jetstream.Msg
	subject string
	data    []byte
	meta    *jetstream.MsgMetadata
	did     []string
	// inProgress, if set, hears every InProgress.
	inProgress chan struct{}
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.meta == nil {
		return nil, errors.New("no metadata")
	}
	return m.meta, nil
}
func (m *fakeMsg) Subject() string                 { return m.subject }
func (m *fakeMsg) Data() []byte                    { return m.data }
func (m *fakeMsg) DoubleAck(context.Context) error { m.did = append(m.did, "ack"); return nil }
func (m *fakeMsg) Term() error                     { m.did = append(m.did, "term"); return nil }
func (m *fakeMsg) TermWithReason(r string) error   { m.did = append(m.did, "term "+r); return nil }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	m.did = append(m.did, "nak "+d.String())
	return nil
}
func (m *fakeMsg) InProgress() error {
	if m.inProgress != nil {
		m.inProgress <- struct{}{}
	}
	return nil
}
func (m *fakeMsg) Headers() nats.Header { return nil }

// fakeJS records publishes, or refuses them.
type fakeJS struct {
	jetstream.JetStream
	refuse bool
	msgs   []*nats.Msg
}

func (j *fakeJS) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if j.refuse {
		return nil, errors.New("no responders")
	}
	j.msgs = append(j.msgs, m)
	return &jetstream.PubAck{}, nil
}

const testMaxDeliver = 5

type ruleHandler struct{ err error }

func (h ruleHandler) Validate(*handlers.Command) error { return h.err }
func (h ruleHandler) Apply(context.Context, *handlers.Call) (*handlers.Response, error) {
	return nil, errors.New("not called")
}

// tableWorker is a Worker whose Redis is a closed port (refused at once:
// the rows that touch it ignore its errors, and it is not retried) and whose stream is js.
func tableWorker(t *testing.T, js *fakeJS, validate error) *Worker {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	mux := handlers.NewMux()
	mux.Register("alipay", "accept_dispute", ruleHandler{err: validate})
	w, err := New(Config{JS: js, Redis: rdb, Names: topology.MustNew("tbl"), Mux: mux,
		MaxAttempts: 3, RetryDeadline: time.Hour, BackoffBase: time.Second, BackoffMax: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newDelivery(subject, body string, delivered uint64) *delivery {
	meta := &jetstream.MsgMetadata{NumDelivered: delivered, Sequence: jetstream.SequencePair{Stream: 42}}
	return &delivery{msg: &fakeMsg{subject: subject, data: []byte(body), meta: meta}, meta: meta, maxDeliver: testMaxDeliver}
}

const goodCommand = `{"disputeRequestId":"r1","disputeId":"D1","params":{},"requestedBy":"t"}`

// same compares the parts of a decision a row states.
func same(t *testing.T, got, want decision) {
	t.Helper()
	if got.fate != want.fate || got.outcome != want.outcome || got.code != want.code ||
		got.dlqReason != want.dlqReason || got.release != want.release || got.termReason != want.termReason ||
		(want.message != "" && !strings.Contains(got.message, want.message)) {
		t.Fatalf("decision = %+v, want %+v", got, want)
	}
}

func TestAdmitDecides(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, subject, body string
		validate            error
		want                decision
	}{
		{"admitted", "tbl.actions.alipay.accept_dispute", goodCommand, nil, decision{}},
		{"subject outside the contract", "tbl.other", goodCommand, nil, reject(CodeInvalidCommand, "is not an action of the contract", ReasonInvalid)},
		{"unknown action", "tbl.actions.alipay.fly", goodCommand, nil, reject(CodeInvalidCommand, "is not an action of the contract", ReasonInvalid)},
		{"bad command", "tbl.actions.alipay.accept_dispute", `{`, nil, reject(CodeInvalidCommand, "", ReasonInvalid)},
		{"provider not configured", "tbl.actions.ingenico.cancel_dispute", goodCommand, nil, reject(CodeProviderNotConfigured, "ingenico is not configured", ReasonNotConfigured)},
		{"provider rule", "tbl.actions.alipay.accept_dispute", goodCommand, &handlers.RuleError{Code: "TOO_LATE", Message: "late"}, reject("TOO_LATE", "late", ReasonRule)},
		{"invalid params", "tbl.actions.alipay.accept_dispute", goodCommand, handlers.Invalid("params.x", "is required"), reject(CodeInvalidCommand, "params.x: is required", ReasonInvalid)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := tableWorker(t, &fakeJS{}, c.validate)
			h, fp, dec := w.admit(newDelivery(c.subject, c.body, 1))
			same(t, dec, c.want)
			if (dec.fate == 0) != (h != nil && fp != "") {
				t.Fatalf("admitted = %v but handler %v, fingerprint %q", dec.fate == 0, h, fp)
			}
		})
	}
}

func TestClaimDecides(t *testing.T) {
	t.Parallel()
	w := tableWorker(t, &fakeJS{}, nil)
	cases := []struct {
		name      string
		claim     Claim
		delivered uint64
		want      decision
	}{
		{"claimed", Claim{Status: Claimed}, 1, decision{fate: fateApply}},
		{"taken over", Claim{Status: TakenOver}, 1, decision{fate: fateApply}},
		{"inconsistent", Claim{Status: Inconsistent}, 1, reject(CodeRepeatReqInconsistent, "already used for a different command", ReasonInconsistent)},
		{"done", Claim{Status: Replay}, 1, decision{fate: fateReplay}},
		{"busy", Claim{Status: Busy, Wait: time.Millisecond}, 1, nakAfter(0)},
		{"still busy after waiting on the last delivery", Claim{Status: Busy}, testMaxDeliver, giveUp(CodeOutcomeUnknown, "another worker was still applying")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDelivery("", "", c.delivered)
			got := w.afterClaim(d, c.claim)
			if c.want.fate == fateNak {
				// Never later than the holder's lease (plus one base).
				if got.fate != fateNak || got.delay > c.claim.Wait+w.cfg.BackoffBase {
					t.Fatalf("decision = %+v, want a nak within %v", got, c.claim.Wait+w.cfg.BackoffBase)
				}
				return
			}
			same(t, got, c.want)
		})
	}
	t.Run("dispute busy on the last delivery, never called", func(t *testing.T) {
		same(t, disputeBusy(Claim{Status: Claimed}), decision{fate: fateFinish, outcome: Failed, code: CodeDisputeBusy, dlqReason: ReasonRetriesExhausted})
	})
	t.Run("dispute busy on the last delivery after a call of unknown outcome", func(t *testing.T) {
		same(t, disputeBusy(Claim{Status: TakenOver, Calls: 1}), decision{fate: fateFinish, outcome: Failed, code: CodeOutcomeUnknown, message: "may have been applied", dlqReason: ReasonRetriesExhausted})
	})
	t.Run("store unavailable", func(t *testing.T) {
		same(t, w.claimFailed(newDelivery("", "", 1), errors.New("down")), decision{fate: fateNak})
	})
	t.Run("store unavailable on the last delivery", func(t *testing.T) {
		same(t, w.claimFailed(newDelivery("", "", testMaxDeliver), errors.New("down")),
			giveUp(CodeIdempotencyUnavailable, "unavailable on every delivery: down"))
	})
}

func TestSettleDecides(t *testing.T) {
	t.Parallel()
	w := tableWorker(t, &fakeJS{}, nil)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fresh := attemptState{calls: 1, first: now, now: now, delivered: 1, maxDeliver: testMaxDeliver}
	with := func(f func(*attemptState)) attemptState { st := fresh; f(&st); return st }
	busy := &handlers.ProviderError{Code: "SYSTEM_BUSY", Message: "busy"}
	exhausted := func(msg string) decision {
		return decision{fate: fateFinish, outcome: Failed, code: "SYSTEM_BUSY", message: msg, dlqReason: ReasonRetriesExhausted}
	}
	cases := []struct {
		name     string
		resp     *handlers.Response
		err      error
		st       attemptState
		want     decision
		minDelay time.Duration // fateNak: the delay is at least this
		maxDelay time.Duration
	}{
		{"succeeded", &handlers.Response{Code: "SUCCESS", Body: []byte(`{"ok":true}`)}, nil, fresh,
			decision{fate: fateFinish, outcome: Succeeded, code: "SUCCESS"}, 0, 0},
		{"provider rule", nil, &handlers.RuleError{Code: "CLOSED", Message: "closed"}, fresh,
			decision{fate: fateFinish, outcome: Rejected, code: "CLOSED", message: "closed", dlqReason: ReasonRule}, 0, 0},
		{"invalid", nil, handlers.Invalid("params.x", "bad"), fresh,
			decision{fate: fateFinish, outcome: Rejected, code: CodeInvalidCommand, message: "params.x: bad", dlqReason: ReasonInvalid}, 0, 0},
		{"permanent", nil, handlers.Permanent(&handlers.ProviderError{Code: "NOPE", Message: "no"}), fresh,
			decision{fate: fateFinish, outcome: Failed, code: "NOPE", message: "no"}, 0, 0},
		{"permanent without a code", nil, handlers.Permanent(errors.New("gone")), fresh,
			decision{fate: fateFinish, outcome: Failed, code: "FAILED", message: "gone"}, 0, 0},
		{"shutdown", nil, busy, with(func(s *attemptState) { s.shuttingDown = true }),
			releaseAndNak(shutdownRedelivery), shutdownRedelivery, shutdownRedelivery},
		{"shutdown on the last attempt is still a redelivery", nil, busy, with(func(s *attemptState) { s.shuttingDown = true; s.calls = 3 }),
			releaseAndNak(shutdownRedelivery), shutdownRedelivery, shutdownRedelivery},
		{"retryable", nil, busy, fresh, releaseAndNak(0), 500 * time.Millisecond, time.Second},
		{"retryable, backoff grows", nil, busy, with(func(s *attemptState) { s.calls = 2 }), releaseAndNak(0), time.Second, 2 * time.Second},
		{"Retry-After beyond the backoff", nil, handlers.RetryAfter(busy, 30*time.Second), fresh, releaseAndNak(0), 30 * time.Second, 30 * time.Second},
		{"Retry-After within the backoff", nil, handlers.RetryAfter(busy, time.Millisecond), fresh, releaseAndNak(0), 500 * time.Millisecond, time.Second},
		{"attempts exhausted", nil, busy, with(func(s *attemptState) { s.calls = 3 }), exhausted("retries exhausted: provider answered SYSTEM_BUSY"), 0, 0},
		{"retry deadline passed", nil, busy, with(func(s *attemptState) { s.first = now.Add(-time.Hour) }), exhausted("retries exhausted"), 0, 0},
		{"last delivery", nil, busy, with(func(s *attemptState) { s.delivered = testMaxDeliver }), exhausted("retries exhausted"), 0, 0},
		{"exhausted without a code", nil, errors.New("reset"), with(func(s *attemptState) { s.calls = 3 }),
			decision{fate: fateFinish, outcome: Failed, code: CodeRetriesExhausted, message: "retries exhausted: reset", dlqReason: ReasonRetriesExhausted}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := w.settle(c.resp, c.err, c.st)
			same(t, got, c.want)
			if got.fate == fateNak && (got.delay < c.minDelay || got.delay > c.maxDelay) {
				t.Fatalf("delay = %v, want within [%v, %v]", got.delay, c.minDelay, c.maxDelay)
			}
			if got.fate == fateFinish && got.attempts != int(c.st.calls) {
				t.Fatalf("attempts = %d, want %d", got.attempts, c.st.calls)
			}
		})
	}
	t.Run("the provider's JSON answer is kept, anything else dropped", func(t *testing.T) {
		if got := w.settle(&handlers.Response{Body: []byte(`{"a":1}`)}, nil, fresh); string(got.response) != `{"a":1}` {
			t.Fatalf("response = %s", got.response)
		}
		if got := w.settle(&handlers.Response{Body: []byte(`<html>`)}, nil, fresh); got.response != nil {
			t.Fatalf("response = %s, want none", got.response)
		}
	})
}

// Carrying out: what each decision does to the message and which results
// and dead letters it publishes. On its last delivery, every decision ends
// with a result under the message's own Command-Sequence, except the rows
// marked noAnswer (see fateTerm and fateAck).
func TestCarryOut(t *testing.T) {
	t.Parallel()
	stored, _ := json.Marshal(Result{DisputeRequestID: "r1", Outcome: Succeeded, Code: "SUCCESS"})
	cases := []struct {
		name      string
		dec       decision
		claim     Claim
		delivered uint64
		refuse    bool     // the stream refuses publishes
		did       string   // what was done to the message
		results   []string // outcome/code[/replayed] of each result, in order
		dlq       string   // the dead letter's reason
		noAnswer  bool     // on the last delivery: no result of its own (say why in the fate)
	}{
		{name: "ack", dec: decision{fate: fateAck}, did: "ack", noAnswer: true},
		{name: "nak", dec: nakAfter(3 * time.Second), did: "nak 3s"},
		{name: "nak releasing the claim", dec: releaseAndNak(time.Second), did: "nak 1s"},
		{name: "nak on the last delivery gives up", dec: nakAfter(time.Second), delivered: testMaxDeliver,
			did: "term " + ReasonRetriesExhausted, results: []string{"failed/" + CodeRetriesExhausted}, dlq: ReasonRetriesExhausted},
		{name: "term", dec: decision{fate: fateTerm, termReason: "held by another worker"}, did: "term held by another worker", noAnswer: true},
		{name: "reject", dec: reject("TOO_LATE", "late", ReasonRule),
			did: "term " + ReasonRule, results: []string{"rejected/TOO_LATE"}, dlq: ReasonRule},
		{name: "reject, stream down", dec: reject("TOO_LATE", "late", ReasonRule), refuse: true, did: "nak"},
		{name: "give up", dec: giveUp("IDEMPOTENCY_UNAVAILABLE", "down"), delivered: testMaxDeliver,
			did: "term " + ReasonRetriesExhausted, results: []string{"failed/IDEMPOTENCY_UNAVAILABLE"}, dlq: ReasonRetriesExhausted},
		{name: "give up, stream down, still ends", dec: giveUp("IDEMPOTENCY_UNAVAILABLE", "down"), delivered: testMaxDeliver, refuse: true,
			did: "term " + ReasonRetriesExhausted},
		{name: "replay to a republish", dec: decision{fate: fateReplay}, claim: Claim{Result: stored, Published: true, Seq: 7},
			did: "ack", results: []string{"succeeded/SUCCESS/replayed"}},
		{name: "replay to the completing message", dec: decision{fate: fateReplay}, claim: Claim{Result: stored, Published: true, Seq: 42},
			did: "ack", noAnswer: true},
		{name: "replay of an unpublished result", dec: decision{fate: fateReplay}, claim: Claim{Result: stored, Seq: 7},
			did: "ack", results: []string{"succeeded/SUCCESS", "succeeded/SUCCESS/replayed"}},
		{name: "replay, stream down", dec: decision{fate: fateReplay}, claim: Claim{Result: stored, Seq: 7}, refuse: true, did: "nak"},
		{name: "replay of an unreadable result", dec: decision{fate: fateReplay}, claim: Claim{Result: []byte("{"), Published: true, Seq: 7}, did: "nak"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			js := &fakeJS{refuse: c.refuse}
			w := tableWorker(t, js, nil)
			d := newDelivery("tbl.actions.alipay.accept_dispute", goodCommand, max(c.delivered, 1))
			if _, _, dec := w.admit(d); dec.fate != 0 {
				t.Fatalf("admit: %+v", dec)
			}
			d.claim, d.held, d.owner = c.claim, c.dec.release, "me"
			w.carryOut(context.Background(), d, c.dec)
			did := d.msg.(*fakeMsg).did
			if len(did) != 1 || !strings.HasPrefix(did[0], c.did) {
				t.Fatalf("message got %q, want one %q", did, c.did)
			}
			var results []string
			var dlq string
			for _, m := range js.msgs {
				if strings.HasPrefix(m.Subject, "tbl.dlq.") {
					dlq = m.Header.Get(HeaderDLQReason)
					continue
				}
				var r Result
				if err := json.Unmarshal(m.Data, &r); err != nil {
					t.Fatal(err)
				}
				s := r.Outcome + "/" + r.Code
				if r.Replayed {
					s += "/replayed"
				}
				results = append(results, s)
			}
			if fmt.Sprint(results) != fmt.Sprint(c.results) || dlq != c.dlq {
				t.Fatalf("results %q, dead letter %q; want %q, %q", results, dlq, c.results, c.dlq)
			}
			// The last published result answers this message's sequence.
			if n := len(js.msgs); n > 0 && !strings.HasPrefix(js.msgs[n-1].Subject, "tbl.dlq.") {
				if seq := js.msgs[n-1].Header.Get(HeaderCommandSequence); seq != "42" {
					t.Fatalf("Command-Sequence = %q, want 42", seq)
				}
			}
		})
	}
	// Every delivery's last fate answers its own sequence or is one of
	// the rows that say why not.
	for _, c := range cases {
		if c.delivered == testMaxDeliver && !c.refuse && len(c.results) == 0 && !c.noAnswer {
			t.Errorf("%s: the last delivery ends without an answer", c.name)
		}
	}
}

func TestLastFate(t *testing.T) {
	t.Parallel()
	last := newDelivery("", "", testMaxDeliver)
	same(t, lastFate(newDelivery("", "", 1), nakAfter(time.Second)), nakAfter(time.Second))
	same(t, lastFate(last, nakAfter(time.Second)), giveUp(CodeRetriesExhausted, "raise --max-deliver"))
	same(t, lastFate(last, decision{fate: fateAck}), decision{fate: fateAck})
	same(t, lastFate(&delivery{maxDeliver: 1}, nakAfter(time.Second)), nakAfter(time.Second)) // no metadata: no count
}
