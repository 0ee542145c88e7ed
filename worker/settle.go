package worker

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/disputesync/disputesync/handlers"
)

// decision is what to do with a command after one attempt: the single table
// from a handler's outcome to the message's fate. Every row is tested.
type decision struct {
	final     bool   // publish a result and remove the message
	outcome   string // Succeeded, Failed, Rejected (final only)
	code      string
	message   string
	dlqReason string        // non-empty: also write a dead letter, then Term
	delay     time.Duration // !final: redeliver after this
}

// attemptState is what settle needs to know besides the handler's answer.
type attemptState struct {
	calls        int64 // provider calls made, this one included
	first        time.Time
	now          time.Time
	delivered    uint64 // JetStream delivery count of this message
	maxDeliver   int
	shuttingDown bool
}

func (w *Worker) settle(resp *handlers.Response, err error, st attemptState) decision {
	var rule *handlers.RuleError
	var invalid *handlers.InvalidError
	switch {
	case err == nil:
		d := decision{final: true, outcome: Succeeded}
		if resp != nil {
			d.code, d.message = resp.Code, resp.Message
		}
		return d
	case errors.As(err, &rule):
		return decision{final: true, outcome: Rejected, code: rule.Code, message: rule.Message, dlqReason: ReasonRule}
	case errors.As(err, &invalid):
		return decision{final: true, outcome: Rejected, code: CodeInvalidCommand, message: invalid.Error(), dlqReason: ReasonInvalid}
	case handlers.IsPermanent(err):
		return decision{final: true, outcome: Failed, code: codeOr(err, "FAILED"), message: err.Error()}
	case st.shuttingDown:
		// Our own shutdown is a plain redelivery, not a failure.
		return decision{delay: time.Second}
	}
	// Retryable. Bounded by provider calls, by a deadline since the first
	// claim, and by the consumer's MaxDeliver (the last allowed delivery must
	// end here, with a dead letter, not with the server's one-shot advisory).
	if st.calls >= int64(w.cfg.MaxAttempts) || st.now.Sub(st.first) >= w.cfg.RetryDeadline || isLast(st.delivered, st.maxDeliver) {
		return decision{final: true, outcome: Failed, code: codeOr(err, CodeRetriesExhausted),
			message: "retries exhausted: " + err.Error(), dlqReason: ReasonRetriesExhausted}
	}
	delay := w.backoff(st.calls)
	if d, ok := handlers.RetryDelay(err); ok && d > delay {
		delay = d
	}
	return decision{delay: delay}
}

func codeOr(err error, def string) string {
	if c := handlers.Code(err); c != "" {
		return c
	}
	return def
}

// backoff is jittered exponential: base·2^(n-1), capped, drawn from [d/2, d].
func (w *Worker) backoff(n int64) time.Duration {
	d := w.cfg.BackoffBase
	for i := int64(1); i < n && d < w.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.BackoffMax)
	half := d / 2
	return half + rand.N(half+1)
}
