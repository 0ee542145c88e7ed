package poller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
)

// snapshot is the value stored per dispute in names.DisputesBucket(), under
// snapshotKey(source, disputeId). Other systems may read it: it is the last
// state disputesync published for the dispute.
type snapshot struct {
	Source      string          `json:"source"`
	Record      Record          `json:"record"`
	ListType    string          `json:"listType"`
	Fingerprint string          `json:"fingerprint"`
	Version     uint64          `json:"version"` // state changes published so far
	Raw         json.RawMessage `json:"raw"`
	// Warned lists the deadline thresholds already announced for the reply
	// deadline WarnedDeadline; a new deadline starts the list afresh.
	Warned         []string  `json:"warned,omitempty"`
	WarnedDeadline string    `json:"warnedDeadline,omitempty"`
	UpdatedAt      time.Time `json:"updatedAt"`
	ObservedAt     time.Time `json:"observedAt,omitzero"`
}

// fingerprint is a hash of the state the once-per-state rule is about: the
// normalized record and every field of the provider's record, free-text
// comments and comment history included, so that the last event's raw and
// the snapshot always show the provider's current record. The list type is
// left out on purpose: the same record read from the other list is not a
// new state. raw is hashed in a canonical form (keys sorted, no spacing),
// so the same record written with another key order or spacing, e.g. by a
// notification, is the same state.
func fingerprint(r Record, raw json.RawMessage) string {
	h := sha256.New()
	b, _ := json.Marshal(r) // struct fields marshal in a fixed order
	h.Write(b)
	h.Write([]byte{0})
	h.Write(canonicalJSON(raw))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// canonicalJSON re-encodes a JSON value with sorted keys and no spacing
// (numbers kept as written); a value that does not decode is used as is.
func canonicalJSON(raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// snapshotKey is "<source>.<disputeId>"; an id with characters a KV key does
// not allow is hex-encoded behind "=", which no plain id contains.
func snapshotKey(source, disputeID string) string {
	if plainKey.MatchString(disputeID) {
		return source + "." + disputeID
	}
	return source + ".=" + hex.EncodeToString([]byte(disputeID))
}

// changedFields lists the data fields (JSON names) that differ.
func changedFields(a, b Record) []string {
	var out []string
	add := func(name string, x, y string) {
		if x != y {
			out = append(out, name)
		}
	}
	add("paymentId", a.PaymentID, b.PaymentID)
	add("orderId", a.OrderID, b.OrderID)
	add("status", a.Status, b.Status)
	add("appealStatus", a.AppealStatus, b.AppealStatus)
	add("closeStatus", a.CloseStatus, b.CloseStatus)
	add("reason", a.Reason, b.Reason)
	if a.Amount != b.Amount {
		out = append(out, "amount")
	}
	add("replyDeadline", a.ReplyDeadline, b.ReplyDeadline)
	add("createdAt", a.CreatedAt, b.CreatedAt)
	add("disputeType", a.DisputeType, b.DisputeType)
	add("disputeTimes", a.DisputeTimes, b.DisputeTimes)
	add("appealPeriodFrom", a.AppealPeriodFrom, b.AppealPeriodFrom)
	add("appealPeriodTo", a.AppealPeriodTo, b.AppealPeriodTo)
	return out
}

// changesOf is changedFields for an update, or ["raw"] when only fields
// outside the normalized record changed (a comment, the comment history):
// the update still has its event, and data.changes is never empty.
func changesOf(prev, next Record) []string {
	if c := changedFields(prev, next); len(c) > 0 {
		return c
	}
	return []string{"raw"}
}

// ErrLeaseLost is returned when the fence says this replica no longer holds
// the source's lease; nothing more is published.
var ErrLeaseLost = errors.New("poller: lease lost")

// Detector turns observed dispute records into events, once per state. The
// poller and the webhook share it, so a state seen by both paths is
// published once.
type Detector struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	names  topology.Names
	m      *metrics.Metrics
	logger *slog.Logger

	mu       sync.Mutex
	now      func() time.Time
	warnings []time.Duration // descending
}

// DefaultDeadlineWarnings are the thresholds of dispute.deadline_approaching.
var DefaultDeadlineWarnings = []time.Duration{72 * time.Hour, 24 * time.Hour}

// NewDetector opens the snapshot bucket (topology.Setup creates it).
func NewDetector(js jetstream.JetStream, names topology.Names, m *metrics.Metrics, logger *slog.Logger) (*Detector, error) {
	if js == nil || m == nil {
		return nil, errors.New("poller: detector needs JetStream and metrics")
	}
	if logger == nil {
		logger = slog.Default()
	}
	kv, err := js.KeyValue(context.Background(), names.DisputesBucket())
	if err != nil {
		return nil, fmt.Errorf("poller: snapshot bucket %s: %w", names.DisputesBucket(), err)
	}
	d := &Detector{js: js, kv: kv, names: names, m: m, logger: logger, now: time.Now}
	d.SetDeadlineWarnings(DefaultDeadlineWarnings)
	return d, nil
}

// SetDeadlineWarnings replaces the thresholds (--deadline-warnings).
func (d *Detector) SetDeadlineWarnings(w []time.Duration) {
	w = slices.Clone(w)
	sort.Slice(w, func(i, j int) bool { return w[i] > w[j] })
	d.mu.Lock()
	d.warnings = slices.Compact(w)
	d.mu.Unlock()
}

func (d *Detector) setNow(now func() time.Time) {
	d.mu.Lock()
	d.now = now
	d.mu.Unlock()
}

func (d *Detector) clock() (time.Time, []time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.now(), d.warnings
}

func fmtThreshold(t time.Duration) string {
	if t%time.Hour == 0 {
		return fmt.Sprintf("%dh", int(t/time.Hour))
	}
	return t.String()
}

// maxCASRetries bounds re-reads when another writer (the webhook, a former
// lease holder) changed the snapshot between our read and write.
const maxCASRetries = 5

// Observe compares rec with the stored snapshot and publishes what changed:
// dispute.opened for a dispute seen for the first time (dispute.closed if it
// is already closed), dispute.closed when it closes, dispute.opened when a
// closed dispute reopens, dispute.updated with the changed fields otherwise,
// and dispute.deadline_approaching once per threshold while it is pending.
// The snapshot is written only after every PubAck, with optimistic
// concurrency; fence (may be nil) is called before each publish. It returns
// the events JetStream stored as new.
func (d *Detector) Observe(ctx context.Context, source, listType string, rec Record, raw json.RawMessage, fence func() error) ([]Event, error) {
	return d.ObserveAt(ctx, source, listType, rec, raw, time.Time{}, fence)
}

// ObserveAt is Observe for an observation made at asOf (when the page was
// requested, or the notification first received): an observation older
// than the stored one that disagrees with it is stale and ignored, so a
// poll page read before a pushed change cannot revert it (A, B, A, B).
func (d *Detector) ObserveAt(ctx context.Context, source, listType string, rec Record, raw json.RawMessage, asOf time.Time, fence func() error) ([]Event, error) {
	key := snapshotKey(source, rec.DisputeID)
	var out []Event
	for try := 0; ; try++ {
		prev, rev, err := d.load(ctx, key)
		if err != nil {
			return out, err
		}
		next, events, err := d.decide(source, listType, rec, raw, prev, asOf)
		if err != nil || next == nil {
			return out, err
		}
		for _, ev := range events {
			if fence != nil {
				if err := fence(); err != nil {
					return out, fmt.Errorf("%w: %w", ErrLeaseLost, err)
				}
			}
			dup, err := publish(ctx, d.js, d.names.EventSubject(source, ev.Type), ev)
			if err != nil {
				return out, err
			}
			if !dup {
				out = append(out, ev)
				d.m.DisputeEvents.WithLabelValues(source, ev.Type).Inc()
			}
		}
		if fence != nil {
			// A replica that lost the lease must not overwrite the snapshot
			// the new holder may already have advanced.
			if err := fence(); err != nil {
				return out, fmt.Errorf("%w: %w", ErrLeaseLost, err)
			}
		}
		err = d.save(ctx, key, next, prev != nil, rev)
		if err == nil {
			return out, nil
		}
		if !isConflict(err) || try >= maxCASRetries {
			return out, err
		}
		// Someone else wrote the snapshot meanwhile: decide again from theirs.
		// Our events are not lost: they are stored, and the new decision
		// either repeats them (same id: JetStream drops the copy) or finds the
		// state already recorded.
	}
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

func (d *Detector) load(ctx context.Context, key string) (*snapshot, uint64, error) {
	e, err := d.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read snapshot %s: %w", key, err)
	}
	var s snapshot
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, 0, fmt.Errorf("decode snapshot %s: %w", key, err)
	}
	return &s, e.Revision(), nil
}

func (d *Detector) save(ctx context.Context, key string, s *snapshot, exists bool, rev uint64) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if exists {
		_, err = d.kv.Update(ctx, key, b, rev)
	} else {
		_, err = d.kv.Create(ctx, key, b)
	}
	if err != nil {
		return fmt.Errorf("write snapshot %s: %w", key, err)
	}
	return nil
}

// decide returns the next snapshot and the events leading to it, or a nil
// snapshot when nothing is to be published or stored.
func (d *Detector) decide(source, listType string, rec Record, raw json.RawMessage, prev *snapshot, asOf time.Time) (*snapshot, []Event, error) {
	now, warnings := d.clock()
	fp := fingerprint(rec, raw)
	if prev != nil && prev.Fingerprint != fp && !asOf.IsZero() && asOf.Before(prev.ObservedAt) {
		return nil, nil, nil // stale: a newer state is already recorded
	}
	var next snapshot
	var events []Event
	emit := func(typ string, changes []string, threshold string, parts ...string) error {
		data := EventData{Record: rec, ListType: listType, Changes: changes, Threshold: threshold, Raw: raw}
		ev, err := newEvent(source, typ, rec.DisputeID, eventID(source, rec.DisputeID, typ, parts...), now, data)
		if err == nil {
			events = append(events, ev)
		}
		return err
	}
	switch {
	case prev == nil:
		next = snapshot{Source: source, Record: rec, ListType: listType, Fingerprint: fp, Version: 1, Raw: raw}
		typ := TypeOpened
		if rec.Closed() {
			typ = TypeClosed
		}
		if err := emit(typ, nil, "", "1", fp); err != nil {
			return nil, nil, err
		}
	case prev.Fingerprint != fp:
		next = *prev
		next.Record, next.ListType, next.Fingerprint, next.Raw = rec, listType, fp, raw
		next.Version = prev.Version + 1
		typ, changes := TypeUpdated, changesOf(prev.Record, rec)
		switch {
		case rec.Closed() && !prev.Record.Closed():
			typ = TypeClosed
		case !rec.Closed() && prev.Record.Closed():
			typ = TypeOpened // reopened, e.g. a second chargeback
		}
		if err := emit(typ, changes, "", strconv.FormatUint(next.Version, 10), fp); err != nil {
			return nil, nil, err
		}
	default:
		next = *prev
	}

	// Deadline warnings: at most one event per observation, for the tightest
	// threshold crossed; every looser threshold is then spent too, so a
	// dispute first seen 10 hours before its deadline gets one "24h" warning,
	// not a "72h" one after it.
	if next.WarnedDeadline != rec.ReplyDeadline {
		next.Warned, next.WarnedDeadline = nil, rec.ReplyDeadline
	}
	if dl, ok := rec.Deadline(); ok && rec.Pending() && !rec.Closed() {
		left := dl.Sub(now)
		var crossed []string
		for _, th := range warnings { // descending
			name := fmtThreshold(th)
			if left > 0 && left <= th && !slices.Contains(next.Warned, name) {
				crossed = append(crossed, name)
			}
		}
		if len(crossed) > 0 {
			tightest := crossed[len(crossed)-1]
			if err := emit(TypeDeadlineApproaching, nil, tightest, strconv.FormatUint(next.Version, 10), fp, rec.ReplyDeadline, tightest); err != nil {
				return nil, nil, err
			}
			next.Warned = append(slices.Clone(next.Warned), crossed...)
			next.WarnedDeadline = rec.ReplyDeadline
		}
	}
	if len(events) == 0 && prev != nil && slices.Equal(prev.Warned, next.Warned) && prev.WarnedDeadline == next.WarnedDeadline {
		return nil, nil, nil
	}
	next.UpdatedAt = now.UTC()
	if asOf.After(next.ObservedAt) {
		next.ObservedAt = asOf
	}
	return &next, events, nil
}

// PublishNotified publishes dispute.notified for an accepted provider
// notification (docs/contract.md section 6). Its id and Nats-Msg-Id derive from the
// provider's notification id, so a provider's retry of the same notification
// is dropped by JetStream. It does not touch the snapshot: state carried by
// the notification goes through Observe.
func (d *Detector) PublishNotified(ctx context.Context, source, notificationType, disputeID string, notification json.RawMessage, notifyID string) (Event, error) {
	ev, _, err := d.PublishNotifiedDup(ctx, source, notificationType, disputeID, notification, notifyID)
	return ev, err
}

// PublishNotifiedDup is PublishNotified that also reports whether JetStream
// already held this notification's event (a provider's retry), for the
// webhook's "duplicate" metric.
func (d *Detector) PublishNotifiedDup(ctx context.Context, source, notificationType, disputeID string, notification json.RawMessage, notifyID string) (Event, bool, error) {
	if disputeID == "" || notifyID == "" {
		return Event{}, false, errors.New("poller: notified event needs a dispute id and a notification id")
	}
	now, _ := d.clock()
	data := NotifiedData{DisputeID: disputeID, NotificationType: notificationType, Notification: notification}
	ev, err := newEvent(source, TypeNotified, disputeID, eventID(source, disputeID, TypeNotified, notifyID), now, data)
	if err != nil {
		return Event{}, false, err
	}
	dup, err := publish(ctx, d.js, d.names.EventSubject(source, TypeNotified), ev)
	if err != nil {
		return Event{}, false, err
	}
	if !dup {
		d.m.DisputeEvents.WithLabelValues(source, TypeNotified).Inc()
	}
	return ev, dup, nil
}
