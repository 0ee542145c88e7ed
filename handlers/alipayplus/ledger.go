package alipayplus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/internal/topology"
)

// Ledger is the record of the escalations disputesync itself started, per
// paymentRequestId, for the local count and window rules.
type Ledger interface {
	// Escalations returns the payment's escalations, oldest first.
	Escalations(ctx context.Context, paymentRequestID string) ([]Escalation, error)
	// Record notes an escalation after an S result. Recording the same
	// disputeRequestId again changes nothing but a missing DisputeID or a
	// Canceled flag.
	Record(ctx context.Context, e Escalation) error
	// Close notes that an escalation was replied to (responseEscalation) or
	// closed. The first close time wins. An empty paymentRequestID is looked
	// up from the disputeRequestId (responseEscalation does not carry it);
	// ErrUnknownEscalation says disputesync never recorded it.
	Close(ctx context.Context, paymentRequestID, disputeRequestID string, at time.Time) error
}

// Escalation is one escalation of a payment.
type Escalation struct {
	PaymentRequestID string
	DisputeRequestID string
	DisputeID        string // Alipay+'s id of the escalation, from the S answer
	StartedAt        time.Time
	ClosedAt         time.Time // zero while ongoing
	Canceled         bool
}

// ErrUnknownEscalation is returned by Close when no payment is known for a
// disputeRequestId.
var ErrUnknownEscalation = errors.New("alipayplus: escalation not started by disputesync")

// LedgerRetention is how long escalations are kept: the first may come up
// to 360 days after the transaction and the second 25 days after the first
// closes.
const LedgerRetention = 400 * 24 * time.Hour

// redisLedger keeps one hash per payment, names.RedisKey("escalations",
// paymentRequestId), with fields "<disputeRequestId>|<attribute>", plus
// names.RedisKey("escalation-payment", disputeRequestId) pointing back to
// the payment. Every write is HSETNX / SET / EXPIRE in MULTI, so a command
// that go-redis retries after a lost reply gives the same state.
type redisLedger struct {
	rdb   redis.UniversalClient
	names topology.Names
}

// NewRedisLedger returns a Ledger kept in Redis under the deployment's
// prefix.
func NewRedisLedger(rdb redis.UniversalClient, names topology.Names) Ledger {
	return &redisLedger{rdb: rdb, names: names}
}

const (
	attrStarted   = "started"
	attrDisputeID = "disputeId"
	attrClosed    = "closed"
	attrCanceled  = "canceled"
)

func (l *redisLedger) key(paymentRequestID string) string {
	return l.names.RedisKey("escalations", paymentRequestID)
}

func (l *redisLedger) backKey(disputeRequestID string) string {
	return l.names.RedisKey("escalation-payment", disputeRequestID)
}

func field(disputeRequestID, attr string) string { return disputeRequestID + "|" + attr }

func (l *redisLedger) Escalations(ctx context.Context, paymentRequestID string) ([]Escalation, error) {
	m, err := l.rdb.HGetAll(ctx, l.key(paymentRequestID)).Result()
	if err != nil {
		return nil, fmt.Errorf("alipayplus ledger: %w", err)
	}
	byID := map[string]*Escalation{}
	for f, v := range m {
		i := strings.LastIndexByte(f, '|')
		if i < 0 {
			continue
		}
		id, attr := f[:i], f[i+1:]
		e := byID[id]
		if e == nil {
			e = &Escalation{PaymentRequestID: paymentRequestID, DisputeRequestID: id}
			byID[id] = e
		}
		switch attr {
		case attrStarted:
			e.StartedAt, _ = time.Parse(time.RFC3339Nano, v)
		case attrClosed:
			e.ClosedAt, _ = time.Parse(time.RFC3339Nano, v)
		case attrDisputeID:
			e.DisputeID = v
		case attrCanceled:
			e.Canceled = v == "1"
		}
	}
	out := make([]Escalation, 0, len(byID))
	for _, e := range byID {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].DisputeRequestID < out[j].DisputeRequestID
	})
	return out, nil
}

func (l *redisLedger) Record(ctx context.Context, e Escalation) error {
	if e.PaymentRequestID == "" || e.DisputeRequestID == "" {
		return errors.New("alipayplus ledger: an escalation needs its paymentRequestId and disputeRequestId")
	}
	key := l.key(e.PaymentRequestID)
	started := e.StartedAt
	if started.IsZero() {
		started = time.Now()
	}
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, key, field(e.DisputeRequestID, attrStarted), started.UTC().Format(time.RFC3339Nano))
		if e.DisputeID != "" {
			p.HSetNX(ctx, key, field(e.DisputeRequestID, attrDisputeID), e.DisputeID)
		}
		if !e.ClosedAt.IsZero() {
			p.HSetNX(ctx, key, field(e.DisputeRequestID, attrClosed), e.ClosedAt.UTC().Format(time.RFC3339Nano))
		}
		if e.Canceled {
			p.HSet(ctx, key, field(e.DisputeRequestID, attrCanceled), "1")
		}
		p.Expire(ctx, key, LedgerRetention)
		p.Set(ctx, l.backKey(e.DisputeRequestID), e.PaymentRequestID, LedgerRetention)
		return nil
	})
	if err != nil {
		return fmt.Errorf("alipayplus ledger: record: %w", err)
	}
	return nil
}

func (l *redisLedger) Close(ctx context.Context, paymentRequestID, disputeRequestID string, at time.Time) error {
	if disputeRequestID == "" {
		return errors.New("alipayplus ledger: close needs a disputeRequestId")
	}
	if paymentRequestID == "" {
		p, err := l.rdb.Get(ctx, l.backKey(disputeRequestID)).Result()
		if errors.Is(err, redis.Nil) {
			return ErrUnknownEscalation
		}
		if err != nil {
			return fmt.Errorf("alipayplus ledger: close: %w", err)
		}
		paymentRequestID = p
	}
	if at.IsZero() {
		at = time.Now()
	}
	key := l.key(paymentRequestID)
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		// An answer that arrives before Record (a worker that died after the
		// S result) still closes the escalation, and Record keeps it closed.
		p.HSetNX(ctx, key, field(disputeRequestID, attrClosed), at.UTC().Format(time.RFC3339Nano))
		p.Expire(ctx, key, LedgerRetention)
		p.Set(ctx, l.backKey(disputeRequestID), paymentRequestID, LedgerRetention)
		return nil
	})
	if err != nil {
		return fmt.Errorf("alipayplus ledger: close: %w", err)
	}
	return nil
}
