package worker

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/disputesync/disputesync/handlers"
)

// attemptState is what settle needs to know besides the handler's answer.
type attemptState struct {
	calls        int64 // provider calls made, this one included
	first        time.Time
	now          time.Time
	delivered    uint64 // JetStream delivery count of this message
	maxDeliver   int
	shuttingDown bool
}

// settle decides from a provider call's answer: a result to store and
// publish (fateFinish), or a redelivery that releases the claim (fateNak).
// Its rows are tested in decision_test.go.
func (w *Worker) settle(resp *handlers.Response, err error, st attemptState) decision {
	var rule *handlers.RuleError
	var invalid *handlers.InvalidError
	result := func(outcome, code, message, dlqReason string) decision {
		d := decision{fate: fateFinish, outcome: outcome, code: code, message: message,
			dlqReason: dlqReason, attempts: int(st.calls)}
		if resp != nil && len(resp.Body) > 0 && json.Valid(resp.Body) {
			d.response = resp.Body
		}
		return d
	}
	switch {
	case err == nil:
		if resp != nil {
			return result(Succeeded, resp.Code, resp.Message, "")
		}
		return result(Succeeded, "", "", "")
	case errors.As(err, &rule):
		return result(Rejected, rule.Code, rule.Message, ReasonRule)
	case errors.As(err, &invalid):
		return result(Rejected, CodeInvalidCommand, invalid.Error(), ReasonInvalid)
	case handlers.IsPermanent(err):
		return result(Failed, codeOr(err, "FAILED"), err.Error(), "")
	case st.shuttingDown:
		// Our own shutdown is a plain redelivery, not a failure.
		return releaseAndNak(shutdownRedelivery)
	}
	// Retryable. Bounded by provider calls, by a deadline since the first
	// claim, and by the consumer's MaxDeliver (the last allowed delivery must
	// end here, with a dead letter, not with the server's one-shot advisory).
	if st.calls >= int64(w.cfg.MaxAttempts) || st.now.Sub(st.first) >= w.cfg.RetryDeadline || isLast(st.delivered, st.maxDeliver) {
		return result(Failed, codeOr(err, CodeRetriesExhausted), "retries exhausted: "+err.Error(), ReasonRetriesExhausted)
	}
	delay := w.backoff(st.calls)
	if d, ok := handlers.RetryDelay(err); ok && d > delay {
		delay = d
	}
	return releaseAndNak(delay)
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
