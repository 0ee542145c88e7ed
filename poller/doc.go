// Package poller syncs a provider's dispute list (the disputeapi list API,
// docs/contract.md section 5) into dispute events on JetStream (docs/contract.md
// section 2): completely, cheaply, and safely across restarts and replicas.
//
// # The problem
//
// The list API filters only by creation time ([from_created_at,
// to_created_at], inclusive, second precision), pages by page number, and
// returns records newest first. The provider may keep creation times finer
// than the bounds express: a record whose disputes_date shows 12:00:00 may
// be stored as 12:00:00.5 and then lies outside [.., 12:00:00]. So every
// pair of adjacent windows (full-rescan chunks, split halves) shares its
// boundary second instead of abutting, and a dispute shown at second S is
// looked up in [S, S+1s]. A dispute changes long after it was created,
// so "give me what changed" cannot be asked; and a list that changes while it
// is paged shifts records across page boundaries, so a naive pager both skips
// and repeats records.
//
// # Sync strategy (one cycle, every --poll-interval)
//
//  1. New disputes: the window [watermark - Overlap, now] of list type
//     "dispute". The watermark is the frozen end of the last completed scan of
//     this kind; the overlap (default 10m) covers clock skew between us and
//     the provider and disputes stamped slightly in the past. The first cycle
//     ever has no watermark and starts the full rescan (step 3) instead: that
//     is the initial sync.
//  2. Disputes not yet final: the list type "disputes-period" over the whole
//     lookback returns the disputes still inside their appeal period and not
//     closed: exactly the ones that can still change soon, whatever their
//     age, at the price of their own pages only. The poller keeps an
//     in-memory index of open disputes only (creation time, deadline,
//     pending; about 50 bytes each, nothing for closed ones): "live" entries
//     are the disputes in their appeal period or pending with the reply
//     deadline ahead; "dormant" entries are pending past their deadline and
//     outside their period (counted in disputes_open{deadline="overdue"},
//     revisited only by the full rescan). Each live dispute the period list
//     did not return this cycle (it closed, its period ended, it was deleted)
//     is looked up again in a narrow "dispute" window around its own creation
//     time ([S, S+1s] for a dispute shown at S; lookups within 10 minutes
//     share a window), so its closing is seen
//     in the same cycle. These are "the windows that hold disputes not yet
//     final", rescanned every cycle.
//     The seed's "disputes-period (appeal period)" can also be read as a
//     category, each record listed under exactly one type. The poller
//     starts from the view reading and switches (and keeps the switch in
//     its checkpoint) as soon as the period list returns a record no view
//     would hold: a closed one, or one outside its appeal period. Until then
//     the period list, paged whole every cycle, holds every appeal-stage
//     record anyway, so nothing is missed. Under the category reading new
//     disputes are scanned in both lists, the period list is no longer
//     paged whole (it holds closed records too), every live dispute is
//     looked up in its own list instead, and each full-rescan chunk is paged
//     in both lists. Under either reading, lookups go by window cost: when
//     the lookup windows outnumber the pages of the window spanning them
//     (one probe page gives total_pages), the span is paged instead; and a
//     dispute its own list no longer holds is looked up once in the other
//     list (its type may have changed) before it leaves the index.
//  3. Full rescan: every FullRescanInterval (default 45m, see
//     DefaultFullRescanInterval) the whole lookback
//     (--poll-lookback, default 400 days) is paged with type "dispute", from
//     the newest chunk down, because final disputes can still change: a closed
//     dispute reopens with a second chargeback, and a dormant one (appeal
//     period over) can be closed by the scheme. Chunks adapt their length so
//     they hold about 8 to 40 pages; a cycle spends at most
//     FullRescanPagesPerCycle pages on it and the next cycle resumes.
//
// Every window's end (to_created_at) is frozen when its scan starts, so
// disputes created meanwhile cannot push records onto later pages. The
// total_count of every page is compared with the first page's; if it changed
// (a dispute was deleted, or stamped in the past into the window, or entered
// or left the period list) pages may have shifted, and the window is scanned
// again as two halves, newer first, each checked the same way. Splitting
// converges because changes concentrate near "now", and a window that fits
// on one page cannot change between its pages. A one-second window that
// still changes is paged again up to 3 times; after that a "new" or "full"
// window fails the cycle without advancing its checkpoint, while the open
// scan keeps what it read because it is repeated every cycle anyway.
// Records seen twice (shifted onto the next page) are harmless: the
// detector publishes once per state.
//
// # Checkpoints and restarts
//
// The poller bucket (names.PollerBucket()) holds "<source>.checkpoint": the
// watermark and the full rescan's frozen bounds and cursor. It is written
// after each completed window, and a window completes only after every event
// it caused has its PubAck and every snapshot is written. A restarted poller
// therefore resumes: it pages at most the window it was in, not the whole
// lookback. The in-memory index is rebuilt at start from the snapshot bucket
// (a KV watch, not list pages).
//
// # Change detection (Detector, shared with the webhook)
//
// The snapshot bucket (names.DisputesBucket()) holds, under
// "<source>.<disputeId>", each dispute's normalized Record, its fingerprint
// (a hash of the Record and of the raw record in canonical form: every field
// of the provider's record is state, free-text comments and comment history
// included, so the last event's raw and the snapshot show the provider's
// current record; the list type is not part of the state), a version
// (number of state changes published),
// the raw record and the deadline thresholds already announced. A record whose
// fingerprint equals the snapshot's gives no event. Otherwise the event is
// dispute.opened (first seen; or a closed dispute reopened), dispute.closed
// (closes, or first seen already closed) or dispute.updated with the changed
// field names ("raw" alone when only fields outside the normalized record
// changed, e.g. a comment). dispute.deadline_approaching is published once per threshold
// (--deadline-warnings, default 72h and 24h) while the dispute is pending,
// only for the tightest threshold crossed when several are.
//
// The event id (and Nats-Msg-Id) is a hash of (source, dispute id, type,
// version, fingerprint[, deadline, threshold]): the same state seen again
// after a crash between the PubAck and the snapshot write, by an overlapping
// window, or by the webhook at the same time, gets the same id, and the
// events stream's duplicate window drops the copy. After that window the
// snapshot still prevents a second event, because it is written (with
// optimistic concurrency, re-deciding on a conflict) after the PubAck.
//
// # One active poller per source
//
// A lease "<source>.lease" in the poller bucket, created or updated with the
// last revision (optimistic concurrency). The holder renews it every TTL/3;
// a standby takes it over once its revision has not changed for a whole TTL
// on the standby's own clock. Before every publish and checkpoint write the
// fence checks that the holder renewed within 90% of a TTL; a holder that
// cannot renew stops publishing before anyone else may start.
//
// # Errors
//
// Code "500", HTTP 5xx / 408 / 429, timeouts, connection errors and
// malformed answers are retried with jittered exponential backoff; a page
// that still fails fails the cycle, and the next cycle starts from the last
// checkpoint. Code "400" (or HTTP 4xx, e.g. a wrong token) stops the source:
// one error log line, poll_pages_total{result="rejected"}, the lease is
// released, and Run waits for shutdown instead of crash-looping.
//
// # Cost
//
// Under the view reading a steady-state cycle costs one page for new
// disputes, ceil(open/100) pages for the period list, about one page per
// dispute that left it since the last cycle, plus the full rescan amortized
// over its interval. Under the category reading: one page per list for new
// disputes and the live disputes' lookup windows (by window cost), plus the
// amortized rescan. Measured by TestCost over 100 000 disputes of which 2%
// are open (DISPUTESYNC_POLLER_COST_SIZE=100000), with the default 45m
// rescan over 1-minute cycles: a full scan is 1 029 pages; a steady cycle
// 22 pages plus 22.9 amortized = 4.4% of a full scan under the view
// reading, 23 plus 22.9 = 4.5% under the category reading.
// Memory: the index holds open disputes only, and a cycle holds one page
// and the next one being fetched.
package poller
