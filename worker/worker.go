package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
)

// Config of a Worker. Zero values mean the documented defaults.
type Config struct {
	JS    jetstream.JetStream
	Redis redis.UniversalClient
	Names topology.Names
	Mux   *handlers.Mux

	Concurrency   int           // commands handled at once; default 8
	MaxAttempts   int           // provider calls per command before it fails; default 8
	RetryDeadline time.Duration // time since the first claim after which it fails; default 1 h
	Lease         time.Duration // idempotency lease, renewed every Lease/3; default 30 s
	Retention     time.Duration // how long a finished command is remembered; default 30 days
	BackoffBase   time.Duration // default 1 s
	BackoffMax    time.Duration // default 5 min
	ShutdownGrace time.Duration // in-flight work gets this long after shutdown starts; default 4 s

	Instance string // names this replica in owner tokens and logs; default hostname
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	Now      func() time.Time
}

// Worker consumes action commands and applies them through the handlers.
type Worker struct {
	cfg   Config
	store *Store
	log   *slog.Logger
	m     *metrics.Metrics
}

// New returns a Worker.
func New(cfg Config) (*Worker, error) {
	if cfg.JS == nil || cfg.Redis == nil || cfg.Mux == nil {
		return nil, errors.New("worker: JS, Redis and Mux are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	def(&cfg.RetryDeadline, time.Hour)
	def(&cfg.Lease, 30*time.Second)
	def(&cfg.Retention, 30*24*time.Hour)
	def(&cfg.BackoffBase, time.Second)
	def(&cfg.BackoffMax, 5*time.Minute)
	def(&cfg.ShutdownGrace, 4*time.Second)
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		cfg.Instance = host + "-" + nuid.Next()[:6]
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Worker{
		cfg:   cfg,
		store: NewStore(cfg.Redis, cfg.Names, cfg.Lease, cfg.Retention),
		log:   cfg.Logger.With("component", "worker", "instance", cfg.Instance),
		m:     cfg.Metrics,
	}, nil
}

// Store exposes the idempotency store (tests and operators' tools).
func (w *Worker) Store() *Store { return w.store }

// Run consumes commands until ctx ends, then stops fetching, gives
// in-flight commands ShutdownGrace to finish and releases the rest for
// redelivery.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.cfg.JS.Consumer(ctx, w.cfg.Names.ActionsStream(), w.cfg.Names.WorkerConsumer())
	if err != nil && ctx.Err() != nil {
		return nil // stopped while starting: a shutdown, not a failure
	}
	if err != nil {
		return fmt.Errorf("worker: consumer %s: %w (run disputesync setup)", w.cfg.Names.WorkerConsumer(), err)
	}
	maxDeliver := cons.CachedInfo().Config.MaxDeliver
	it, err := cons.Messages(jetstream.PullMaxMessages(w.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("worker: consume: %w", err)
	}
	// In-flight work outlives ctx by the grace period.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
			t := time.AfterFunc(w.cfg.ShutdownGrace, cancelWork)
			<-stopped
			t.Stop()
		case <-stopped:
		}
	}()
	w.log.Info("worker started", "consumer", w.cfg.Names.WorkerConsumer(), "concurrency", w.cfg.Concurrency, "handlers", w.cfg.Mux.Registered())
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			w.log.Warn("fetching commands", "err", err)
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			// Shutting down: this message is left for redelivery.
			_ = msg.NakWithDelay(time.Second)
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.handle(workCtx, ctx, msg, maxDeliver)
		}()
	}
	wg.Wait()
	close(stopped)
	if ctx.Err() == nil {
		// The iterator ended on its own (consumer deleted, connection
		// closed): the worker is not working, so say so, and let the process
		// be restarted rather than stay up doing nothing.
		return fmt.Errorf("worker: stopped consuming %s without being asked to (consumer deleted or connection closed)", w.cfg.Names.WorkerConsumer())
	}
	w.log.Info("worker stopped")
	return nil
}

// delivery is one message being handled.
type delivery struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata
	provider string
	action   string
	cmd      *handlers.Command
	id       string
	// maxDeliver is the consumer's MaxDeliver: the last delivery must end
	// with a result, never with a nak the server would not honour.
	maxDeliver int
}

func (w *Worker) handle(ctx, runCtx context.Context, msg jetstream.Msg, maxDeliver int) {
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("message without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	d := &delivery{msg: msg, meta: meta, maxDeliver: maxDeliver}
	if runCtx.Err() != nil {
		// Shutdown began after this message was fetched: do not start it.
		w.nak(d, time.Second)
		return
	}
	var ok bool
	d.provider, d.action, ok = w.cfg.Names.ParseActionSubject(msg.Subject())
	if !ok || !handlers.Known(d.provider, d.action) {
		_, d.id, _ = DecodeCommand(msg.Data())
		if !ok {
			d.provider, d.action = "unknown", "unknown"
		}
		w.reject(ctx, d, CodeInvalidCommand, fmt.Sprintf("subject %q is not an action of the contract (%s.actions.<provider>.<action>)", msg.Subject(), w.cfg.Names.Prefix()), ReasonInvalid)
		return
	}
	d.cmd, d.id, err = DecodeCommand(msg.Data())
	if err != nil {
		w.reject(ctx, d, CodeInvalidCommand, err.Error(), ReasonInvalid)
		return
	}
	h, ok := w.cfg.Mux.Handler(d.provider, d.action)
	if !ok {
		w.reject(ctx, d, CodeProviderNotConfigured, fmt.Sprintf("provider %s is not configured on this worker", d.provider), ReasonNotConfigured)
		return
	}
	if err := h.Validate(d.cmd); err != nil {
		var rule *handlers.RuleError
		if errors.As(err, &rule) {
			w.reject(ctx, d, rule.Code, rule.Message, ReasonRule)
		} else {
			w.reject(ctx, d, CodeInvalidCommand, err.Error(), ReasonInvalid)
		}
		return
	}
	fp, err := Fingerprint(d.provider, d.action, d.cmd)
	if err != nil {
		w.reject(ctx, d, CodeInvalidCommand, err.Error(), ReasonInvalid)
		return
	}
	owner := w.cfg.Instance + "." + nuid.Next()
	claim, err := w.store.Claim(ctx, d.id, fp, owner)
	if err != nil {
		// Fail closed: without a claim there is no provider call.
		if lastDelivery(d) {
			w.giveUp(ctx, d, "IDEMPOTENCY_UNAVAILABLE", "the idempotency store was unavailable on every delivery: "+err.Error())
			return
		}
		w.log.Warn("idempotency store unavailable; command will be redelivered", "disputeRequestId", d.id, "err", err)
		w.nak(d, w.backoff(int64(meta.NumDelivered)))
		return
	}
	w.m.Idempotency.WithLabelValues(idempotencyLabel(claim.Status)).Inc()
	switch claim.Status {
	case Inconsistent:
		w.reject(ctx, d, CodeRepeatReqInconsistent,
			fmt.Sprintf("disputeRequestId %s was already used for a different command (provider, action, dispute or params differ)", d.id), ReasonInconsistent)
	case Replay:
		w.replay(ctx, d, claim)
	case Busy:
		if lastDelivery(d) {
			// The holder answers for the command; this copy may go.
			w.log.Warn("last delivery while another worker holds the command", "disputeRequestId", d.id)
			_ = msg.TermWithReason("held by another worker")
			return
		}
		// The holder usually finishes long before its lease would run out,
		// so come back on the growing backoff, never later than the lease.
		w.nak(d, min(claim.Wait+w.cfg.BackoffBase, w.backoff(int64(meta.NumDelivered))))
	case Claimed, TakenOver:
		w.apply(ctx, runCtx, d, h, claim, owner)
	}
}

func idempotencyLabel(s ClaimStatus) string {
	switch s {
	case TakenOver:
		return string(Claimed)
	case Replay:
		return "replayed" // the label docs/contract.md section 4 names
	}
	return string(s)
}

func (w *Worker) apply(ctx, runCtx context.Context, d *delivery, h handlers.Handler, claim Claim, owner string) {
	log := w.log.With("disputeRequestId", d.id, "provider", d.provider, "action", d.action)
	if claim.Status == TakenOver {
		log.Warn("took over a command whose holder lost its lease; reconciling with the provider", "epoch", claim.Epoch)
	}
	lockKey := handlers.LockKey(h, d.cmd)
	if lockKey != "" {
		got, err := w.store.Lock(ctx, lockKey, owner)
		if err != nil || !got {
			// Another action on the same dispute is running (or Redis is
			// down): give the command back and try again shortly.
			if lastDelivery(d) {
				res := w.newResult(d, decision{outcome: Failed, code: "DISPUTE_BUSY",
					message: "another action on the same dispute held it on every delivery"}, int(claim.Calls))
				w.finish(ctx, d, res, owner, claim.Epoch, ReasonRetriesExhausted)
				return
			}
			_ = w.store.Release(ctx, d.id, owner, claim.Epoch)
			w.nak(d, w.cfg.BackoffBase/2+w.backoff(1))
			return
		}
		defer func() { _ = w.store.Unlock(context.WithoutCancel(ctx), lockKey, owner) }()
	}
	calls := claim.Calls + 1
	if err := w.store.BeginCall(ctx, d.id, owner, claim.Epoch, calls); err != nil {
		log.Warn("could not record the provider call; command will be redelivered", "err", err)
		_ = w.store.Release(ctx, d.id, owner, claim.Epoch)
		w.nak(d, w.backoff(1))
		return
	}
	call := &handlers.Call{
		Provider: d.provider, Action: d.action, Command: d.cmd,
		Attempt: int(calls), Takeover: claim.Status == TakenOver, Recover: claim.Calls > 0,
	}
	resp, err := w.callWithHeartbeat(ctx, d, h, call, owner, claim.Epoch, lockKey)
	// What follows the call must happen even if the shutdown grace period
	// has just cancelled ctx: releasing the claim or storing a known result
	// is what keeps the next holder from waiting out the lease or asking
	// the provider again.
	ctx, cancelBookkeeping := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancelBookkeeping()
	dec := w.settle(resp, err, attemptState{
		calls: calls, first: claim.First, now: w.cfg.Now(), delivered: d.meta.NumDelivered,
		maxDeliver: d.maxDeliver, shuttingDown: runCtx.Err() != nil,
	})
	if !dec.final {
		log.Info("provider call will be retried", "attempt", calls, "delay", dec.delay, "err", err)
		_ = w.store.Release(ctx, d.id, owner, claim.Epoch)
		w.nak(d, dec.delay)
		return
	}
	res := w.newResult(d, dec, int(calls))
	if resp != nil && len(resp.Body) > 0 && json.Valid(resp.Body) {
		res.Response = resp.Body
	}
	w.finish(ctx, d, res, owner, claim.Epoch, dec.dlqReason)
}

// callWithHeartbeat runs the provider call while renewing the claim's lease,
// the dispute lock and the message's AckWait. If the lease is lost, the call
// is cancelled: not calling is safer than calling twice.
func (w *Worker) callWithHeartbeat(ctx context.Context, d *delivery, h handlers.Handler, call *handlers.Call, owner string, epoch int64, lockKey string) (*handlers.Response, error) {
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(w.cfg.Lease / 3)
		defer t.Stop()
		// The lease was renewed by BeginCall just before the call. If Redis
		// cannot be reached, the lease runs out all the same: stop the call
		// before it does, or a new holder could call the provider too.
		renewed := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			_ = d.msg.InProgress()
			err := w.store.Extend(callCtx, d.id, owner, epoch)
			if err == nil && lockKey != "" {
				var got bool
				got, err = w.store.Lock(callCtx, lockKey, owner)
				if err == nil && !got {
					err = ErrLostClaim
				}
			}
			if errors.Is(err, ErrLostClaim) {
				w.log.Error("lost the command's lease during the provider call; cancelling it", "disputeRequestId", d.id)
				cancel()
				return
			}
			if err == nil {
				renewed = time.Now()
				continue
			}
			if time.Since(renewed) > w.cfg.Lease*2/3 {
				w.log.Error("could not renew the command's lease before it runs out; cancelling the provider call", "disputeRequestId", d.id, "err", err)
				cancel()
				return
			}
			w.log.Warn("could not renew the command's lease", "disputeRequestId", d.id, "err", err)
		}
	}()
	return h.Apply(callCtx, call)
}

func (w *Worker) newResult(d *delivery, dec decision, attempts int) *Result {
	res := &Result{
		DisputeRequestID: d.id, Provider: d.provider, Action: d.action,
		Outcome: dec.outcome, Code: dec.code, Message: dec.message, Attempts: attempts,
		CompletedAt: w.cfg.Now().UTC().Truncate(time.Millisecond),
	}
	if d.cmd != nil {
		res.DisputeID, res.RequestedBy = d.cmd.DisputeID, d.cmd.RequestedBy
	}
	return res
}

// finish stores the result in Redis, publishes it, writes a dead letter if
// asked, and only then removes the message.
func (w *Worker) finish(ctx context.Context, d *delivery, res *Result, owner string, epoch int64, dlqReason string) {
	body, _ := json.Marshal(res)
	var winner []byte
	var lost bool
	err := retry(ctx, 5, func() error {
		var err error
		winner, err = w.store.Complete(ctx, d.id, owner, epoch, body, d.meta.Sequence.Stream)
		if errors.Is(err, ErrLostClaim) {
			lost = true
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		// The outcome is known but cannot be stored: redeliver; the next
		// holder takes over after the lease and reconciles with the provider.
		w.log.Error("could not store the result; command will be redelivered", "disputeRequestId", d.id, "outcome", res.Outcome, "err", err)
		w.nak(d, w.cfg.Lease)
		return
	case winner != nil:
		// A newer holder finished first; its result stands.
		w.log.Warn("a newer holder finished the command first; its result stands", "disputeRequestId", d.id)
		w.ack(ctx, d)
		return
	case lost:
		// A newer holder has the command and will publish its own result:
		// ours must not become the official one.
		w.log.Warn("lost the command to a newer holder before storing the result; leaving it to that holder", "disputeRequestId", d.id, "outcome", res.Outcome)
		w.nak(d, w.cfg.Lease)
		return
	}
	// The dead letter goes first: once the result is marked published, a
	// redelivery only acks, so a dead letter written after it could be lost.
	// Its Nats-Msg-Id (dlq:<seq>) makes a second write harmless.
	if dlqReason != "" {
		if err := w.deadLetter(ctx, d, dlqReason, res.Code+": "+res.Message); err != nil {
			w.log.Error("could not write the dead letter; command will be redelivered", "disputeRequestId", d.id, "err", err)
			w.nak(d, w.backoff(1))
			return
		}
	}
	if _, err := w.publishResult(ctx, d.provider, d.action, d.id, body, d.id, d.meta.Sequence.Stream); err != nil {
		w.log.Error("could not publish the result; command will be redelivered", "disputeRequestId", d.id, "err", err)
		w.nak(d, w.backoff(1))
		return
	}
	_ = w.store.MarkPublished(ctx, d.id)
	w.m.Actions.WithLabelValues(d.provider, d.action, res.Outcome).Inc()
	w.log.Info("command finished", "disputeRequestId", d.id, "provider", d.provider, "action", d.action,
		"outcome", res.Outcome, "code", res.Code, "attempts", res.Attempts)
	if dlqReason != "" {
		_ = d.msg.TermWithReason(dlqReason)
		return
	}
	w.ack(ctx, d)
}

// replay answers a command that is already done.
func (w *Worker) replay(ctx context.Context, d *delivery, claim Claim) {
	if !claim.Published {
		// The holder finished but its result may not have reached JetStream:
		// publish it now, as the original (the Nats-Msg-Id dedups), answering
		// the delivery that completed it.
		dup, err := w.publishResult(ctx, d.provider, d.action, d.id, claim.Result, d.id, claim.Seq)
		if err != nil {
			w.nak(d, w.backoff(1))
			return
		}
		_ = w.store.MarkPublished(ctx, d.id)
		var res Result
		// Counted once: only if it was not in the stream already.
		if !dup && json.Unmarshal(claim.Result, &res) == nil {
			w.m.Actions.WithLabelValues(d.provider, d.action, res.Outcome).Inc()
		}
	}
	// A redelivery of the very message that completed it (its ack was
	// lost) has nothing new to say; any other message, a republish, still
	// gets its replayed answer (docs/contract.md section 2).
	if claim.Seq != d.meta.Sequence.Stream {
		var res Result
		if err := json.Unmarshal(claim.Result, &res); err != nil {
			w.log.Error("stored result is unreadable", "disputeRequestId", d.id, "err", err)
			w.nak(d, w.backoff(1))
			return
		}
		res.Replayed = true
		body, _ := json.Marshal(res)
		msgID := d.id + ":replay:" + strconv.FormatUint(d.meta.Sequence.Stream, 10)
		if _, err := w.publishResult(ctx, d.provider, d.action, d.id, body, msgID, d.meta.Sequence.Stream); err != nil {
			w.nak(d, w.backoff(1))
			return
		}
	}
	w.ack(ctx, d)
}

// reject answers a command that is never sent to the provider: a result,
// a dead letter with the raw bytes, then Term. Nothing is stored in Redis,
// so a corrected command may reuse the id (as Stripe does).
func (w *Worker) reject(ctx context.Context, d *delivery, code, message, reason string) {
	res := w.newResult(d, decision{outcome: Rejected, code: code, message: message}, 0)
	body, _ := json.Marshal(res)
	msgID := resultToken(d.id) + ":" + reason + ":" + strconv.FormatUint(d.meta.Sequence.Stream, 10)
	if _, err := w.publishResult(ctx, resultToken(d.provider), resultToken(d.action), d.id, body, msgID, d.meta.Sequence.Stream); err != nil {
		w.log.Error("could not publish a rejection; command will be redelivered", "err", err)
		w.nak(d, w.backoff(1))
		return
	}
	if err := w.deadLetter(ctx, d, reason, code+": "+message); err != nil {
		w.log.Error("could not write the dead letter; command will be redelivered", "err", err)
		w.nak(d, w.backoff(1))
		return
	}
	provider, action := metricLabels(d)
	w.m.Actions.WithLabelValues(provider, action, Rejected).Inc()
	w.log.Info("command rejected", "disputeRequestId", d.id, "subject", d.msg.Subject(), "code", code, "message", message)
	_ = d.msg.TermWithReason(reason)
}

// giveUp ends a command that could not even be claimed on its last
// delivery: a failed result and a dead letter, and no provider call.
func (w *Worker) giveUp(ctx context.Context, d *delivery, code, message string) {
	res := w.newResult(d, decision{outcome: Failed, code: code, message: message}, 0)
	body, _ := json.Marshal(res)
	msgID := d.id + ":giveup:" + strconv.FormatUint(d.meta.Sequence.Stream, 10)
	if _, err := w.publishResult(ctx, d.provider, d.action, d.id, body, msgID, d.meta.Sequence.Stream); err != nil {
		w.log.Error("could not publish a failure on the last delivery", "disputeRequestId", d.id, "err", err)
	}
	if err := w.deadLetter(ctx, d, ReasonRetriesExhausted, code+": "+message); err != nil {
		w.log.Error("could not write the dead letter on the last delivery", "disputeRequestId", d.id, "err", err)
	}
	provider, action := metricLabels(d)
	w.m.Actions.WithLabelValues(provider, action, Failed).Inc()
	_ = d.msg.TermWithReason(ReasonRetriesExhausted)
}

// lastDelivery reports whether this is the consumer's last allowed delivery.
func lastDelivery(d *delivery) bool { return isLast(d.meta.NumDelivered, d.maxDeliver) }

func isLast(delivered uint64, maxDeliver int) bool {
	return maxDeliver > 0 && delivered >= uint64(maxDeliver)
}

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
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
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
	m.Header.Set(HeaderDLQError, truncate(detail, 1024))
	m.Header.Set(HeaderDLQSubject, d.msg.Subject())
	m.Header.Set(HeaderDLQSequence, seq)
	m.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(d.meta.NumDelivered, 10))
	if d.id != "" {
		m.Header.Set(HeaderDisputeRequestID, d.id)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.cfg.JS.PublishMsg(pctx, m); err != nil {
		return err
	}
	provider, action := metricLabels(d)
	w.m.DLQ.WithLabelValues(provider, action, reason).Inc()
	return nil
}

func (w *Worker) ack(ctx context.Context, d *delivery) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.msg.DoubleAck(actx); err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		// A lost ack means a redelivery, which replays from Redis.
		w.log.Warn("ack not confirmed; a redelivery will be answered from the stored result", "disputeRequestId", d.id, "err", err)
	}
}

// nak asks for a redelivery after delay, except on the last allowed
// delivery, which JetStream would not honour: the command then ends with a
// failed result and a dead letter, never silently.
func (w *Worker) nak(d *delivery, delay time.Duration) {
	if lastDelivery(d) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.giveUp(ctx, d, CodeRetriesExhausted, "the last allowed delivery could not be completed (raise --max-deliver)")
		return
	}
	if err := d.msg.NakWithDelay(delay); err != nil {
		w.log.Warn("nak failed; the message will come back after AckWait", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// retry runs f up to n times with a short growing pause, for Redis writes
// whose outcome matters after a provider call.
func retry(ctx context.Context, n int, f func() error) error {
	var err error
	pause := 100 * time.Millisecond
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
