// Package sandbox is a faithful emulator of the four payment providers
// disputesync talks to (docs/contract.md section 5, the providers' API pages): the disputeapi
// list API and its actions, Alipay acceptDispute / supplyDefenseDocument,
// Alipay+ initiateEscalation and the Ingenico Dispute REST service. One
// *Server is an http.Handler; `disputesync sandbox` and `dev` serve it, tests
// embed it with httptest.
//
// It behaves as the provider documents say, not as a client happens to send:
// it verifies the Alipay-style RSA signatures and the Ingenico v1HMAC header
// with Keys, signs its Alipay-style answers, and enforces every field rule
// and result code of the seeds. Control methods (and the same under
// /_sandbox/ over HTTP) expose the ground truth and every effect an action
// endpoint applied, so tests can prove "applied exactly once", and inject
// faults per provider and endpoint.
//
// # Readings where the seeds are silent (the sandbox's documented choices)
//
// disputeapi list:
//   - the creation time of a record is its disputes_date; the window
//     [from_created_at, to_created_at] is inclusive at second precision and
//     records come newest first (ties: the later created first). With
//     Config.CreatedPrecision finer than a second (`--created-precision`),
//     the stored creation time has a sub-second part that disputes_date does
//     not show, and the window compares it with its whole-second bounds: a
//     record shown at 12:00:00 is then not in [.., 12:00:00] unless its
//     fraction is zero;
//   - times are accepted with any numeric offset (25 characters, RFC 3339);
//     the sandbox writes +08:00; from after to is PARAM_ERROR;
//   - type "dispute" returns every dispute created in the window;
//     type "disputes-period" returns those of them still inside their appeal
//     period (disputes_period_from <= now <= disputes_period_to) and not
//     closed (Config.PeriodReading PeriodView, the default). Under
//     PeriodCategory (`--period-reading category`) the type is a category
//     instead: each record is listed under exactly one type,
//     "disputes-period" for the appeal stages (disputes_type
//     second_chargeback or pre_arbitration) whatever their status or
//     period, "dispute" for every other record;
//   - a page past the end answers code "200" with an empty list;
//   - status (list API): "close" when the dispute is processed (closed, or
//     defended by the merchant), else "pending" when disputes_times > 1 or
//     the reply deadline is still ahead, else "noaction". A Status given
//     explicitly to CreateDispute / UpdateDispute overrides the derivation
//     (tests use it for opaque values); setting it back to "" derives again.
//   - actions: a closed dispute refuses every action with DISPUTE_ALREADY_CLOSED,
//     a defended one refuses upload/remove/defend with DISPUTE_ALREADY_DEFENDED;
//     abandoning sets disputes_status "closed", defending sets
//     disputes_appeal_status "appealed" and the comment.
//
// Alipay and Alipay+:
//   - a Request-Time more than 5 minutes from the sandbox clock, missing, or
//     unreadable, is refused with INVALID_SIGNATURE (a replayed or unverifiable
//     signature); unknown or missing Client-Id gives INVALID_CLIENT;
//   - every answer, including refusals and injected faults, is signed;
//   - supplyDefenseDocument: disputeEvidence required, base64, at most
//     1 000 000 characters; disputeEvidenceFormat optional, one of PDF, JPG,
//     JPEG, PNG (case-insensitive); codes as acceptDispute;
//   - initiateEscalation: the 360-day and 25-day windows answer PROCESS_FAIL
//     (the seed names no dedicated code); only SUCCESS answers are stored for
//     disputeRequestId idempotency, so a refused request can be corrected and
//     sent again with the same id.
//
// Ingenico: the secret API key is used as the raw bytes of its string; the
// Date header must be within 5 minutes (else, or on a bad signature, HTTP 401
// MISSING_OR_INVALID_AUTHORIZATION); a merchantId other than the configured
// one is HTTP 403 ACCESS_TO_MERCHANT_NOT_ALLOWED; an unknown dispute HTTP 404
// UNKNOWN_DISPUTE_ID; a missing upload field HTTP 400
// PARAMETER_NOT_FOUND_IN_REQUEST (with propertyName), a bad one
// REQUEST_PARAMETER_INVALID; injected errors HTTP 500 UNKNOWN_SERVER_ERROR,
// throttling HTTP 429 TOO_MANY_REQUESTS. Files can be uploaded in DRAFT and
// CREATED; cancel is allowed in DRAFT and CREATED; a repeated
// X-GCS-Idempotence-Key returns the stored status and body (any answer the
// sandbox actually processed, not an injected fault), with the header
// X-GCS-Idempotence-Request-Timestamp, and applies nothing.
//
// Faults: an injected error, throttle, timeout or malformed answer applies
// nothing; ApplyThenFail applies the effect (and stores the idempotent answer)
// and then answers the provider's error or drops the connection, half each.
//
// Endpoint names (for SetFaults, Requests "provider.endpoint" and
// Effect.Operation): disputeapi list, abandon, documents/upload,
// documents/remove, defend, required-documents; alipay acceptDispute,
// supplyDefenseDocument; alipayplus initiateEscalation; ingenico get, submit,
// cancel, files. Unknown /ams/ and /aps/ paths answer NO_INTERFACE_DEF.
//
// Effects: an action endpoint records one Effect per state change it applied.
// The DisputeRequestID of an effect is the provider's own field where it has
// one (Alipay+ disputeRequestId, Ingenico X-GCS-Idempotence-Key), else the
// optional request header "Dispute-Request-Id" that a client may send to help
// attribution; IdempotencyKey is the Ingenico key or the header
// "Idempotency-Key".
package sandbox
