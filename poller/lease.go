package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// lease makes one replica the active poller of a source. It is a key
// "<source>.lease" in the poller bucket, written with optimistic concurrency
// (Create when absent, Update with the last revision otherwise), so two
// replicas can never both believe their write won.
//
// Expiry is judged on each replica's own monotonic clock, never by comparing
// wall clocks: a standby takes over only after it has seen the same revision
// for a whole TTL, while the holder stops publishing (fence) 10% before a
// TTL has passed since the start of its last successful renewal. Since the
// standby first sees a revision after it was written, the two intervals
// cannot overlap unless the clocks' rates differ by more than 10%.
type lease struct {
	kv       jetstream.KeyValue
	key      string
	instance string
	ttl      time.Duration

	mu         sync.Mutex
	rev        uint64    // revision we hold; 0 when not held
	validUntil time.Time // monotonic: fence fails after it
	seenRev    uint64    // standby: the holder's revision last seen
	seenAt     time.Time // standby: when seenRev was first seen
}

type leaseValue struct {
	Holder    string    `json:"holder"`
	RenewedAt time.Time `json:"renewedAt"` // informational only
}

func newLease(kv jetstream.KeyValue, source, instance string, ttl time.Duration) *lease {
	return &lease{kv: kv, key: source + ".lease", instance: instance, ttl: ttl}
}

func (l *lease) value() []byte {
	b, _ := json.Marshal(leaseValue{Holder: l.instance, RenewedAt: time.Now().UTC()})
	return b
}

// tryAcquire takes the lease if it is free or expired; it reports whether
// this replica now holds it, and who does otherwise.
func (l *lease) tryAcquire(ctx context.Context) (held bool, holder string, err error) {
	start := time.Now()
	e, err := l.kv.Get(ctx, l.key)
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = l.kv.Create(ctx, l.key, l.value())
	case err != nil:
		return false, "", fmt.Errorf("read lease: %w", err)
	default:
		var v leaseValue
		_ = json.Unmarshal(e.Value(), &v)
		l.mu.Lock()
		if e.Revision() != l.seenRev {
			l.seenRev, l.seenAt = e.Revision(), start
		}
		expired := v.Holder == l.instance || start.Sub(l.seenAt) >= l.ttl
		l.mu.Unlock()
		if !expired {
			return false, v.Holder, nil
		}
		rev, err = l.kv.Update(ctx, l.key, l.value(), e.Revision())
	}
	if isConflict(err) {
		return false, "", nil // another replica was quicker
	}
	if err != nil {
		return false, "", fmt.Errorf("write lease: %w", err)
	}
	l.mu.Lock()
	l.rev, l.validUntil = rev, start.Add(l.ttl*9/10)
	l.mu.Unlock()
	return true, l.instance, nil
}

// renew extends a held lease. A conflict means another replica took it:
// the lease is lost for good and ErrLeaseLost is returned. Other errors
// (NATS unreachable) leave the lease to expire on its own.
func (l *lease) renew(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if rev == 0 {
		return ErrLeaseLost
	}
	start := time.Now()
	newRev, err := l.kv.Update(ctx, l.key, l.value(), rev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if isConflict(err) {
		l.rev = 0
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	l.rev, l.validUntil = newRev, start.Add(l.ttl*9/10)
	return nil
}

// fence returns an error unless this replica still holds the lease; it is
// called before every publish and checkpoint write.
func (l *lease) fence() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 {
		return ErrLeaseLost
	}
	if time.Now().After(l.validUntil) {
		return fmt.Errorf("%w: not renewed within the lease time", ErrLeaseLost)
	}
	return nil
}

// release gives the lease up at once (graceful stop), so a standby need not
// wait for it to expire.
func (l *lease) release(ctx context.Context) {
	l.mu.Lock()
	rev := l.rev
	l.rev = 0
	l.mu.Unlock()
	if rev != 0 {
		_ = l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
	}
}
