package worker

import (
	"encoding/json"
	"time"
)

// Outcomes of a command (docs/contract.md section 2).
const (
	Succeeded = "succeeded"
	Failed    = "failed"
	Rejected  = "rejected"
)

// Codes the worker itself gives.
const (
	CodeInvalidCommand        = "INVALID_COMMAND"
	CodeRepeatReqInconsistent = "REPEAT_REQ_INCONSISTENT"
	CodeProviderNotConfigured = "PROVIDER_NOT_CONFIGURED"
	CodeRetriesExhausted      = "RETRIES_EXHAUSTED"
	// CodeDisputeBusy: another action on the same dispute held it on every
	// delivery, and no provider call was made.
	CodeDisputeBusy = "DISPUTE_BUSY"
	// CodeIdempotencyUnavailable: the idempotency store could not be
	// reached on any delivery; no provider call was made.
	CodeIdempotencyUnavailable = "IDEMPOTENCY_UNAVAILABLE"
	// CodeOutcomeUnknown: the worker stopped without learning whether the
	// provider applied the command (an earlier call may have landed, or
	// another worker was still applying it). Check the dispute.
	CodeOutcomeUnknown = "OUTCOME_UNKNOWN"
)

// Result is the message published on P.results.<provider>.<action>.
type Result struct {
	DisputeRequestID string          `json:"disputeRequestId"`
	Provider         string          `json:"provider"`
	Action           string          `json:"action"`
	DisputeID        string          `json:"disputeId,omitempty"`
	Outcome          string          `json:"outcome"`
	Code             string          `json:"code"`
	Message          string          `json:"message,omitempty"`
	Attempts         int             `json:"attempts"`
	Replayed         bool            `json:"replayed"`
	Response         json.RawMessage `json:"response,omitempty"`
	RequestedBy      string          `json:"requestedBy,omitempty"`
	CompletedAt      time.Time       `json:"completedAt"`
}

// Headers of results and dead letters.
const (
	HeaderMsgID            = "Nats-Msg-Id"
	HeaderDisputeRequestID = "Dispute-Request-Id"
	// HeaderCommandSequence is the P_ACTIONS stream sequence of the command
	// message a result answers (an addition to the contract): a publisher
	// finds the answer to its own publish by the sequence of its PubAck,
	// never taking the result of another command with the same
	// disputeRequestId for its own.
	HeaderCommandSequence = "Command-Sequence"
	HeaderDLQReason       = "Dlq-Reason"
	HeaderDLQError        = "Dlq-Error"
	HeaderDLQSubject      = "Dlq-Original-Subject"
	HeaderDLQSequence     = "Dlq-Original-Sequence"
	HeaderDLQDeliveries   = "Dlq-Deliveries"
)

// Dead-letter reasons (a bounded set: they are metric labels).
const (
	ReasonInvalid          = "invalid"
	ReasonRule             = "rule"
	ReasonInconsistent     = "inconsistent"
	ReasonRetriesExhausted = "retries_exhausted"
	ReasonNotConfigured    = "not_configured"
)
