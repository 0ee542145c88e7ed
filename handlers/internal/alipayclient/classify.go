package alipayclient

import (
	"fmt"

	"github.com/disputesync/disputesync/handlers"
)

// Kind is what a result code means for the command.
type Kind int

const (
	// ByStatus: the code is not in the table; resultStatus decides
	// (S succeeded, F failed, U retry).
	ByStatus Kind = iota
	// Succeeded: the provider applied the request.
	Succeeded
	// Failed: the provider refused for good.
	Failed
	// Retry: unknown outcome; retry with the same parameters.
	Retry
	// Throttled: retry, after a longer delay (REQUEST_TRAFFIC_EXCEED_LIMIT).
	Throttled
	// AlreadyApplied: the provider says the request was made before
	// (REPEAT_REQUEST). Proof of an earlier attempt's effect when the call is
	// a recovery; a refusal otherwise.
	AlreadyApplied
)

func (k Kind) String() string {
	switch k {
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	case Retry:
		return "retry"
	case Throttled:
		return "throttled"
	case AlreadyApplied:
		return "already-applied"
	}
	return "by-status"
}

// Table maps a provider's result codes to their Kind. Each provider package
// owns one, covering every code of its seed.
type Table map[string]Kind

// statusKind is the documented meaning of resultStatus.
func statusKind(status string) Kind {
	switch status {
	case "S":
		return Succeeded
	case "F":
		return Failed
	case "U":
		return Retry
	}
	return ByStatus
}

// Kind returns what a result means. A code the table knows must come with a
// consistent status (an S code with S, any other code without S); an
// inconsistent pair, or an unknown status, is an unknown outcome (Retry),
// because success must never be inferred from a contradiction.
func (t Table) Kind(r Result) Kind {
	st := statusKind(r.Status)
	if st == ByStatus {
		return Retry
	}
	k, ok := t[r.Code]
	if !ok {
		return st
	}
	if (k == Succeeded) != (st == Succeeded) {
		return Retry
	}
	return k
}

// MessageAlreadyApplied is the Response.Message of a REPEAT_REQUEST taken as
// proof that an earlier attempt of the same command took effect.
const MessageAlreadyApplied = "the provider answered REPEAT_REQUEST to a retried command: an earlier attempt was applied"

// Classify turns a verified answer into the handler's outcome (see the
// handlers package doc): a *handlers.Response for success, a Permanent
// *handlers.ProviderError for a refusal, a RetryAfter error for throttling,
// and a plain error for an unknown outcome.
func Classify(provider, operation string, t Table, ans *Answer, recover bool) (*handlers.Response, error) {
	pe := &handlers.ProviderError{
		Code:       ans.Result.Code,
		Message:    ans.Result.Message,
		HTTPStatus: ans.HTTPStatus,
		Body:       ans.Body,
	}
	wrap := func(e error) error { return fmt.Errorf("%s %s: %w", provider, operation, e) }
	kind := t.Kind(ans.Result)
	if kind == Succeeded && (ans.HTTPStatus < 200 || ans.HTTPStatus > 299) {
		// A success result under an error status contradicts itself.
		kind = Retry
	}
	switch kind {
	case Succeeded:
		return &handlers.Response{Code: ans.Result.Code, Message: ans.Result.Message, Body: ans.Body}, nil
	case AlreadyApplied:
		if recover {
			return &handlers.Response{Code: ans.Result.Code, Message: MessageAlreadyApplied, Body: ans.Body}, nil
		}
		return nil, handlers.Permanent(wrap(pe))
	case Failed:
		return nil, handlers.Permanent(wrap(pe))
	case Throttled:
		return nil, handlers.RetryAfter(wrap(pe), max(ans.RetryAfter, ThrottleDelay))
	default:
		return nil, wrap(pe)
	}
}
