package worker_test

// Acceptance tests of issue 5 against the real NATS and Redis (testenv), the
// provider sandbox over HTTP and the real provider handlers.
//
//	DISPUTESYNC_ACCEPTANCE_N=5000            commands of the exactly-once test (default 400)
//	DISPUTESYNC_ACCEPTANCE_REDIS_OUTAGE=10s  Redis outage of the fail-closed test (default 10s)

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/worker"
)

// Acceptance 1 and 2: N commands under provider faults and worker kills
// give N results with a non-replayed outcome and exactly one effect per
// succeeded command; published again, they give replayed results and no new
// provider call.
func TestAcceptanceExactlyOnceUnderFaults(t *testing.T) {
	t.Parallel()
	n := envInt(t, "DISPUTESYNC_ACCEPTANCE_N", 400)
	start := time.Now()
	env := testenv.New(t)
	env.Setup(t, topology.Options{AckWait: 3 * time.Second, MaxDeliver: 100})
	p := newProviderRig(t)
	faults := sandbox.Faults{ErrorRate: 0.10, TimeoutRate: 0.05, ApplyThenFailRate: 0.05}
	for _, prov := range []string{sandbox.ProviderAlipay, sandbox.ProviderAlipayPlus, sandbox.ProviderIngenico} {
		p.sb.SetFaults(prov, "*", faults)
	}
	m := metrics.New()
	mux := p.mux(t, env.Redis, env.Names, m)
	cmds := workload(p, env.Names, n)
	results := collect(t, env)
	f := startFleet(t, 3, time.Second, func(instance string) (*worker.Worker, error) {
		return worker.New(worker.Config{JS: env.JS, Redis: env.Redis, Names: env.Names, Mux: mux, Metrics: m,
			Instance: instance, Concurrency: 8, MaxAttempts: 20, Lease: 2 * time.Second,
			BackoffBase: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
			// A short grace: a cancelled worker abandons calls in flight,
			// as a crash would, rather than finishing them politely.
			ShutdownGrace: 100 * time.Millisecond})
	})

	publishAll(t, env.JS, cmds, "first")
	budget := time.Minute + time.Duration(n)*40*time.Millisecond
	awaitDrained(t, env, results, n, budget)
	first := results.snapshot()
	tl := check(t, cmds, first, p)
	calls := p.calls.total()
	t.Logf("round 1 after %v, %d worker kills, %d provider requests (%v), idempotency claims: %v busy, %v replayed: %s",
		time.Since(start).Round(time.Millisecond), f.shutdownKills(), calls, p.sb.Requests(),
		testutil.ToFloat64(m.Idempotency.WithLabelValues("busy")), testutil.ToFloat64(m.Idempotency.WithLabelValues("replayed")), tl)
	if !tl.clean() || tl.results != n {
		t.Fatalf("round 1 is not exactly once: %s", tl)
	}
	if tl.succeeded == 0 || tl.failed == 0 || tl.rejected == 0 {
		t.Fatalf("the workload did not exercise every outcome: %s", tl)
	}

	// Round 2: the same commands again, under the same faults and kills.
	round2 := time.Now()
	effects := len(p.sb.Effects())
	publishAll(t, env.JS, cmds, "again")
	awaitDrained(t, env, results, len(first)+n, budget)
	all := results.snapshot()
	// Rejections are not stored (a corrected command may reuse the id), so
	// each rejected command is rejected again; nothing else may add a
	// non-replayed result.
	kept, rejectedAgain := append([]worker.Result(nil), first...), 0
	for _, r := range all[len(first):] {
		if !r.Replayed && r.Outcome == worker.Rejected {
			rejectedAgain++
			continue
		}
		kept = append(kept, r)
	}
	if tl2 := check(t, cmds, kept, p); tl2 != tl {
		t.Errorf("round 2 changed the figures: before %s; after %s", tl, tl2)
	}
	if rejectedAgain != tl.rejected {
		t.Errorf("round 2 rejected %d commands, want the %d rejected in round 1", rejectedAgain, tl.rejected)
	}
	firstOutcome := map[string]worker.Result{}
	for _, r := range first {
		if !r.Replayed {
			firstOutcome[r.DisputeRequestID] = r
		}
	}
	replayed := map[string]int{}
	for _, r := range all[len(first):] {
		if r.Replayed {
			replayed[r.DisputeRequestID]++
			if o := firstOutcome[r.DisputeRequestID]; r.Outcome != o.Outcome || r.Code != o.Code || r.Attempts != o.Attempts {
				t.Errorf("replayed result %+v differs from the original %+v", r, o)
			}
		}
	}
	wantReplayed := 0
	for _, c := range cmds {
		want := 1
		if c.outcome == worker.Rejected {
			want = 0
		}
		wantReplayed += want
		if replayed[c.id] != want {
			t.Errorf("%s (%s): %d replayed results, want %d", c.id, c.outcome, replayed[c.id], want)
		}
	}
	if got := len(p.sb.Effects()); got != effects {
		t.Errorf("round 2 applied %d new effects at the provider", got-effects)
	}
	// docs/contract.md section 4 names the label "replayed".
	if got := testutil.ToFloat64(m.Idempotency.WithLabelValues("replayed")); got < float64(wantReplayed) {
		t.Errorf(`disputesync_idempotency_total{result="replayed"} = %v, want at least %d`, got, wantReplayed)
	}
	if got := p.calls.total(); got != calls {
		t.Errorf("round 2 made %d provider calls", got-calls)
	}
	t.Logf("round 2 after %v: %d replayed results (want %d), %d rejected again, %d new effects, %d new provider calls; total %v, %d worker kills",
		time.Since(round2).Round(time.Millisecond), len(replayedIDs(replayed)), wantReplayed, rejectedAgain,
		len(p.sb.Effects())-effects, p.calls.total()-calls, time.Since(start).Round(time.Millisecond), f.shutdown())
}

func replayedIDs(m map[string]int) []string {
	var out []string
	for id, n := range m {
		if n > 0 {
			out = append(out, id)
		}
	}
	return out
}

// shutdownKills reads the kill count without stopping the fleet.
func (f *fleet) shutdownKills() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kills
}

// Acceptance 3 with the real handlers: a disputeRequestId reused with other
// params, another dispute or another payment is rejected with
// REPEAT_REQ_INCONSISTENT and never reaches the provider; the original's
// stored result is untouched.
func TestAcceptanceReusedIDWithOtherParamsIsInconsistent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	env.Setup(t, topology.Options{AckWait: 5 * time.Second})
	p := newProviderRig(t)
	m := metrics.New()
	mux := p.mux(t, env.Redis, env.Names, m)
	results := collect(t, env)
	startFleet(t, 1, 0, func(instance string) (*worker.Worker, error) {
		return worker.New(worker.Config{JS: env.JS, Redis: env.Redis, Names: env.Names, Mux: mux, Metrics: m,
			Instance: instance, BackoffBase: 20 * time.Millisecond})
	})
	pay1 := p.sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{}).PaymentRequestID
	pay2 := p.sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{}).PaymentRequestID
	ing1 := p.sb.CreateIngenicoDispute(sandbox.IngenicoDispute{}).ID
	ing2 := p.sb.CreateIngenicoDispute(sandbox.IngenicoDispute{}).ID
	ali1 := p.sb.CreateAlipayDispute(sandbox.AlipayDispute{}).DisputeID
	ali2 := p.sb.CreateAlipayDispute(sandbox.AlipayDispute{}).DisputeID
	escalate := env.Names.ActionSubject("alipayplus", "initiate_escalation")
	submit := env.Names.ActionSubject("ingenico", "submit_dispute")
	accept := env.Names.ActionSubject("alipay", "accept_dispute")
	cases := []struct {
		name, id, subject, original, variant, wantCode string
		untouched                                      func() bool // the variant's target is unchanged at the provider
	}{
		{"alipayplus other amount", "reuse-1", escalate,
			escalationBody("reuse-1", pay1, "AMOUNT_DIFFER", "500"), escalationBody("reuse-1", pay1, "AMOUNT_DIFFER", "600"), "SUCCESS",
			func() bool { return len(p.sb.Escalations(pay1)) == 1 }},
		{"alipayplus other payment", "reuse-2", escalate,
			escalationBody("reuse-2", pay2, "AMOUNT_DIFFER", "500"), escalationBody("reuse-2", pay1, "AMOUNT_DIFFER", "500"), "SUCCESS",
			func() bool { return len(p.sb.Escalations(pay1)) == 1 }},
		{"ingenico other dispute", "reuse-3", submit,
			disputeBody("reuse-3", ing1, `{}`), disputeBody("reuse-3", ing2, `{}`), sandbox.IngenicoCreated,
			func() bool { d, _ := p.sb.IngenicoDisputeByID(ing2); return d.Status == sandbox.IngenicoDraft }},
		{"alipay other dispute", "reuse-4", accept,
			disputeBody("reuse-4", ali1, `{}`), disputeBody("reuse-4", ali2, `{}`), "SUCCESS",
			func() bool { d, _ := p.sb.AlipayDisputeByID(ali2); return d.Status == sandbox.AlipayStatusWaitDefense }},
		{"same id on another provider", "reuse-4", submit,
			disputeBody("reuse-4", ali1, `{}`), disputeBody("reuse-4", ing2, `{}`), "SUCCESS",
			func() bool { d, _ := p.sb.IngenicoDisputeByID(ing2); return d.Status == sandbox.IngenicoDraft }},
	}
	seen := 0
	next := func(want int) []worker.Result {
		t.Helper()
		awaitDrained(t, env, results, seen+want, 30*time.Second)
		all := results.snapshot()
		out := all[seen:]
		seen = len(all)
		return out
	}
	publish := func(subject, body, msgID string) {
		t.Helper()
		msg := nats.NewMsg(subject)
		msg.Data = []byte(body)
		msg.Header.Set(worker.HeaderMsgID, msgID)
		if _, err := env.JS.PublishMsg(testenv.Context(t), msg); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cases {
		if c.name != "same id on another provider" {
			publish(c.subject, c.original, fmt.Sprintf("orig-%d", i))
			if r := next(1)[0]; r.Outcome != worker.Succeeded || r.Code != c.wantCode || r.Replayed {
				t.Fatalf("%s: original result %+v", c.name, r)
			}
		}
		calls := p.calls.total()
		publish(c.subject, c.variant, fmt.Sprintf("variant-%d", i))
		r := next(1)[0]
		if r.Outcome != worker.Rejected || r.Code != worker.CodeRepeatReqInconsistent || r.DisputeRequestID != c.id || r.Replayed {
			t.Errorf("%s: variant result %+v, want rejected %s", c.name, r, worker.CodeRepeatReqInconsistent)
		}
		if got := p.calls.total(); got != calls {
			t.Errorf("%s: the variant made %d provider calls", c.name, got-calls)
		}
		if !c.untouched() {
			t.Errorf("%s: the variant's target changed at the provider", c.name)
		}
	}
	// The originals' stored results are untouched: a republish replays them.
	for i, c := range cases[:4] {
		publish(c.subject, c.original, fmt.Sprintf("again-%d", i))
		r := next(1)[0]
		if r.Outcome != worker.Succeeded || r.Code != c.wantCode || !r.Replayed {
			t.Errorf("%s: republished original gave %+v, want a replayed success", c.name, r)
		}
	}
	if es := p.sb.Effects(); len(es) != 4 {
		t.Errorf("sandbox effects = %d, want 4 (one per original): %+v", len(es), es)
	}
}

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
