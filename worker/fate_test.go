package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/testenv"
)

// Hazards of the last delivery that need Redis (the claim), with the stream
// and the message still faked.

// A give-up on the last delivery of a claimed command (here: its result
// could not be stored, so finish asked for a redelivery JetStream would
// not make) releases the claim, so a republish is not kept waiting out the
// lease.
func TestGiveUpReleasesTheClaim(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testenv.Context(t)
	w := tableWorker(t, &fakeJS{}, nil)
	w.store = NewStore(env.Redis, env.Names, time.Minute, time.Hour)
	d := newDelivery("tbl.actions.alipay.accept_dispute", goodCommand, testMaxDeliver)
	_, fp, _ := w.admit(d)
	claim, err := w.store.Claim(ctx, d.id, fp, "me")
	if err != nil || claim.Status != Claimed {
		t.Fatalf("claim %+v %v", claim, err)
	}
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
