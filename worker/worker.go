package worker

import (
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/health"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
)

// Defaults of Config (docs/contract.md section 1 documents the flags).
const (
	defaultConcurrency   = 8
	defaultMaxAttempts   = 8
	defaultRetryDeadline = time.Hour
	defaultLease         = 30 * time.Second
	defaultRetention     = 30 * 24 * time.Hour
	defaultBackoffBase   = time.Second
	defaultBackoffMax    = 5 * time.Minute
	defaultShutdownGrace = 4 * time.Second
)

// Timeouts of the worker's own bookkeeping. Each bounds a call that must
// not hang a delivery forever; none is a tuning knob.
const (
	// bookkeepingTimeout bounds carrying out a decision (storing the result,
	// publishing it, the dead letter, the ack). It is taken from a context
	// that outlives the shutdown grace period, because releasing a claim or
	// storing a known result is what keeps the next holder from waiting out
	// the lease or asking the provider again; 15 s covers the store's
	// retries (storeRetries) plus one publish and one ack.
	bookkeepingTimeout = 15 * time.Second
	// publishTimeout bounds one JetStream publish (a result or a dead
	// letter): long enough for a stream leader election, short enough
	// that the delivery is naked well before its AckWait.
	publishTimeout = 10 * time.Second
	// ackTimeout bounds waiting for the server to confirm an ack: a lost
	// ack only means a redelivery, which the stored result answers.
	ackTimeout = 5 * time.Second
	// shutdownRedelivery is the nak delay of a delivery left unstarted by
	// a shutdown: soon, so another replica picks it up, but not at once,
	// so it does not bounce back to a replica that is stopping.
	shutdownRedelivery = time.Second
	// storeRetries and storeRetryPause bound the retries of a Redis write
	// whose outcome matters after a provider call (100+200+400+800 ms of
	// pauses: a Redis failover or a blip, not an outage).
	storeRetries    = 5
	storeRetryPause = 100 * time.Millisecond
	// dlqErrorBytes bounds the Dlq-Error header: a provider's error can be
	// long, and NATS headers share the message's size limit.
	dlqErrorBytes = 1024
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
	// Health is the worker's readiness: a Redis ACL refusal of the
	// idempotency store marks it not ready. Optional.
	Health *health.Role
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
	cfg = withDefaults(cfg)
	store := NewStore(cfg.Redis, cfg.Names, cfg.Lease, cfg.Retention)
	store.now, store.health = cfg.Now, cfg.Health // one clock for leases and the retry deadline
	return &Worker{
		cfg:   cfg,
		store: store,
		log:   cfg.Logger.With("component", "worker", "instance", cfg.Instance),
		m:     cfg.Metrics,
	}, nil
}

func withDefaults(cfg Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = defaultConcurrency
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = defaultMaxAttempts
	}
	def(&cfg.RetryDeadline, defaultRetryDeadline)
	def(&cfg.Lease, defaultLease)
	def(&cfg.Retention, defaultRetention)
	def(&cfg.BackoffBase, defaultBackoffBase)
	def(&cfg.BackoffMax, defaultBackoffMax)
	def(&cfg.ShutdownGrace, defaultShutdownGrace)
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
	return cfg
}

// Store exposes the idempotency store (tests and operators' tools).
func (w *Worker) Store() *Store { return w.store }
