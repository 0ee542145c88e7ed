package worker

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/testenv"
)

// Hazards of the last delivery that need Redis (the claim), with the stream
// and the message still faked.

// claimedOnLastDelivery is a worker on a real Redis (faked stream), a
// command on its last delivery, and the command claimed by owner.
func claimedOnLastDelivery(t *testing.T, js *fakeJS, owner string) (*Worker, *delivery, string, Claim) {
	t.Helper()
	env := testenv.New(t)
	w := tableWorker(t, js, nil)
	w.store = NewStore(env.Redis, env.Names, time.Minute, time.Hour)
	d := newDelivery("tbl.actions.alipay.accept_dispute", goodCommand, testMaxDeliver)
	_, fp, _ := w.admit(d)
	claim, err := w.store.Claim(testenv.Context(t), d.id, fp, owner)
	if err != nil || claim.Status != Claimed {
		t.Fatalf("%s's claim %+v %v", owner, claim, err)
	}
	return w, d, fp, claim
}

// A give-up on the last delivery of a claimed command (here: its result
// could not be stored, so finish asked for a redelivery JetStream would
// not make) releases the claim, so a republish is not kept waiting out the
// lease.
func TestGiveUpReleasesTheClaim(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	w, d, fp, claim := claimedOnLastDelivery(t, &fakeJS{}, "me")
	d.held, d.owner, d.epoch, d.claim = true, "me", claim.Epoch, claim

	w.carryOut(ctx, d, nakAfter(w.cfg.Lease))

	if did := d.msg.(*fakeMsg).did; len(did) != 1 || !strings.HasPrefix(did[0], "term") {
		t.Fatalf("message got %q, want a give-up's term", did)
	}
	again, err := w.store.Claim(ctx, d.id, fp, "republish")
	if err != nil || again.Status == Busy {
		t.Fatalf("a republish after the give-up found %+v %v: the claim was left behind", again, err)
	}
}

// A copy (a republish) that finds its command held by another worker on its
// own last delivery waits for the holder and answers its client with the
// replayed result, under its own Command-Sequence.
func TestLastDeliveryWaitsForTheHolder(t *testing.T) {
	t.Parallel()
	ctx := testenv.Context(t)
	js := &fakeJS{}
	w, d, _, holder := claimedOnLastDelivery(t, js, "holder")
	w.cfg.BackoffBase = 10 * time.Millisecond
	msg := d.msg.(*fakeMsg)
	msg.inProgress = make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		<-msg.inProgress // the copy is waiting: the holder finishes now
		body, _ := json.Marshal(Result{DisputeRequestID: d.id, Outcome: Succeeded, Code: "SUCCESS", Attempts: 1})
		if _, err := w.store.Complete(ctx, d.id, "holder", holder.Epoch, body, 7); err != nil {
			t.Error(err)
		}
		_ = w.store.MarkPublished(ctx, d.id)
		for range msg.inProgress { // later polls, if any
		}
	}()

	w.handle(ctx, ctx, msg, testMaxDeliver)
	close(msg.inProgress)
	<-finished

	if len(msg.did) != 1 || msg.did[0] != "ack" {
		t.Fatalf("message got %q, want ack after its replayed answer", msg.did)
	}
	if len(js.msgs) != 1 {
		t.Fatalf("published %d messages, want the replayed answer", len(js.msgs))
	}
	var r Result
	if err := json.Unmarshal(js.msgs[0].Data, &r); err != nil || !r.Replayed || r.Outcome != Succeeded {
		t.Fatalf("answer %+v %v, want the holder's result replayed", r, err)
	}
	if seq := js.msgs[0].Header.Get(HeaderCommandSequence); seq != "42" {
		t.Fatalf("Command-Sequence = %q, want this copy's 42", seq)
	}
}
