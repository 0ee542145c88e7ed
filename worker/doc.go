// Package worker consumes action commands from P_ACTIONS and applies each
// through its provider's handler, at most once per disputeRequestId (a
// Redis claim, docs/contract.md section 3), publishing one result per
// command message (docs/contract.md section 2).
//
// Every path through handling a delivery ends in one decision: reject,
// finish (store, publish, ack), replay, give up, ack, nak with a delay, or
// term. Deciding and carrying out are apart, by file:
//
//   - consume.go fetches deliveries and runs them under two contexts:
//     fetchCtx ends when shutdown begins, workCtx (the provider calls in
//     flight) ShutdownGrace later;
//   - handle.go decides: admission, the claim, the dispute lock and the
//     provider call;
//   - settle.go turns a provider call's answer into a decision;
//   - fate.go carries a decision out: carryOut is the only code that acks,
//     naks or terminates a message, and the only caller of publish.go's
//     results and dead letters; lastFate is the one place where a nak on
//     the last allowed delivery becomes a give-up;
//   - idempotency.go is the Redis claim store, command.go the command's
//     strict decoding, worker.go the configuration and named timeouts.
//
// decision_test.go tests the table row by row without servers; the other
// tests run it against NATS JetStream and Redis.
package worker
