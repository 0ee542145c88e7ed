// Package ingenico applies disputesync's Ingenico Connect actions
// (upload_file, submit_dispute, cancel_dispute) through the Dispute REST
// service of Ingenico Connect, docs/contract.md section 5.
//
// Every request carries a Date header (RFC 1123, GMT), the command's
// disputeRequestId as X-GCS-Idempotence-Key, and a "GCS v1HMAC" Authorization
// header computed by internal/gcs. Date and signature are added by the
// client's transport as the request goes on the wire, after the rate
// limiter's wait and after every other header is set. Because
// Ingenico answers a repeated idempotence key with the first request's
// outcome, recovery after an unknown outcome (handlers.Call.Recover) is
// simply the same request sent again with the same key.
//
// Classification of answers (one table, in classify.go):
//
//	2xx, JSON body                 succeeded; code = dispute status ("CREATED") or HTTP_<status>
//	2xx, body unreadable/no file id retryable (the same key makes a resend safe)
//	409                            retryable (the idempotence key is still being processed)
//	429                            RetryAfter (Retry-After header, else 5 s)
//	any error with IO_ERROR        retryable
//	other 4xx                      failed, permanent; code = errors[0].id (else errors[0].code, else HTTP_<status>)
//	5xx, other statuses, transport retryable (redirects are not followed)
//
// Command params use Ingenico's own field names. submit_dispute and
// cancel_dispute take none. upload_file takes fileName (1..255 characters,
// no path separators or control characters), fileType (a MIME type such as
// application/pdf) and either content (base64, at most MaxContentChars
// characters, the evidence limit used across disputesync) or contentRef
// (an object in the evidence bucket, read through Config.Evidence).
// Unknown params fields are rejected.
package ingenico
