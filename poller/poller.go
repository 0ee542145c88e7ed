package poller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/disputesync/disputesync/internal/health"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
)

// Config of one source's poller. Zero values take the documented defaults.
type Config struct {
	Source     string // "disputeapi"
	BaseURL    string // the list path of docs/contract.md section 5 is appended
	Token      []byte // Authorization: Bearer, when set
	HTTPClient *http.Client
	RateLimit  float64 // list calls per second (token bucket); 0 = unlimited

	Interval           time.Duration   // --poll-interval, default 1m
	Lookback           time.Duration   // --poll-lookback, default 400 days
	FullRescanInterval time.Duration   // full rescan schedule, default DefaultFullRescanInterval
	Overlap            time.Duration   // watermark overlap, default 10m (clock skew)
	DeadlineWarnings   []time.Duration // default 72h, 24h
	LeaseTTL           time.Duration   // default 15s
	Instance           string          // this replica's id; default hostname + random

	// FullRescanPagesPerCycle bounds the pages the full rescan spends in one
	// cycle, so new disputes are not held up behind it; the rescan resumes
	// from its checkpoint in the next cycle. Default 200.
	FullRescanPagesPerCycle int
	// RetryAttempts per list call (default 5), the first backoff (default
	// 500ms, doubled per attempt with jitter) and its cap (default 15s).
	RetryAttempts int
	RetryBackoff  time.Duration
	RetryMaxDelay time.Duration

	JS      jetstream.JetStream
	Names   topology.Names
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
	// Health is the poller's readiness: not ready while it cannot read or
	// write its lease, and for good once the source stopped. Optional.
	Health *health.Role
}

// DefaultFullRescanInterval is how often a full rescan starts. Closed and
// dormant disputes change too (a second chargeback reopens one) and only
// the full rescan sees them, so a change must wait for the next one: at
// most this interval plus the rescan's own duration. At the default list
// rate (DefaultRateLimit) a rescan of 200 000 disputes is about 2 100 pages,
// under 2 minutes (7 at 5 pages/s), so such a change is seen within an
// hour; at 100 000 disputes the rescan amortizes to about 23 pages per
// 1-minute cycle, which keeps a steady cycle under 5% of a full scan.
const DefaultFullRescanInterval = 45 * time.Minute

// DefaultRateLimit is the default list rate (--poll-rate-limit), pages per
// second. A cycle with a full-rescan share (FullRescanPagesPerCycle, 200
// pages) and the open scan of 100 000 disputes with 2% open (about 22
// pages) takes about 11 s at this rate, so a change to an open dispute
// reaches its event within the interval plus one such cycle: within two
// poll intervals from an interval of 11 s up. The client slows below it
// on throttling or errors and recovers to it (see listClient.adapt).
const DefaultRateLimit = 20

// Poller syncs one source's dispute list into events.
type Poller struct {
	cfg      Config
	client   *listClient
	detector *Detector
	ckpt     jetstream.KeyValue
	lease    *lease
	logger   *slog.Logger

	mu          sync.Mutex // guards the fields below: Cycle is not reentrant
	cp          *checkpoint
	index       map[string]indexEntry // tracked (not final) disputes only
	indexLoaded bool

	leading atomic.Bool // inside Run holding the lease: publishes are fenced
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Source == "" {
		c.Source = "disputeapi"
	}
	def(&c.Interval, time.Minute)
	def(&c.Lookback, 400*24*time.Hour)
	def(&c.FullRescanInterval, DefaultFullRescanInterval)
	def(&c.Overlap, 10*time.Minute)
	def(&c.LeaseTTL, 15*time.Second)
	def(&c.RetryBackoff, 500*time.Millisecond)
	def(&c.RetryMaxDelay, 15*time.Second)
	if c.RetryAttempts <= 0 {
		c.RetryAttempts = 5
	}
	if c.FullRescanPagesPerCycle <= 0 {
		c.FullRescanPagesPerCycle = 200
	}
	if len(c.DeadlineWarnings) == 0 {
		c.DeadlineWarnings = DefaultDeadlineWarnings
	}
	if c.Instance == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.Instance = host + "-" + hex.EncodeToString(b)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
}

// New checks cfg and opens the buckets (topology.Setup creates them).
func New(cfg Config) (*Poller, error) {
	cfg.defaults()
	if cfg.BaseURL == "" || cfg.JS == nil || cfg.Metrics == nil {
		return nil, errors.New("poller: BaseURL, JS and Metrics are required")
	}
	if strings.ContainsAny(cfg.Source, ".*> ") {
		return nil, fmt.Errorf("poller: source %q is not a subject token", cfg.Source)
	}
	logger := cfg.Logger.With(slog.String("component", "poller"), slog.String("source", cfg.Source))
	det, err := NewDetector(cfg.JS, cfg.Names, cfg.Metrics, logger)
	if err != nil {
		return nil, err
	}
	det.SetDeadlineWarnings(cfg.DeadlineWarnings)
	det.setNow(cfg.Now)
	ckpt, err := cfg.JS.KeyValue(context.Background(), cfg.Names.PollerBucket())
	if err != nil {
		return nil, fmt.Errorf("poller: checkpoint bucket %s: %w", cfg.Names.PollerBucket(), err)
	}
	cl := &listClient{
		source: cfg.Source, url: strings.TrimRight(cfg.BaseURL, "/") + listPath, token: cfg.Token,
		hc: cfg.HTTPClient, metrics: cfg.Metrics, logger: logger,
		attempts: cfg.RetryAttempts, backoff: cfg.RetryBackoff, maxDelay: cfg.RetryMaxDelay,
	}
	if cfg.RateLimit > 0 {
		cl.maxRate = rate.Limit(cfg.RateLimit)
		cl.limiter = rate.NewLimiter(cl.maxRate, max(1, int(cfg.RateLimit)))
	}
	return &Poller{
		cfg: cfg, client: cl, detector: det, ckpt: ckpt, logger: logger,
		lease: newLease(ckpt, cfg.Source, cfg.Instance, cfg.LeaseTTL),
	}, nil
}

// Detector is the change detector this poller publishes through.
func (p *Poller) Detector() *Detector { return p.detector }

// Run polls while this replica holds the source's lease, and waits as a
// standby otherwise, until ctx ends. A rejected request (code "400") stops
// the source: it is logged once at error level, counted in
// poll_pages_total{result="rejected"}, the lease is released, and Run waits
// for ctx and returns that error, so the process does not crash-loop.
func (p *Poller) Run(ctx context.Context) error {
	p.logger.Info("poller starting", slog.String("instance", p.cfg.Instance),
		slog.Duration("interval", p.cfg.Interval), slog.Duration("lease_ttl", p.cfg.LeaseTTL))
	tick := p.cfg.LeaseTTL / 3
	var leaseErr string // the last lease failure logged: each is logged once, not every tick
	for ctx.Err() == nil {
		held, holder, err := p.lease.tryAcquire(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if err.Error() != leaseErr {
				leaseErr = err.Error()
				p.logger.Warn("lease check failed", slog.String("error", leaseErr))
			}
			p.cfg.Health.NotReady("cannot hold its lease: " + leaseErr)
		case err == nil:
			if leaseErr != "" {
				p.logger.Info("lease check works again")
			}
			leaseErr = ""
			p.cfg.Health.Ready() // leading or a healthy standby
		}
		if !held {
			p.logger.Debug("standing by", slog.String("holder", holder))
			sleep(ctx, tick)
			continue
		}
		p.logger.Info("lease acquired, polling", slog.String("instance", p.cfg.Instance))
		err = p.lead(ctx)
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		p.lease.release(releaseCtx)
		cancel()
		if errors.Is(err, ErrRejected) {
			p.cfg.Health.NotReady("source " + p.cfg.Source + " stopped: the list API rejected the request (" + err.Error() + "); fix the configuration and restart")
			p.logger.Error("source stopped: the list API rejected the request; fix the configuration and restart",
				slog.String("error", err.Error()))
			<-ctx.Done()
			return fmt.Errorf("poller %s stopped: %w", p.cfg.Source, err)
		}
		if ctx.Err() == nil {
			p.logger.Warn("lease lost, standing by", slog.Any("error", err))
		}
	}
	return nil
}

// lead runs cycles while the lease holds; a renewer cancels them when the
// lease is lost.
func (p *Poller) lead(ctx context.Context) error {
	// Another replica may have advanced the checkpoint and snapshots while
	// this one stood by: start from the stored state.
	p.mu.Lock()
	p.cp, p.indexLoaded = nil, false
	p.mu.Unlock()
	p.leading.Store(true)
	defer p.leading.Store(false)
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			if err := p.lease.renew(lctx); errors.Is(err, ErrLeaseLost) {
				cancel(err)
				return
			} else if err != nil && lctx.Err() == nil {
				p.logger.Warn("lease renewal failed", slog.String("error", err.Error()))
			}
			if err := p.lease.fence(); err != nil {
				cancel(err)
				return
			}
		}
	})
	defer wg.Wait()
	defer cancel(nil)
	for {
		stats, err := p.Cycle(lctx)
		if cause := context.Cause(lctx); cause != nil && lctx.Err() != nil {
			if ctx.Err() != nil {
				return nil
			}
			return cause
		}
		switch {
		case errors.Is(err, ErrRejected), errors.Is(err, ErrLeaseLost):
			return err
		case err != nil:
			p.logger.Warn("poll cycle failed; retrying next interval", slog.String("error", err.Error()))
		}
		wait := p.cfg.Interval
		if err == nil && stats.FullRescanPending {
			wait = 0 // the full rescan ran out of its page budget: go on
		}
		sleep(lctx, wait) // an ended lctx is handled at the top of the loop
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
