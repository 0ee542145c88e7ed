package worker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
)

// metricLabels bounds the provider and action metric labels to the
// contract's known pairs.
func metricLabels(d *delivery) (provider, action string) {
	if !handlers.Known(d.provider, d.action) {
		return "unknown", "unknown"
	}
	return d.provider, d.action
}

func resultToken(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// publishResult stores a result in JetStream; cmdSeq is the stream
// sequence of the command message it answers. duplicate reports that the
// stream already held one with this Nats-Msg-Id.
func (w *Worker) publishResult(ctx context.Context, provider, action, id string, body []byte, msgID string, cmdSeq uint64) (duplicate bool, err error) {
	m := nats.NewMsg(w.cfg.Names.ResultSubject(provider, action))
	m.Data = body
	m.Header.Set(HeaderMsgID, msgID)
	if cmdSeq > 0 {
		m.Header.Set(HeaderCommandSequence, strconv.FormatUint(cmdSeq, 10))
	}
	if id != "" {
		m.Header.Set(HeaderDisputeRequestID, id)
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	ack, err := w.cfg.JS.PublishMsg(pctx, m)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

func (w *Worker) deadLetter(ctx context.Context, d *delivery, reason, detail string) error {
	m := nats.NewMsg(w.cfg.Names.DLQSubject(resultToken(d.provider), resultToken(d.action)))
	m.Data = d.msg.Data()
	seq := strconv.FormatUint(d.meta.Sequence.Stream, 10)
	m.Header.Set(HeaderMsgID, "dlq:"+seq)
	m.Header.Set(HeaderDLQReason, reason)
	m.Header.Set(HeaderDLQError, truncate(detail, dlqErrorBytes))
	m.Header.Set(HeaderDLQSubject, d.msg.Subject())
	m.Header.Set(HeaderDLQSequence, seq)
	m.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(d.meta.NumDelivered, 10))
	if d.id != "" {
		m.Header.Set(HeaderDisputeRequestID, d.id)
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := w.cfg.JS.PublishMsg(pctx, m); err != nil {
		return err
	}
	provider, action := metricLabels(d)
	w.m.DLQ.WithLabelValues(provider, action, reason).Inc()
	return nil
}

func (w *Worker) ack(ctx context.Context, d *delivery) {
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	if err := d.msg.DoubleAck(actx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		// A lost ack means a redelivery, which replays from Redis.
		w.log.Warn("ack not confirmed; a redelivery will be answered from the stored result", "disputeRequestId", d.id, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// retry runs f up to n times with a short growing pause (from
// storeRetryPause), for Redis writes whose outcome matters after a provider
// call.
func retry(ctx context.Context, n int, f func() error) error {
	var err error
	pause := storeRetryPause
	for i := 0; i < n; i++ {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
		pause *= 2
	}
	return err
}
