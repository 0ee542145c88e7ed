package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// fate is what becomes of a delivery.
//
// Every delivery's last fate either publishes a result under its own
// Command-Sequence (fateReject, fateFinish, fateReplay, fateGiveUp: the
// client waiting on that publish gets its answer) or leaves the message for
// redelivery (fateNak), except fateTerm and fateAck, which are decided only
// where an answer for the sequence is already out or cannot be given (see
// each). A copy that finds its command held by another worker on its last
// delivery waits for the holder (awaitHolder) and gets a replayed answer,
// or, if the wait ends first, OUTCOME_UNKNOWN.
type fate int

const (
	// fateNak redelivers the message after delay (releasing the claim
	// first if release is set). On the last allowed delivery, which
	// JetStream would not honour, it becomes fateGiveUp (see lastFate).
	fateNak fate = iota + 1
	// fateAck removes the message: its answer is already published.
	fateAck
	// fateTerm removes the message without an answer of its own: decided
	// only for a message without metadata (it cannot be answered: no
	// sequence); the publishing fates end in it with a dead letter.
	fateTerm
	// fateReject publishes a rejected result and writes a dead letter with
	// the raw bytes, then terminates. Nothing is stored in Redis, so a
	// corrected command may reuse the id (as Stripe does).
	fateReject
	// fateFinish stores the result under the claim, writes the dead letter
	// if dlqReason is set, publishes the result, then acks (or terminates,
	// with a dead letter).
	fateFinish
	// fateReplay answers from the stored result: published as the original
	// if it may not have been, and as a replayed copy to any other message.
	fateReplay
	// fateGiveUp ends the last delivery with a failed result and a dead
	// letter, best effort, then terminates: never silently.
	fateGiveUp
	// fateApply is not a fate: afterClaim's way of saying "call the
	// provider", which then decides.
	fateApply
)

// decision is how one delivery ends: every path through handling a
// delivery ends in one, and carryOut is the only code that carries one out.
type decision struct {
	fate      fate
	outcome   string // Succeeded, Failed, Rejected (a result's fates)
	code      string
	message   string
	attempts  int             // provider calls made (fateFinish)
	response  json.RawMessage // the provider's answer (fateFinish)
	dlqReason string          // a dead letter's reason; fateFinish with one terminates
	// termReason is the reason a fateTerm gives the server.
	termReason string
	delay      time.Duration // fateNak
	release    bool          // fateNak: release the claim first
}

func nakAfter(delay time.Duration) decision { return decision{fate: fateNak, delay: delay} }

func releaseAndNak(delay time.Duration) decision {
	return decision{fate: fateNak, delay: delay, release: true}
}

func reject(code, message, reason string) decision {
	return decision{fate: fateReject, outcome: Rejected, code: code, message: message, dlqReason: reason}
}

func giveUp(code, message string) decision {
	return decision{fate: fateGiveUp, outcome: Failed, code: code, message: message, dlqReason: ReasonRetriesExhausted}
}

// lastFate is the one place where a nak on the last allowed delivery
// becomes a give-up: JetStream would not redeliver it, so the command ends
// with a failed result and a dead letter rather than silently.
func lastFate(d *delivery, dec decision) decision {
	if dec.fate == fateNak && lastDelivery(d) {
		return giveUp(CodeRetriesExhausted, "the last allowed delivery could not be completed (raise --max-deliver)")
	}
	return dec
}

// carryOut carries a decision out. A step that publishes (reject, finish,
// replay, give up) ends in a message fate (ack, nak or term), carried out
// in turn.
func (w *Worker) carryOut(ctx context.Context, d *delivery, dec decision) {
	if d.lockKey != "" {
		defer func() { _ = w.store.Unlock(ctx, d.lockKey, d.owner) }()
	}
	for {
		dec = lastFate(d, dec)
		switch dec.fate {
		case fateNak:
			if dec.release && d.held {
				_ = w.store.Release(ctx, d.id, d.owner, d.epoch)
			}
			if err := d.msg.NakWithDelay(dec.delay); err != nil {
				w.log.Warn("nak failed; the message will come back after AckWait", "err", err)
			}
			return
		case fateAck:
			w.ack(ctx, d)
			return
		case fateTerm:
			if dec.termReason == "" {
				_ = d.msg.Term()
			} else {
				_ = d.msg.TermWithReason(dec.termReason)
			}
			return
		case fateReject:
			dec = w.rejectNow(ctx, d, dec)
		case fateFinish:
			dec = w.finish(ctx, d, dec)
		case fateReplay:
			dec = w.replay(ctx, d)
		case fateGiveUp:
			// The claim goes with the delivery: left held, it would make
			// every republish wait out the lease, and one arriving on its
			// own last delivery be terminated unanswered. Released (never
			// stored: the failure is this delivery's, not the command's),
			// a republish reconciles with the provider at once. A stale
			// holder's release changes nothing.
			if d.held {
				_ = w.store.Release(ctx, d.id, d.owner, d.epoch)
			}
			dec = w.giveUpNow(ctx, d, dec)
		default:
			w.log.Error("no fate decided; the message will come back after AckWait", "fate", dec.fate, "disputeRequestId", d.id)
			return
		}
	}
}

func (w *Worker) newResult(d *delivery, dec decision) *Result {
	res := &Result{
		DisputeRequestID: d.id, Provider: d.provider, Action: d.action,
		Outcome: dec.outcome, Code: dec.code, Message: dec.message, Attempts: dec.attempts,
		Response: dec.response, CompletedAt: w.cfg.Now().UTC().Truncate(time.Millisecond),
	}
	if d.cmd != nil {
		res.DisputeID, res.RequestedBy = d.cmd.DisputeID, d.cmd.RequestedBy
	}
	return res
}

// finish stores the result in Redis, writes a dead letter if asked,
// publishes the result, and only then removes the message.
func (w *Worker) finish(ctx context.Context, d *delivery, dec decision) decision {
	res := w.newResult(d, dec)
	body, _ := json.Marshal(res)
	var winner []byte
	var lost bool
	err := retry(ctx, storeRetries, func() error {
		var err error
		winner, err = w.store.Complete(ctx, d.id, d.owner, d.epoch, body, d.meta.Sequence.Stream)
		if errors.Is(err, ErrLostClaim) {
			lost = true
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		// The outcome is known but cannot be stored: redeliver; the next
		// holder takes over after the lease and reconciles with the provider.
		w.log.Error("could not store the result; command will be redelivered", "disputeRequestId", d.id, "outcome", res.Outcome, "err", err)
		return nakAfter(w.cfg.Lease)
	case winner != nil:
		// A newer holder finished first; its result stands.
		w.log.Warn("a newer holder finished the command first; its result stands", "disputeRequestId", d.id)
		return decision{fate: fateAck}
	case lost:
		// A newer holder has the command and will publish its own result:
		// ours must not become the official one.
		w.log.Warn("lost the command to a newer holder before storing the result; leaving it to that holder", "disputeRequestId", d.id, "outcome", res.Outcome)
		return nakAfter(w.cfg.Lease)
	}
	// The dead letter goes first: once the result is marked published, a
	// redelivery only acks, so a dead letter written after it could be lost.
	// Its Nats-Msg-Id (dlq:<seq>) makes a second write harmless.
	if dec.dlqReason != "" {
		if err := w.deadLetter(ctx, d, dec.dlqReason, res.Code+": "+res.Message); err != nil {
			w.log.Error("could not write the dead letter; command will be redelivered", "disputeRequestId", d.id, "err", err)
			return nakAfter(w.backoff(1))
		}
	}
	if _, err := w.publishResult(ctx, d.provider, d.action, d.id, body, d.id, d.meta.Sequence.Stream); err != nil {
		w.log.Error("could not publish the result; command will be redelivered", "disputeRequestId", d.id, "err", err)
		return nakAfter(w.backoff(1))
	}
	_ = w.store.MarkPublished(ctx, d.id)
	w.m.Actions.WithLabelValues(d.provider, d.action, res.Outcome).Inc()
	w.log.Info("command finished", "disputeRequestId", d.id, "provider", d.provider, "action", d.action,
		"outcome", res.Outcome, "code", res.Code, "attempts", res.Attempts)
	if dec.dlqReason != "" {
		return decision{fate: fateTerm, termReason: dec.dlqReason}
	}
	return decision{fate: fateAck}
}

// replay answers a command that is already done.
func (w *Worker) replay(ctx context.Context, d *delivery) decision {
	claim := d.claim
	if !claim.Published {
		// The holder finished but its result may not have reached JetStream:
		// publish it now, as the original (the Nats-Msg-Id dedups), answering
		// the delivery that completed it.
		dup, err := w.publishResult(ctx, d.provider, d.action, d.id, claim.Result, d.id, claim.Seq)
		if err != nil {
			return nakAfter(w.backoff(1))
		}
		_ = w.store.MarkPublished(ctx, d.id)
		var res Result
		// Counted once: only if it was not in the stream already.
		if !dup && json.Unmarshal(claim.Result, &res) == nil {
			w.m.Actions.WithLabelValues(d.provider, d.action, res.Outcome).Inc()
		}
	}
	// A redelivery of the very message that completed it (its ack was
	// lost) has nothing new to say; any other message, a republish, still
	// gets its replayed answer (docs/contract.md section 2).
	if claim.Seq != d.meta.Sequence.Stream {
		var res Result
		if err := json.Unmarshal(claim.Result, &res); err != nil {
			w.log.Error("stored result is unreadable", "disputeRequestId", d.id, "err", err)
			return nakAfter(w.backoff(1))
		}
		res.Replayed = true
		body, _ := json.Marshal(res)
		msgID := d.id + ":replay:" + strconv.FormatUint(d.meta.Sequence.Stream, 10)
		if _, err := w.publishResult(ctx, d.provider, d.action, d.id, body, msgID, d.meta.Sequence.Stream); err != nil {
			return nakAfter(w.backoff(1))
		}
	}
	return decision{fate: fateAck}
}

// rejectNow answers a command that is never sent to the provider.
func (w *Worker) rejectNow(ctx context.Context, d *delivery, dec decision) decision {
	body, _ := json.Marshal(w.newResult(d, dec))
	msgID := resultToken(d.id) + ":" + dec.dlqReason + ":" + strconv.FormatUint(d.meta.Sequence.Stream, 10)
	if _, err := w.publishResult(ctx, resultToken(d.provider), resultToken(d.action), d.id, body, msgID, d.meta.Sequence.Stream); err != nil {
		w.log.Error("could not publish a rejection; command will be redelivered", "err", err)
		return nakAfter(w.backoff(1))
	}
	if err := w.deadLetter(ctx, d, dec.dlqReason, dec.code+": "+dec.message); err != nil {
		w.log.Error("could not write the dead letter; command will be redelivered", "err", err)
		return nakAfter(w.backoff(1))
	}
	provider, action := metricLabels(d)
	w.m.Actions.WithLabelValues(provider, action, Rejected).Inc()
	w.log.Info("command rejected", "disputeRequestId", d.id, "subject", d.msg.Subject(), "code", dec.code, "message", dec.message)
	return decision{fate: fateTerm, termReason: dec.dlqReason}
}

// giveUpNow ends a command on its last delivery: a failed result and a
// dead letter, each best effort (there is no later delivery to retry on).
func (w *Worker) giveUpNow(ctx context.Context, d *delivery, dec decision) decision {
	body, _ := json.Marshal(w.newResult(d, dec))
	msgID := d.id + ":giveup:" + strconv.FormatUint(d.meta.Sequence.Stream, 10)
	if _, err := w.publishResult(ctx, d.provider, d.action, d.id, body, msgID, d.meta.Sequence.Stream); err != nil {
		w.log.Error("could not publish a failure on the last delivery", "disputeRequestId", d.id, "err", err)
	}
	if err := w.deadLetter(ctx, d, dec.dlqReason, dec.code+": "+dec.message); err != nil {
		w.log.Error("could not write the dead letter on the last delivery", "disputeRequestId", d.id, "err", err)
	}
	provider, action := metricLabels(d)
	w.m.Actions.WithLabelValues(provider, action, Failed).Inc()
	return decision{fate: fateTerm, termReason: dec.dlqReason}
}

// lastDelivery reports whether this is the consumer's last allowed delivery.
func lastDelivery(d *delivery) bool {
	return d.meta != nil && isLast(d.meta.NumDelivered, d.maxDeliver)
}

func isLast(delivered uint64, maxDeliver int) bool {
	return maxDeliver > 0 && delivered >= uint64(maxDeliver)
}
