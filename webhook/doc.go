// Package webhook receives the providers' notifications (docs/contract.md section
// 6) on --webhook-addr and turns them into the same dispute events as
// polling:
//
//	POST /webhooks/alipay/notifyDispute            Alipay notifyDispute
//	POST /webhooks/alipayplus/responseEscalation   Alipay+ answering an escalation
//	POST /webhooks/disputeapi/notify               the list API's PSP, by event_code
//
// # Order of work in one request
//
//  1. The body is read, at most MaxBodyBytes (413 beyond). Nothing else of
//     the request is looked at before step 2 except the headers the
//     authenticity check itself needs.
//  2. Authenticity: the Alipay-style request signature (Client-Id,
//     Request-Time, Signature over "POST <path>\n<Client-Id>.<Request-Time>.<body>",
//     verified with the provider's public key) or X-Dispute-Signature
//     "sha256=<hex HMAC-SHA256 of the body>" with the shared secret. A
//     failure answers 401, publishes nothing and counts "unauthenticated".
//  3. The body is parsed strictly (scalars are JSON strings); an authentic
//     but malformed body answers 400 and counts "invalid".
//  4. A repeat is recognised (below) and answered with success, counted as
//     "duplicate", with nothing published.
//  5. The work: Alipay+ responseEscalation closes the escalation in the
//     alipayplus Ledger (the local escalation rules then allow a second one);
//     a disputeapi notification's record goes through the shared change
//     detector (poller.Detector.Observe, list type "dispute"), so
//     dispute.opened / updated / closed keep the once-per-state rule whoever
//     saw the state first; then one dispute.notified event.
//  6. Success is answered only after JetStream acknowledged every event. Any
//     failure (NATS or Redis unavailable, a timeout) answers HTTP 500 with
//     the provider's retry-inducing body, so the provider retries; the retry
//     redoes steps 5 and 6, which are idempotent.
//
// # What makes a repeat recognisable
//
// Every notification has an identity: the disputeapi notify_id, and for the
// Alipay and Alipay+ notifications, which carry no notification id, the
// SHA-256 of the body in canonical JSON form (keys sorted, no insignificant
// white space), so that a retry that re-signs with a new Request-Time, or
// re-serialises the same content, is the same notification, while a
// different answer for the same escalation is a new one. Three layers use it:
//
//   - the dispute.notified event's id and Nats-Msg-Id derive from it, so
//     JetStream's duplicate window (the events stream's, 24 h by default)
//     drops a second copy, even when two deliveries race;
//   - the state events derive their ids from the dispute's state and the
//     snapshot bucket keeps the last state for ever, so a repeated record
//     gives no second dispute.opened / updated / closed at any age;
//   - beyond the duplicate window, a marker in Redis
//     (names.RedisKey("webhook", provider, sha256(identity)), kept for
//     SeenRetention, default 30 days) written after the events are stored.
//     A notification whose marker exists is answered as a duplicate without
//     any publish. Without Redis (Config.Redis nil) repeats are dropped by
//     JetStream within its window only (and counted as "duplicate" from its
//     answer).
//
// The marker also keeps the time of the first receipt, to the nanosecond,
// across our own failed attempts: the detector orders observations
// (Notifier.ObserveAt) by it, as the time the notification's record is
// known to have been current. Rounded to the millisecond it could fall
// before a poll page requested just ahead of the pushed change, and that
// page's older state would be published again.
//
// # Alipay notifyDispute: notified only
//
// Alipay pushes events about a dispute (DISPUTE_CREATED, DEFENSE_DUE_ALERT,
// DEFENSE_SUPPLIED, DISPUTE_JUDGED, DISPUTE_CANCELLED, ...), not the
// dispute's whole state: fields differ by type, and nothing orders two
// notifications (a retried DEFENSE_DUE_ALERT can arrive after
// DISPUTE_JUDGED). Turned into detector records they would make spurious
// "updated" changes for absent fields and could reopen a judged dispute. As
// Alipay has no list API to correct that, a notifyDispute gives only its
// dispute.notified event (source "alipay", notificationType the
// disputeNotificationType, subject the disputeId), and subscribers read the
// state change from data.notification.
//
// The disputeapi data is one whole list-API record, the same as polling
// reads, but the record carries no version, so two observations of a
// dispute can only be ordered by when they were known to be current. A poll
// page read just before a pushed change and observed just after it, or a
// notification delivered after a newer poll, would publish a change back to
// the older state (and the next poll the newer state again). The detector
// can refuse such stale observations if it records an "as of" time per
// snapshot: Notifier.ObserveAt is that method, called with the
// notification's first receipt as its time (the poller passes the time its
// page request started).
//
// # Alipay+ responseEscalation
//
// notificationType "responseEscalation", subject the escalation's
// disputeId. The Ledger is closed first (it is idempotent: the first close
// time wins); an escalation disputesync did not start (ErrUnknownEscalation)
// is logged and still accepted. Our answer, success or not, is the result
// object signed like a provider's response: headers Client-Id, Response-Time
// and Signature over "POST <path>\n<Client-Id>.<Response-Time>.<body>", with
// the merchant (MPP) private key, the same key that signs initiateEscalation
// requests, so Alipay+ (and the sandbox) verify it with the merchant public
// key they already hold (sandbox.TestKeys.AlipayPlusMerchantPublicPEM).
//
// # Replays
//
// Request-Time is signed but not required to be recent: whether providers
// re-sign their retries is not documented, and a strict window would turn a
// late retry into a lost notification. A replayed authentic notification is
// a repeat and is dropped as above.
package webhook
