package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/internal/topology"
)

// seenStore remembers notifications (doc.go: "What makes a repeat
// recognisable").
type seenStore interface {
	// begin notes the first receipt of key (kept across failed attempts) and
	// reports it, and whether the notification was already stored.
	begin(ctx context.Context, key string, now time.Time) (first time.Time, done bool, err error)
	// mark notes key as stored; first is false when another delivery marked
	// it first.
	mark(ctx context.Context, key string) (first bool, err error)
}

// seenKey is a bounded key whatever the provider's identity looks like.
func seenKey(provider, identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return provider + ":" + hex.EncodeToString(sum[:])
}

// redisSeen keeps one hash per notification, names.RedisKey("webhook",
// provider, sha256(identity)): "first" (unix nanoseconds of the first
// receipt; see parseFirst) and "done" (set once its events are stored).
type redisSeen struct {
	rdb   redis.UniversalClient
	names topology.Names
	ttl   time.Duration
}

func (r *redisSeen) key(k string) string { return r.names.RedisKey("webhook", k) }

func (r *redisSeen) begin(ctx context.Context, key string, now time.Time) (time.Time, bool, error) {
	k := r.key(key)
	var vals *redis.SliceCmd
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, k, "first", strconv.FormatInt(now.UnixNano(), 10))
		vals = p.HMGet(ctx, k, "first", "done")
		p.Expire(ctx, k, r.ttl)
		return nil
	})
	if err != nil {
		return now, false, fmt.Errorf("webhook: read marker: %w", err)
	}
	v := vals.Val()
	first := now
	if s, ok := v[0].(string); ok {
		if t, ok := parseFirst(s); ok {
			first = t
		}
	}
	return first, v[1] != nil, nil
}

// parseFirst reads a marker's "first". It is kept to the nanosecond because
// the detector orders the notification against poll pages by it: a page
// requested a fraction of a millisecond before the pushed change holds the
// older state, and a receipt time rounded down to the millisecond would
// place that page after the push and publish the older state again.
// Markers written in milliseconds (before this was fixed) are far smaller
// numbers and still read as milliseconds.
func parseFirst(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	if n < 1e15 { // milliseconds: 1e15 ms is the year 33658
		return time.UnixMilli(n), true
	}
	return time.Unix(0, n), true
}

func (r *redisSeen) mark(ctx context.Context, key string) (bool, error) {
	k := r.key(key)
	var set *redis.BoolCmd
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		set = p.HSetNX(ctx, k, "done", "1")
		p.Expire(ctx, k, r.ttl)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("webhook: write marker: %w", err)
	}
	return set.Val(), nil
}

// noSeen is used without Redis: JetStream's duplicate window alone.
type noSeen struct{}

func (noSeen) begin(_ context.Context, _ string, now time.Time) (time.Time, bool, error) {
	return now, false, nil
}
func (noSeen) mark(context.Context, string) (bool, error) { return true, nil }

// canonicalHash is the identity of a notification that has no id of its
// own: the SHA-256 of its JSON with sorted keys and no insignificant white
// space, so that a retry serialised differently is still the same.
func canonicalHash(body []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
