package worker_test

// Acceptance tests of issue 5 against the real NATS and Redis (testenv), the
// provider sandbox over HTTP and the real provider handlers.
//
//	DISPUTESYNC_ACCEPTANCE_N=5000            commands of the exactly-once test (default 400)
//	DISPUTESYNC_ACCEPTANCE_REDIS_OUTAGE=10s  Redis outage of the fail-closed test (default 10s)

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
