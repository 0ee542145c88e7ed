// Package handlers is the contract between the worker and the provider
// packages (alipay, alipayplus, ingenico, disputeapi).
//
// The worker decodes an action command, asks the Mux for the Handler of its
// provider and action, calls Validate (pure, no I/O) and then Apply. What
// Apply returns decides the command's outcome, and the worker settles the
// message from that outcome in exactly one place:
//
//   - nil error: the provider applied the command ("succeeded").
//   - a *RuleError: a documented provider rule was broken and checked locally;
//     nothing was sent ("rejected", with the provider's own code).
//   - an *InvalidError: the command itself is malformed ("rejected",
//     INVALID_COMMAND); Validate normally catches these first.
//   - an error marked Permanent: the provider refused for good, or the
//     outcome is known never to change ("failed", never retried). Wrap a
//     *ProviderError inside to carry the provider's code.
//   - an error marked RetryAfter: retry, but not before the given delay
//     (REQUEST_TRAFFIC_EXCEED_LIMIT, HTTP 429).
//   - any other error: retryable, with the worker's jittered backoff, using
//     the same parameters (an unknown outcome: U results, timeouts, no
//     response, HTTP 5xx).
//
// Retryable is the default; permanent is always explicit. A handler must
// never report success for a response it could not verify.
//
// After a lease takeover (Call.Takeover), an earlier holder may already have
// reached the provider. The handler must then make the call safe: send the
// provider's own idempotency key (Alipay+ disputeRequestId, Ingenico
// X-GCS-Idempotence-Key), read the provider's state first, or treat the
// provider's "already done" answer (REPEAT_REQUEST) as success.
//
// Every provider package passes the conformance suite in handlerstest,
// which checks these rules against the project's sandbox.
package handlers
