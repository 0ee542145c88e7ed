package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/disputesync/disputesync/sandbox"
)

type sandboxFlags struct {
	addr     string
	disputes int
	seed     int
	tick     time.Duration
	keys     bool
	faults   []string
	webhook  string
	list     listReadingFlags
}

// listReadingFlags choose the sandbox list API's readings where the list's
// document is silent (sandbox.Config.CreatedPrecision and PeriodReading);
// sandbox and dev share them.
type listReadingFlags struct {
	createdPrecision time.Duration
	periodReading    string
}

func (l *listReadingFlags) register(o *options) {
	o.duration(&l.createdPrecision, "created-precision", time.Second, "how finely the sandbox list API keeps creation times; below 1s each dispute's stored creation time has a sub-second part its disputes_date does not show")
	o.str(&l.periodReading, "period-reading", "READING", sandbox.PeriodView, "how the sandbox list API reads type disputes-period: view (open disputes in their appeal period, also listed under dispute) or category (each record under exactly one type)")
}

// apply checks the flags and sets them in cfg.
func (l *listReadingFlags) apply(cfg *sandbox.Config) error {
	if l.createdPrecision <= 0 {
		return fmt.Errorf("%w: --created-precision must be positive", errUsage)
	}
	if l.periodReading != sandbox.PeriodView && l.periodReading != sandbox.PeriodCategory {
		return fmt.Errorf("%w: --period-reading %q: want %s or %s", errUsage, l.periodReading, sandbox.PeriodView, sandbox.PeriodCategory)
	}
	cfg.CreatedPrecision, cfg.PeriodReading = l.createdPrecision, l.periodReading
	return nil
}

func sandboxCmd() *subcommand {
	var f sandboxFlags
	return &subcommand{
		name:     "sandbox",
		synopsis: "sandbox [flags]",
		summary:  "the provider emulator alone: all four providers and the list API",
		detail: `Serves the disputeapi list API and actions, Alipay, Alipay+ and Ingenico as their
documents describe them, with a generated, living population of disputes,
fault injection and a control API under /_sandbox/ (ground truth, applied
effects, faults). It signs and verifies with fixed, published test keys
(--print-test-keys), so a worker started separately works with it unchanged.`,
		flags: func(o *options, c *config) {
			o.str(&f.addr, "addr", "ADDR", "127.0.0.1:8086", "where the sandbox listens")
			o.integer(&f.disputes, "disputes", 200, "generated disputeapi disputes")
			o.integer(&f.seed, "seed", 1, "generator seed")
			o.duration(&f.tick, "tick", 10*time.Second, "the living population's clock: disputes are created and change every tick (0: static)")
			o.multi(&f.faults, "fault", "SPEC", "inject faults: provider[.endpoint]:key=value,... with keys error, throttle, timeout, applyThenFail, malformed, unavailable (rates 0..1), latency, rateLimit; e.g. alipay.acceptDispute:error=0.2,latency=150ms")
			o.str(&f.webhook, "webhook-url", "URL", "http://127.0.0.1:8087", "where POST /_sandbox/notify delivers notifications by default (disputesync's --webhook-addr)")
			f.list.register(o)
			o.boolean(&f.keys, "print-test-keys", "print the published test keys and exit")
			o.logFlags(c)
		},
		run: func(ctx context.Context, e env, c *config, _ *options, _ []string) error {
			if f.keys {
				sandbox.TestKeys.Print(e.stdout)
				return nil
			}
			if f.tick < 0 || f.disputes < 0 {
				return fmt.Errorf("%w: --tick and --disputes must not be negative", errUsage)
			}
			log := newLogger(c, e)
			cfg := sandbox.Config{Disputes: f.disputes, Seed: int64(f.seed), Tick: f.tick, Logger: log}
			if err := f.list.apply(&cfg); err != nil {
				return err
			}
			sb := sandbox.New(cfg)
			if err := applyFaults(sb, f.faults); err != nil {
				return err
			}
			addr, wait, err := serveHTTP(ctx, f.addr, sandboxHandler(sb, func() string { return f.webhook }), log, "sandbox")
			if err != nil {
				return err
			}
			go func() { _ = sb.Run(ctx) }()
			fmt.Fprintf(e.stdout, "sandbox listening on http://%s (control API: http://%s/_sandbox/ids)\n", addr, addr)
			return wait()
		},
	}
}

func applyFaults(sb *sandbox.Server, specs []string) error {
	for _, spec := range specs {
		provider, endpoint, faults, err := sandbox.ParseFaultSpec(spec)
		if err != nil {
			return fmt.Errorf("%w: --fault %q: %v", errUsage, spec, err)
		}
		sb.SetFaults(provider, endpoint, faults)
	}
	return nil
}

// sandboxHandler mounts the notification sender's control endpoint beside
// the sandbox; webhookURL is read at each request, because dev learns it
// only once its webhook listens.
func sandboxHandler(sb *sandbox.Server, webhookURL func() string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", sb)
	mux.HandleFunc("/_sandbox/notify", func(w http.ResponseWriter, r *http.Request) {
		sb.NotifyHandler(webhookURL())(w, r)
	})
	return mux
}
