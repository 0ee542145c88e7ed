package worker_test

// Acceptance tests that need a Redis of their own (stopped mid-run) and a
// provider call whose worker is lost after the provider answered.

import (
	"context"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/worker"
)

// redisProcess is a redis-server of the test's own, so that it can be
// stopped without disturbing the other tests. It keeps an append-only file
// fsynced on every write, so a restart loses nothing: the outage is a
// stopped Redis, not an amnesiac one (that is RELIABILITY R4).
type redisProcess struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisProcess {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	r := &redisProcess{t: t, bin: bin, port: port, dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisProcess) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisProcess) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir, "--maxmemory-policy", "noeviction")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer", r.addr())
		}
		time.Sleep(20 * time.Millisecond) // polling the process
	}
}

func (r *redisProcess) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Acceptance 5: Redis stopped in the middle of a run. No provider call is
// made while it is down (fail closed), and every command still ends with
// exactly one result, applied once.
func TestAcceptanceRedisOutageFailsClosed(t *testing.T) {
	t.Parallel()
	outage := envDuration(t, "DISPUTESYNC_ACCEPTANCE_REDIS_OUTAGE", 10*time.Second)
	const n = 300
	start := time.Now()
	env := testenv.New(t)
	env.Setup(t, topology.Options{AckWait: 3 * time.Second, MaxDeliver: 100})
	rp := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rp.addr(), DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	p := newProviderRig(t)
	// Some latency, so that calls are in flight when Redis goes.
	for _, prov := range []string{sandbox.ProviderAlipay, sandbox.ProviderAlipayPlus, sandbox.ProviderIngenico} {
		p.sb.SetFaults(prov, "*", sandbox.Faults{Latency: 20 * time.Millisecond})
	}
	m := metrics.New()
	mux := p.mux(t, rdb, env.Names, m)
	logs := newCountingHandler()
	var cmds []expectation
	for _, c := range workload(p, env.Names, n) {
		if c.outcome == worker.Succeeded {
			cmds = append(cmds, c)
		}
	}
	before, during := cmds[:len(cmds)/2], cmds[len(cmds)/2:]
	results := collect(t, env)
	startFleet(t, 3, 0, func(instance string) (*worker.Worker, error) {
		return worker.New(worker.Config{JS: env.JS, Redis: rdb, Names: env.Names, Mux: mux, Metrics: m,
			Instance: instance, Concurrency: 8, MaxAttempts: 20, Lease: 2 * time.Second,
			BackoffBase: 20 * time.Millisecond, BackoffMax: time.Second, Logger: slog.New(logs)})
	})

	publishAll(t, env.JS, before, "before")
	// Stop Redis once part of the run is done.
	deadline := time.Now().Add(time.Minute)
	for results.len() < len(before)/3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d results before the outage", results.len())
		}
		time.Sleep(10 * time.Millisecond) // polling the collector
	}
	rp.kill()
	down := time.Now()
	doneAtStop := results.len()
	publishAll(t, env.JS, during, "during")
	// Calls that had their claim before the outage may still finish; give
	// them well over the provider timeout, then nothing may reach the
	// provider until Redis is back.
	settle := 2 * providerTimeout
	time.Sleep(outage) // the outage itself: this test's fault, not a synchronisation
	calls := p.calls.between(down.Add(settle), time.Now())
	rp.start()
	up := time.Now()
	unavailable := logs.of("idempotency store unavailable")

	awaitDrained(t, env, results, len(cmds), 2*time.Minute)
	tl := check(t, cmds, results.snapshot(), p)
	t.Logf("Redis down %v with %d of %d results in: %d provider calls while down (after the first %v), %d deliveries refused for want of a claim; "+
		"drained %v after Redis returned (total %v): %s",
		up.Sub(down).Round(time.Millisecond), doneAtStop, len(cmds), calls, settle, unavailable,
		time.Since(up).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), tl)
	if calls != 0 {
		t.Errorf("%d provider calls were made while Redis was down", calls)
	}
	if doneAtStop >= len(cmds) {
		t.Errorf("every command finished before Redis stopped: the outage tested nothing")
	}
	if unavailable == 0 {
		t.Errorf("no delivery met the unavailable store: the outage tested nothing")
	}
	if !tl.clean() || tl.results != len(cmds) {
		t.Errorf("not exactly once across the outage: %s", tl)
	}
}

// crashAfterApply wraps a real handler: after its first provider call has
// returned, it kills the worker it runs in (its run context, NATS
// connection and Redis client), so that the answer never reaches Redis.
type crashAfterApply struct {
	handlers.Handler
	crash func()
	once  sync.Once
	mu    sync.Mutex
	calls []handlers.Call
	errs  []error
}

func (c *crashAfterApply) LockKey(cmd *handlers.Command) string {
	return handlers.LockKey(c.Handler, cmd)
}

func (c *crashAfterApply) Apply(ctx context.Context, call *handlers.Call) (*handlers.Response, error) {
	resp, err := c.Handler.Apply(ctx, call)
	c.mu.Lock()
	c.calls = append(c.calls, *call)
	c.errs = append(c.errs, err)
	c.mu.Unlock()
	if c.crash != nil {
		c.once.Do(c.crash)
	}
	return resp, err
}

func (c *crashAfterApply) recorded() ([]handlers.Call, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]handlers.Call(nil), c.calls...), append([]error(nil), c.errs...)
}

// W5: a worker dies after the provider answered S and before Redis
// recorded it; a second worker takes over after the lease, reconciles with
// the provider (idempotency key, or REPEAT_REQUEST for Alipay) and the
// command succeeds with no second effect.
func TestAcceptanceTakeoverAfterProviderAnswered(t *testing.T) {
	t.Parallel()
	cases := []struct {
		provider, action, sbProvider string
		body                         func(p *providerRig, id string) string
		wantCode                     string
	}{
		{"alipayplus", "initiate_escalation", sandbox.ProviderAlipayPlus, func(p *providerRig, id string) string {
			return escalationBody(id, p.sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{}).PaymentRequestID, "AMOUNT_DIFFER", "500")
		}, "SUCCESS"},
		{"ingenico", "submit_dispute", sandbox.ProviderIngenico, func(p *providerRig, id string) string {
			return disputeBody(id, p.sb.CreateIngenicoDispute(sandbox.IngenicoDispute{}).ID, `{}`)
		}, sandbox.IngenicoCreated},
		{"alipay", "accept_dispute", sandbox.ProviderAlipay, func(p *providerRig, id string) string {
			return disputeBody(id, p.sb.CreateAlipayDispute(sandbox.AlipayDispute{}).DisputeID, `{}`)
		}, "REPEAT_REQUEST"},
	}
	for _, c := range cases {
		t.Run(c.provider, func(t *testing.T) {
			t.Parallel()
			const lease, ackWait = time.Second, 2 * time.Second
			env := testenv.New(t)
			env.Setup(t, topology.Options{AckWait: ackWait})
			p := newProviderRig(t)
			results := collect(t, env)
			m := metrics.New()
			id := "w5-" + c.provider

			// Worker A, on connections of its own so that it can die.
			ncA, err := nats.Connect(env.NATSURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(ncA.Close)
			jsA, err := jetstream.New(ncA)
			if err != nil {
				t.Fatal(err)
			}
			opts, err := redis.ParseURL(env.RedisURL)
			if err != nil {
				t.Fatal(err)
			}
			rdbA := redis.NewClient(opts)
			ctxA, cancelA := context.WithCancel(context.Background())
			t.Cleanup(cancelA)
			muxA := handlers.NewMux()
			real, _ := p.mux(t, rdbA, env.Names, m).Handler(c.provider, c.action)
			var crashed time.Time
			crashedCh := make(chan struct{})
			wrapA := &crashAfterApply{Handler: real, crash: func() {
				crashed = time.Now()
				cancelA()
				ncA.Close()
				_ = rdbA.Close()
				close(crashedCh)
			}}
			muxA.Register(c.provider, c.action, wrapA)
			wA, err := worker.New(worker.Config{JS: jsA, Redis: rdbA, Names: env.Names, Mux: muxA, Metrics: m, Instance: "A",
				Lease: lease, ShutdownGrace: 50 * time.Millisecond, BackoffBase: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			doneA := make(chan struct{})
			go func() { defer close(doneA); _ = wA.Run(ctxA) }()
			t.Cleanup(func() { <-doneA })

			msg := nats.NewMsg(env.Names.ActionSubject(c.provider, c.action))
			msg.Data = []byte(c.body(p, id))
			if _, err := env.JS.PublishMsg(testenv.Context(t), msg); err != nil {
				t.Fatal(err)
			}
			select {
			case <-crashedCh:
			case <-time.After(30 * time.Second):
				t.Fatal("worker A never called the provider")
			}
			<-doneA
			if callsA, errsA := wrapA.recorded(); len(callsA) != 1 || errsA[0] != nil {
				t.Fatalf("worker A's provider call: %d calls, errors %v; want one that succeeded", len(callsA), errsA)
			}
			if got := len(p.sb.EffectsFor(c.sbProvider, id, "")); got != 1 {
				t.Fatalf("effects after worker A's call = %d, want 1", got)
			}

			// Worker B takes over.
			muxB := handlers.NewMux()
			realB, _ := p.mux(t, env.Redis, env.Names, m).Handler(c.provider, c.action)
			wrapB := &crashAfterApply{Handler: realB}
			muxB.Register(c.provider, c.action, wrapB)
			startFleet(t, 1, 0, func(string) (*worker.Worker, error) {
				return worker.New(worker.Config{JS: env.JS, Redis: env.Redis, Names: env.Names, Mux: muxB, Metrics: m, Instance: "B",
					Lease: lease, BackoffBase: 20 * time.Millisecond})
			})
			awaitDrained(t, env, results, 1, 30*time.Second)
			recovery := time.Since(crashed)
			rs := results.snapshot()
			if len(rs) != 1 {
				t.Fatalf("results = %+v, want exactly one", rs)
			}
			r := rs[0]
			if r.Outcome != worker.Succeeded || r.Replayed || r.Code != c.wantCode || r.Attempts != 2 || r.DisputeRequestID != id {
				t.Errorf("result %+v, want succeeded %s after 2 attempts", r, c.wantCode)
			}
			callsB, errsB := wrapB.recorded()
			if len(callsB) != 1 || !callsB[0].Takeover || !callsB[0].Recover || errsB[0] != nil {
				t.Errorf("worker B's calls %+v (errors %v), want one takeover call that reconciled", callsB, errsB)
			}
			if got := len(p.sb.EffectsFor(c.sbProvider, id, "")); got != 1 {
				t.Errorf("effects = %d, want 1 (no duplicate)", got)
			}
			if got := p.calls.of(id); got != 2 {
				t.Errorf("provider calls = %d, want 2 (the applied one and the reconciliation)", got)
			}
			// RELIABILITY W5: recovery within lease + AckWait + a backoff step,
			// with slack for a loaded machine.
			if limit := lease + ackWait + 3*time.Second; recovery > limit {
				t.Errorf("recovery took %v, more than %v", recovery, limit)
			}
			t.Logf("%s: recovered in %v after the crash; result %s/%s, attempts %d", c.provider, recovery.Round(time.Millisecond), r.Outcome, r.Code, r.Attempts)
		})
	}
}

// docs/contract.md section 2: a command published again gets its stored result with
// "replayed": true, even when the worker that completed it died between
// publishing the result and marking it published (so the republish finds
// the record unmarked and publishes the original again, which the results
// stream drops as a duplicate).
func TestRepublishAfterUnmarkedPublishIsReplayed(t *testing.T) {
	t.Parallel()
	b := setup(t, 1, nil)
	b.command(t, "req-u", "D1", `{}`)
	if r := b.awaitResults(t, 1, 20*time.Second)[0]; r.Outcome != worker.Succeeded || r.Replayed {
		t.Fatalf("first result %+v", r)
	}
	// The crash window: the result is in JetStream, the mark is not in Redis.
	if err := b.env.Redis.HSet(testenv.Context(t), b.env.Names.RedisKey("idem", "req-u"), "published", 0).Err(); err != nil {
		t.Fatal(err)
	}
	b.command(t, "req-u", "D1", `{}`)
	r := b.awaitResults(t, 1, 20*time.Second)[0]
	if r.Outcome != worker.Succeeded || !r.Replayed || r.DisputeRequestID != "req-u" {
		t.Fatalf("republished result %+v, want a replayed success", r)
	}
	if c := b.fake.callsOf("req-u"); c != 1 {
		t.Fatalf("provider calls = %d, want 1", c)
	}
	b.assertQuiet(t, 300*time.Millisecond)
}
