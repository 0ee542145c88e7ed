package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/poller"
	"github.com/disputesync/disputesync/worker"
)

// system is the running roles of one process ("run" and "dev").
type system struct {
	cfg   *config
	log   *slog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	rdb   redis.UniversalClient
	names topology.Names
	m     *metrics.Metrics

	metricsAddr string
	webhookAddr string
}

// startSystem connects, sets the topology up and starts the roles; wait
// blocks until they have all stopped after ctx ends.
func startSystem(ctx context.Context, c *config, log *slog.Logger) (*system, func() error, error) {
	s := &system{cfg: c, log: log, m: metrics.New()}
	s.names, _ = topology.New(c.Prefix)
	// Configuration first: an error there must not leave streams behind.
	cr, err := preflight(c, log)
	if err != nil {
		return nil, nil, err
	}
	s.nc, s.js, err = connectNATS(c, log, "disputesync")
	if err != nil {
		return nil, nil, err
	}
	closeAll := func() {
		if s.rdb != nil {
			_ = s.rdb.Close()
		}
		_ = s.nc.Drain()
	}
	s.rdb, err = connectRedis(ctx, c, log)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	checkedRedis := s.rdb
	if c.embeddedRedis {
		checkedRedis = nil
	}
	if err := checkServers(ctx, s.nc, checkedRedis, log); err != nil {
		closeAll()
		return nil, nil, err
	}
	changes, err := topology.Setup(ctx, s.js, s.names, topologyOptions(c))
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("setup: %w", err)
	}
	for _, ch := range changes {
		if ch.Action != "unchanged" {
			log.Info("topology", "kind", ch.Kind, "name", ch.Name, "action", ch.Action)
		}
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	ctx, cancel := context.WithCancel(ctx)
	// abort stops the roles already started and waits for them before the
	// connections they use are closed.
	abort := func() {
		cancel()
		wg.Wait()
		closeAll()
	}
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("component stopped", "component", name, "err", err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
				cancel() // one role failing stops the process: a supervisor restarts it whole
			}
		}()
	}

	s.m.WatchConsumers(s.js, []metrics.ConsumerTarget{{Stream: s.names.ActionsStream(), Consumer: s.names.WorkerConsumer()}})
	ready := &readiness{nc: s.nc, js: s.js, rdb: s.rdb, names: s.names, m: s.m}
	addr, waitMetrics, err := serveMetrics(ctx, c.MetricsAddr, s.m, ready, log)
	if err != nil {
		abort()
		return nil, nil, err
	}
	s.metricsAddr = addr
	start("metrics", func(context.Context) error { return waitMetrics() })
	start("readiness", func(ctx context.Context) error { ready.watch(ctx); return nil })

	if slices.Contains(c.Roles, "worker") {
		obj, err := s.js.ObjectStore(ctx, s.names.EvidenceBucket())
		if err != nil {
			abort()
			return nil, nil, fmt.Errorf("evidence bucket: %w", err)
		}
		mux, err := providerMux(c, cr, s.rdb, s.names, worker.ObjectEvidence{Store: obj}, s.m, log)
		if err != nil {
			abort()
			return nil, nil, err
		}
		w, err := worker.New(worker.Config{
			JS: s.js, Redis: s.rdb, Names: s.names, Mux: mux,
			Concurrency: c.Concurrency, MaxAttempts: c.MaxAttempts, RetryDeadline: c.RetryDeadline,
			Lease: c.Lease, Retention: c.Retention, Metrics: s.m, Logger: log,
		})
		if err != nil {
			abort()
			return nil, nil, err
		}
		// Known series start at 0, so the first dead letter or rejection
		// is an increase Prometheus can see.
		s.m.Preset(metrics.Known{
			Actions:          metrics.ActionsFromKeys(mux.Registered()),
			DLQReasons:       []string{worker.ReasonInvalid, worker.ReasonRule, worker.ReasonInconsistent, worker.ReasonRetriesExhausted, worker.ReasonNotConfigured},
			WebhookProviders: []string{"alipay", "alipayplus", "disputeapi"},
		})
		start("worker", w.Run)
	}
	var detector *poller.Detector
	if slices.Contains(c.Roles, "poller") {
		p, err := poller.New(poller.Config{
			Source: "disputeapi", BaseURL: c.DisputeAPIURL, Token: cr.disputeAPIToken, RateLimit: c.PollRateLimit,
			Interval: c.PollInterval, Lookback: c.PollLookback, FullRescanInterval: c.PollFullRescan,
			DeadlineWarnings: c.DeadlineWarnings, JS: s.js, Names: s.names, Metrics: s.m, Logger: log,
		})
		if err != nil {
			abort()
			return nil, nil, err
		}
		detector = p.Detector()
		start("poller", p.Run)
	}
	if slices.Contains(c.Roles, "webhook") {
		addr, run, err := startWebhook(s, cr, detector)
		if err != nil {
			abort()
			return nil, nil, err
		}
		s.webhookAddr = addr
		start("webhook", run)
	}
	log.Info("disputesync running", "roles", c.Roles, "prefix", c.Prefix, "metrics", "http://"+s.metricsAddr+"/metrics")

	wait := func() error {
		wg.Wait()
		cancel()
		// Drain: finish what is buffered, then close; bounded so Ctrl-C
		// always ends the process.
		closed := make(chan struct{})
		s.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := s.nc.Drain(); err != nil {
			s.nc.Close()
		}
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			s.nc.Close()
		}
		_ = s.rdb.Close()
		return errors.Join(errs...)
	}
	return s, wait, nil
}
