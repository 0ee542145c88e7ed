// Package disputeapi applies disputesync's actions on the list API's PSP
// (docs/contract.md section 5): abandon, upload_document,
// remove_document and submit_defense.
//
// Every call is a JSON POST answered with the envelope {"code","msg","data"};
// a bearer token is sent when configured, and the command's disputeRequestId
// as a Dispute-Request-Id header (for correlation only: the provider knows
// no idempotency key). Classification (classify.go):
//
//	transport failure, HTTP 5xx             retryable
//	HTTP 429                                RetryAfter (Retry-After, else 5 s)
//	HTTP 401, 403                           failed, permanent (HTTP_<status>)
//	code "200" (HTTP 2xx)                   succeeded; code "200", message msg, body the whole answer
//	code "400"                              failed, permanent; code "400", message msg
//	code "500"                              retryable
//	other HTTP 4xx                          failed, permanent (HTTP_<status>)
//	anything else (unreadable, unknown code) retryable: the outcome is unknown
//
// The provider has no idempotency key, so a call that may repeat an earlier
// attempt (handlers.Call.Recover) is made safe by the provider's own state:
// abandon answering "400" DISPUTE_ALREADY_CLOSED, submit_defense answering
// "400" DISPUTE_ALREADY_DEFENDED and remove_document answering "400"
// DOCUMENT_NOT_FOUND are taken as proof that the earlier attempt landed
// (succeeded, with that msg as the result code),
// and upload_document first asks required-documents whether a document with
// the same file_name and SHA-256 is already there, answering with its
// document_id instead of uploading a second copy. Without Recover those
// answers are ordinary failures.
//
// Params use the provider's field names: upload_document takes file_name
// (1..128 characters, not a path), content_type (pdf, doc, docx, xls, xlsx,
// bmp, jpg, jpeg, png or gif, the project's attachment list) and content
// (base64, at most MaxContentChars characters) or contentRef (an object in
// the evidence bucket, read through Config.Evidence); remove_document takes
// document_id; submit_defense takes comment (1..MaxCommentChars characters);
// abandon takes none. disputes_id is the command's disputeId. Unknown params
// fields are rejected.
package disputeapi
