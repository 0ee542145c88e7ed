package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/disputesync/disputesync/internal/embedded"
	"github.com/disputesync/disputesync/sandbox"
)

type devFlags struct {
	dataDir     string
	natsAddr    string
	sandboxAddr string
	disputes    int
	tick        time.Duration
	faults      []string
	list        listReadingFlags
}

func devCmd() *subcommand {
	var f devFlags
	return &subcommand{
		name:     "dev",
		synopsis: "dev [flags]",
		summary:  "the whole system on this machine with nothing installed",
		detail: `Starts an embedded NATS server with JetStream (data in --data-dir), Redis from
--redis-url or else an embedded Redis-protocol server (idempotency state then
lives in memory), the provider sandbox with generated disputes, and the
poller, worker, webhook receiver and metrics endpoint against them. Prints
where each part listens and a ready-to-paste action command. Ctrl-C stops it.`,
		flags: func(o *options, c *config) {
			o.str(&f.dataDir, "data-dir", "PATH", ".dev", "where the embedded NATS keeps its JetStream data")
			o.str(&f.natsAddr, "nats-addr", "ADDR", "127.0.0.1:4223", "where the embedded NATS listens (4222 is often a system NATS)")
			o.str(&f.sandboxAddr, "sandbox-addr", "ADDR", "127.0.0.1:8086", "where the provider sandbox listens")
			o.integer(&f.disputes, "disputes", 200, "generated sandbox disputes")
			o.duration(&f.tick, "tick", 10*time.Second, "the sandbox population's clock (0: static)")
			o.multi(&f.faults, "fault", "SPEC", "inject sandbox faults, as disputesync sandbox --fault does")
			f.list.register(o)
			o.secretStr(&c.RedisURL, "redis-url", "URL", "", "Redis to use; empty: an embedded in-memory Redis-protocol server")
			o.str(&c.Prefix, "prefix", "NAME", "disputes", "subject root and name prefix")
			o.str(&c.MetricsAddr, "metrics-addr", "ADDR", "127.0.0.1:9464", "serves /metrics, /healthz and /readyz")
			o.str(&c.WebhookAddr, "webhook-addr", "ADDR", "127.0.0.1:8087", "where provider notifications are received")
			o.duration(&c.PollInterval, "poll-interval", 5*time.Second, "time between poll cycles")
			o.list(&c.Roles, "roles", "poller,worker,webhook", "roles to run")
			o.logFlags(c)
		},
		run: func(ctx context.Context, e env, c *config, o *options, _ []string) error {
			return runDev(ctx, e, c, o, f)
		},
	}
}

func runDev(ctx context.Context, e env, c *config, o *options, f devFlags) error {
	log := newLogger(c, e)
	start := time.Now()

	sbCfg := sandbox.Config{Disputes: f.disputes, Tick: f.tick, Logger: log.With("component", "sandbox")}
	if err := f.list.apply(&sbCfg); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(f.natsAddr)
	if err != nil {
		return fmt.Errorf("%w: --nats-addr must be host:port", errUsage)
	}
	port, _ := strconv.Atoi(portStr)
	storeDir := filepath.Join(f.dataDir, "nats")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if l, err := net.Listen("tcp", f.natsAddr); err != nil {
		return fmt.Errorf("%s is taken (another dev or NATS?): choose another with --nats-addr", f.natsAddr)
	} else {
		l.Close()
	}
	ns, err := embedded.StartNATS(embedded.NATSOptions{Host: host, Port: port, StoreDir: storeDir, MaxPayload: 8 << 20})
	if err != nil {
		return err
	}
	defer ns.Shutdown()

	redisNote := string(c.RedisURL)
	if c.RedisURL == "" {
		mr, err := embedded.StartRedis("")
		if err != nil {
			return err
		}
		defer mr.Close()
		c.RedisURL = secret(mr.URL())
		c.embeddedRedis = true
		redisNote = mr.URL() + " (embedded, in memory: idempotency state is lost when dev stops; give --redis-url to keep it)"
		fmt.Fprintln(e.stderr, "notice: no --redis-url given: using an embedded Redis-protocol server; idempotency state lives in memory only")
	}

	sb := sandbox.New(sbCfg)
	if err := applyFaults(sb, f.faults); err != nil {
		return err
	}
	var webhookURL atomic.Value
	webhookURL.Store("")
	sandboxAddr, waitSandbox, err := serveHTTP(ctx, f.sandboxAddr, sandboxHandler(sb, func() string { return webhookURL.Load().(string) }), log, "sandbox")
	if err != nil {
		return fmt.Errorf("%w (choose another with --sandbox-addr)", err)
	}
	sbCtx, stopSandbox := context.WithCancel(ctx)
	defer stopSandbox()
	go func() { _ = sb.Run(sbCtx) }()

	// Everything else is "run" with the sandbox as every provider.
	sbURL := "http://" + sandboxAddr
	c.NATSURL = ns.URL()
	c.DisputeAPIURL, c.AlipayURL, c.AlipayPlusURL, c.IngenicoURL = sbURL, sbURL, sbURL, sbURL
	fillRunDefaults(c)
	sys, wait, err := startSystem(ctx, c, log)
	if err != nil {
		return err
	}
	if sys.webhookAddr != "" {
		webhookURL.Store("http://" + sys.webhookAddr)
	}
	ids := sb.SampleIDs()
	dispute := "<alipay dispute id>"
	if len(ids.Alipay) > 0 {
		dispute = ids.Alipay[0]
	}
	fmt.Fprintf(e.stdout, `
disputesync dev is up (%.1fs)
  NATS (JetStream)  %s   data in %s
  Redis             %s
  sandbox           %s   (control API: %s/_sandbox/ids)
  metrics           http://%s/metrics   /healthz   /readyz
  webhooks          %s   (push one: curl -X POST %s/_sandbox/notify -d '{"kind":"disputeapi","disputeId":"<id>","type":"CHARGEBACK"}')
  subjects          %s  %s  %s  %s

Watch events and results:
  go run ./cmd/disputesync tail --nats-url %s --prefix %s --results

Accept a sandbox dispute:
  go run ./cmd/disputesync action alipay accept_dispute --nats-url %s --dispute-id %s --prefix %s

or with the nats CLI (Nats-Msg-Id: the id, a colon, the first 16 hex digits of the body's SHA-256):
  body='{"disputeRequestId":"dev-0001","disputeId":"%s"}'
  nats --server %s pub %s "$body" -H "Nats-Msg-Id:dev-0001:$(printf '%%s' "$body" | sha256sum | cut -c1-16)"

Ctrl-C stops everything.
`, time.Since(start).Seconds(), ns.URL(), storeDir, redisNote, sbURL, sbURL, sys.metricsAddr, webhookLine(sys), sbURL,
		sys.names.EventsAll(), sys.names.ActionsAll(), sys.names.ResultsAll(), sys.names.DLQAll(),
		ns.URL(), c.Prefix, ns.URL(), dispute, c.Prefix, dispute, ns.URL(), sys.names.ActionSubject("alipay", "accept_dispute"))

	<-ctx.Done()
	fmt.Fprintln(e.stderr, "stopping...")
	err = wait()
	stopSandbox()
	if werr := waitSandbox(); werr != nil && !errors.Is(werr, context.Canceled) {
		err = errors.Join(err, werr)
	}
	return err
}

func webhookLine(s *system) string {
	if s.webhookAddr == "" {
		return "(not running)"
	}
	return "http://" + s.webhookAddr + "/webhooks/..."
}

// fillRunDefaults gives the flags "dev" does not expose the values "run"
// would default to.
func fillRunDefaults(c *config) {
	full := &config{}
	o := newOptions("run")
	runCmd().flags(o, full)
	keep := *c
	*c = *full
	c.NATSURL, c.RedisURL, c.Prefix = keep.NATSURL, keep.RedisURL, keep.Prefix
	c.MetricsAddr, c.WebhookAddr, c.PollInterval, c.Roles = keep.MetricsAddr, keep.WebhookAddr, keep.PollInterval, keep.Roles
	c.DisputeAPIURL, c.AlipayURL, c.AlipayPlusURL, c.IngenicoURL = keep.DisputeAPIURL, keep.AlipayURL, keep.AlipayPlusURL, keep.IngenicoURL
	c.LogLevel, c.LogFormat, c.embeddedRedis = keep.LogLevel, keep.LogFormat, keep.embeddedRedis
	c.dev = true
}
