package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/health"
)

// delivery is one message being handled.
type delivery struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata // nil if the message had none
	provider string
	action   string
	cmd      *handlers.Command
	id       string
	// maxDeliver is the consumer's MaxDeliver: the last delivery must end
	// with a result, never with a nak the server would not honour.
	maxDeliver int

	// Set once the command is claimed: what carrying out a decision needs
	// to store a result or release the claim.
	held    bool
	owner   string
	epoch   int64
	claim   Claim  // the claim as found (a replay reads its result)
	lockKey string // the dispute lock held, unlocked once the fate is carried out
}

// handle decides the fate of one delivery, then carries it out.
func (w *Worker) handle(workCtx, fetchCtx context.Context, msg jetstream.Msg, maxDeliver int) {
	d := &delivery{msg: msg, maxDeliver: maxDeliver}
	dec := w.decide(workCtx, fetchCtx, d)
	// Carrying the decision out must happen even if the shutdown grace
	// period has just cancelled workCtx (see bookkeepingTimeout).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(workCtx), bookkeepingTimeout)
	defer cancel()
	w.carryOut(ctx, d, dec)
}

// decide runs a delivery up to its decision: admission, the claim, and the
// provider call if the claim allows one.
func (w *Worker) decide(workCtx, fetchCtx context.Context, d *delivery) decision {
	meta, err := d.msg.Metadata()
	if err != nil {
		w.log.Error("message without metadata", "subject", d.msg.Subject(), "err", err)
		return decision{fate: fateTerm}
	}
	d.meta = meta
	if fetchCtx.Err() != nil {
		// Shutdown began after this message was fetched: do not start it.
		return nakAfter(shutdownRedelivery)
	}
	h, fp, dec := w.admit(d)
	if dec.fate != 0 {
		return dec
	}
	d.owner = w.cfg.Instance + "." + nuid.Next()
	claim, err := w.store.Claim(workCtx, d.id, fp, d.owner)
	if err == nil && claim.Status == Busy && lastDelivery(d) {
		claim, err = w.awaitHolder(workCtx, d, fp, claim)
	}
	if err != nil {
		return w.claimFailed(d, err)
	}
	w.m.Idempotency.WithLabelValues(idempotencyLabel(claim.Status)).Inc()
	d.claim = claim
	if dec := w.afterClaim(d, claim); dec.fate != fateApply {
		return dec
	}
	d.held, d.epoch = true, claim.Epoch
	return w.apply(workCtx, fetchCtx, d, h)
}

// admit checks a delivery before any state is touched: the subject, the
// command, the provider's configuration and its rules. A zero decision
// admits it, with its handler and fingerprint.
func (w *Worker) admit(d *delivery) (handlers.Handler, string, decision) {
	var ok bool
	d.provider, d.action, ok = w.cfg.Names.ParseActionSubject(d.msg.Subject())
	if !ok || !handlers.Known(d.provider, d.action) {
		_, d.id, _ = DecodeCommand(d.msg.Data())
		if !ok {
			d.provider, d.action = "unknown", "unknown"
		}
		return nil, "", reject(CodeInvalidCommand, fmt.Sprintf("subject %q is not an action of the contract (%s.actions.<provider>.<action>)", d.msg.Subject(), w.cfg.Names.Prefix()), ReasonInvalid)
	}
	var err error
	d.cmd, d.id, err = DecodeCommand(d.msg.Data())
	if err != nil {
		return nil, "", reject(CodeInvalidCommand, err.Error(), ReasonInvalid)
	}
	h, ok := w.cfg.Mux.Handler(d.provider, d.action)
	if !ok {
		return nil, "", reject(CodeProviderNotConfigured, fmt.Sprintf("provider %s is not configured on this worker", d.provider), ReasonNotConfigured)
	}
	if err := h.Validate(d.cmd); err != nil {
		var rule *handlers.RuleError
		if errors.As(err, &rule) {
			return nil, "", reject(rule.Code, rule.Message, ReasonRule)
		}
		return nil, "", reject(CodeInvalidCommand, err.Error(), ReasonInvalid)
	}
	fp, err := Fingerprint(d.provider, d.action, d.cmd)
	if err != nil {
		return nil, "", reject(CodeInvalidCommand, err.Error(), ReasonInvalid)
	}
	return h, fp, decision{}
}

// claimFailed decides for a delivery whose claim could not be made. Fail
// closed: without a claim there is no provider call.
func (w *Worker) claimFailed(d *delivery, err error) decision {
	if lastDelivery(d) {
		return giveUp(CodeIdempotencyUnavailable, "the idempotency store was unavailable on every delivery: "+err.Error())
	}
	var refused *health.RedisRefusal
	if !errors.As(err, &refused) { // a refusal was logged once, when first seen
		w.log.Warn("idempotency store unavailable; command will be redelivered", "disputeRequestId", d.id, "err", err)
	}
	return nakAfter(w.backoff(int64(d.meta.NumDelivered)))
}

// afterClaim decides from the claim's status; fateApply means: call the
// provider.
func (w *Worker) afterClaim(d *delivery, claim Claim) decision {
	switch claim.Status {
	case Inconsistent:
		return reject(CodeRepeatReqInconsistent,
			fmt.Sprintf("disputeRequestId %s was already used for a different command (provider, action, dispute or params differ)", d.id), ReasonInconsistent)
	case Replay:
		return decision{fate: fateReplay}
	case Busy:
		if lastDelivery(d) {
			// awaitHolder gave up waiting (a shutdown, or the holder
			// outlasted the retry deadline): this copy's client is owed an
			// answer, and the only honest one is that the outcome is not
			// known here (the holder answers under its own sequence).
			w.log.Warn("last delivery while another worker still holds the command", "disputeRequestId", d.id)
			return giveUp(CodeOutcomeUnknown, "another worker was still applying this command when this copy's last delivery ended; its result, under the holder's Command-Sequence, tells the outcome")
		}
		// The holder usually finishes long before its lease would run out,
		// so come back on the growing backoff, never later than the lease.
		return nakAfter(min(claim.Wait+w.cfg.BackoffBase, w.backoff(int64(d.meta.NumDelivered))))
	}
	return decision{fate: fateApply}
}

// awaitHolder waits, on a copy's last delivery, for the worker holding the
// command to finish it (or lose it), so that this copy gets its replayed
// answer instead of ending unanswered. It polls the claim every
// BackoffBase, at most until the holder's lease would run out, keeping
// the message in progress; it stops when workCtx ends or after
// RetryDeadline, answering Busy.
func (w *Worker) awaitHolder(workCtx context.Context, d *delivery, fp string, claim Claim) (Claim, error) {
	giveUpAt := time.Now().Add(w.cfg.RetryDeadline)
	for claim.Status == Busy && time.Now().Before(giveUpAt) {
		_ = d.msg.InProgress()
		t := time.NewTimer(min(w.cfg.BackoffBase, claim.Wait+time.Millisecond))
		select {
		case <-workCtx.Done():
			t.Stop()
			return claim, nil
		case <-t.C:
		}
		next, err := w.store.Claim(workCtx, d.id, fp, d.owner)
		if err != nil {
			return claim, err
		}
		claim = next
	}
	return claim, nil
}

// disputeBusy is the answer of a last delivery that never got the dispute's
// lock. Without an earlier provider call the command certainly did not
// happen; after one, it may have landed, and saying "failed" would be a
// guess.
func disputeBusy(claim Claim) decision {
	dec := decision{fate: fateFinish, outcome: Failed, code: CodeDisputeBusy,
		message:  "another action on the same dispute held it on every delivery",
		attempts: int(claim.Calls), dlqReason: ReasonRetriesExhausted}
	if claim.Calls > 0 {
		dec.code = CodeOutcomeUnknown
		dec.message = "an earlier provider call's outcome is unknown (it may have been applied), and another action on the same dispute held it on every later delivery"
	}
	return dec
}

func idempotencyLabel(s ClaimStatus) string {
	switch s {
	case TakenOver:
		return string(Claimed)
	case Replay:
		return "replayed" // the label docs/contract.md section 4 names
	}
	return string(s)
}

// apply calls the provider for a claimed command and decides from its
// answer.
func (w *Worker) apply(workCtx, fetchCtx context.Context, d *delivery, h handlers.Handler) decision {
	log := w.log.With("disputeRequestId", d.id, "provider", d.provider, "action", d.action)
	claim := d.claim
	if claim.Status == TakenOver {
		log.Warn("took over a command whose holder lost its lease; reconciling with the provider", "epoch", claim.Epoch)
	}
	lockKey := handlers.LockKey(h, d.cmd)
	if lockKey != "" {
		got, err := w.store.Lock(workCtx, lockKey, d.owner)
		if err != nil || !got {
			// Another action on the same dispute is running (or Redis is
			// down): give the command back and try again shortly.
			if lastDelivery(d) {
				return disputeBusy(claim)
			}
			return releaseAndNak(w.cfg.BackoffBase/2 + w.backoff(1))
		}
		d.lockKey = lockKey
	}
	calls := claim.Calls + 1
	if err := w.store.BeginCall(workCtx, d.id, d.owner, d.epoch, calls); err != nil {
		log.Warn("could not record the provider call; command will be redelivered", "err", err)
		return releaseAndNak(w.backoff(1))
	}
	call := &handlers.Call{
		Provider: d.provider, Action: d.action, Command: d.cmd,
		Attempt: int(calls), Takeover: claim.Status == TakenOver, Recover: claim.Calls > 0,
	}
	resp, err := w.callWithHeartbeat(workCtx, d, h, call)
	dec := w.settle(resp, err, attemptState{
		calls: calls, first: claim.First, now: w.cfg.Now(), delivered: d.meta.NumDelivered,
		maxDeliver: d.maxDeliver, shuttingDown: fetchCtx.Err() != nil,
	})
	if dec.fate == fateNak {
		log.Info("provider call will be retried", "attempt", calls, "delay", dec.delay, "err", err)
	}
	return dec
}

// callWithHeartbeat runs the provider call while renewing the claim's lease,
// the dispute lock and the message's AckWait. If the lease is lost, the call
// is cancelled: not calling is safer than calling twice.
func (w *Worker) callWithHeartbeat(ctx context.Context, d *delivery, h handlers.Handler, call *handlers.Call) (*handlers.Response, error) {
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		// Renewing three times per lease leaves two chances to fail
		// before it runs out.
		t := time.NewTicker(w.cfg.Lease / 3)
		defer t.Stop()
		// The lease was renewed by BeginCall just before the call. If Redis
		// cannot be reached, the lease runs out all the same: stop the call
		// before it does, or a new holder could call the provider too.
		renewed := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			_ = d.msg.InProgress()
			err := w.store.Extend(callCtx, d.id, d.owner, d.epoch)
			if err == nil && d.lockKey != "" {
				var got bool
				got, err = w.store.Lock(callCtx, d.lockKey, d.owner)
				if err == nil && !got {
					err = ErrLostClaim
				}
			}
			if errors.Is(err, ErrLostClaim) {
				w.log.Error("lost the command's lease during the provider call; cancelling it", "disputeRequestId", d.id)
				cancel()
				return
			}
			if err == nil {
				renewed = time.Now()
				continue
			}
			if time.Since(renewed) > w.cfg.Lease*2/3 {
				w.log.Error("could not renew the command's lease before it runs out; cancelling the provider call", "disputeRequestId", d.id, "err", err)
				cancel()
				return
			}
			w.log.Warn("could not renew the command's lease", "disputeRequestId", d.id, "err", err)
		}
	}()
	return h.Apply(callCtx, call)
}
