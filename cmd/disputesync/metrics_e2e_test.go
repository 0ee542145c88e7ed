package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/promexpr"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/disputesync/disputesync/docs"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/worker"
)

var (
	metricsLine    = regexp.MustCompile(`metrics\s+http://(\S+)/metrics`)
	sandboxURLLine = regexp.MustCompile(`sandbox\s+(http://\S+)`)
	webhookURLLine = regexp.MustCompile(`webhooks\s+(http://\S+)/webhooks/`)
)

// heldCommands are published while the sandbox holds alipay acceptDispute
// answers, so the worker consumer's backlog stands still; more than the
// consumer's MaxAckPending (64 by default), so both pending and ack
// pending are non-zero.
const heldCommands = 80

// TestMetricsEndToEnd is issue 7 acceptances 1 and 2 against a running
// "dev": after a small poll and a few actions, /metrics has every metric of
// docs/contract.md section 4 with sane values, the backlog gauges equal JetStream's
// consumer info, and every PromQL expression of deploy/ names only metrics
// of that scrape.
func TestMetricsEndToEnd(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", t.TempDir(), "--nats-addr", "127.0.0.1:0",
			"--sandbox-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--webhook-addr", "127.0.0.1:0",
			"--redis-url", env.RedisURL, "--prefix", env.Prefix, "--poll-interval", "1s", "--tick", "0", "--disputes", "30"},
			noEnv, &out, &errOut)
	}()
	natsURL, dispute := awaitBanner(t, &out, &errOut, done)
	banner := out.String()
	metricsURL := "http://" + metricsLine.FindStringSubmatch(banner)[1] + "/metrics"
	sandboxURL := sandboxURLLine.FindStringSubmatch(banner)[1]
	webhookURL := webhookURLLine.FindStringSubmatch(banner)[1]
	prefix := env.Prefix
	names := env.Names

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	results, _ := nc.SubscribeSync(prefix + ".results.>")
	dlq, _ := nc.SubscribeSync(prefix + ".dlq.>")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	publish := func(provider, action, id string, body string) {
		t.Helper()
		msg := &nats.Msg{Subject: prefix + ".actions." + provider + "." + action, Data: []byte(body), Header: nats.Header{}}
		msg.Header.Set("Nats-Msg-Id", worker.CommandMsgID(id, []byte(body)))
		if _, err := js.PublishMsg(testenv.Context(t), msg); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
	// checkMsg validates a message dev produced against docs/schemas (issue 8).
	checkMsg := func(m *nats.Msg) {
		t.Helper()
		if err := docs.ValidateMessage(prefix, m.Subject, m.Header, m.Data); err != nil {
			t.Errorf("%s does not match docs/schemas: %v\n%s", m.Subject, err, m.Data)
		}
	}

	// A succeeded action on the banner's sandbox dispute.
	publish("alipay", "accept_dispute", "m-ok-1", fmt.Sprintf(`{"disputeRequestId":"m-ok-1","disputeId":%q}`, dispute))
	m, err := results.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no result: %v\n%s", err, errOut.String())
	}
	checkMsg(m)
	var res worker.Result
	if err := json.Unmarshal(m.Data, &res); err != nil || res.Outcome != worker.Succeeded {
		t.Fatalf("result %s", m.Data)
	}
	// An invalid command (no disputeId) goes to the dead-letter stream.
	publish("alipay", "accept_dispute", "m-bad-1", `{"disputeRequestId":"m-bad-1"}`)
	if m, err = dlq.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("no dead letter: %v\n%s", err, errOut.String())
	}
	checkMsg(m)
	// An unsigned notification: 401 and an unauthenticated count.
	resp, err := http.Post(webhookURL+"/webhooks/disputeapi/notify", "application/json",
		strings.NewReader(`{"notify_id":"m-1","event_code":"CHARGEBACK","data":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned notification: HTTP %d, want 401", resp.StatusCode)
	}

	// A small poll: wait (with a deadline) until the poller completed a cycle.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(30 * time.Second)
	for {
		fams = scrape(t, metricsURL)
		if sum(fams, "disputesync_poll_last_success_timestamp_seconds", nil) > 0 &&
			sum(fams, "disputesync_dispute_events_total", nil) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete poll cycle within 30 s\n%s", errOut.String())
		}
		time.Sleep(200 * time.Millisecond) // polling an external condition
	}

	// A standing backlog: the sandbox holds every acceptDispute answer for
	// 18 s (below the 20 s provider timeout, so nothing is retried), then
	// commands on distinct disputes (so no dispute lock makes the worker
	// put one back) fill the worker's slots and the rest waits.
	faults := `{"provider":"alipay","endpoint":"acceptDispute","faults":{"latency":"18s"}}`
	req, _ := http.NewRequest(http.MethodPut, sandboxURL+"/_sandbox/faults", strings.NewReader(faults))
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatalf("set sandbox faults: %v", err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("set sandbox faults: HTTP %d", resp.StatusCode)
	}
	for i := range heldCommands {
		id := fmt.Sprintf("m-held-%d", i)
		body := fmt.Sprintf(`{"disputeRequestId":%q,"disputeId":"209900000000000000000000%04d"}`, id, i)
		if err := docs.ValidateMessage(prefix, prefix+".actions.alipay.accept_dispute", map[string][]string{"Nats-Msg-Id": {worker.CommandMsgID(id, []byte(body))}}, []byte(body)); err != nil {
			t.Fatalf("our own command does not match docs/schemas: %v", err)
		}
		publish("alipay", "accept_dispute", id, body)
	}
	cons, err := js.Consumer(testenv.Context(t), names.ActionsStream(), names.WorkerConsumer())
	if err != nil {
		t.Fatal(err)
	}
	info := func() [3]int {
		t.Helper()
		ci, err := cons.Info(testenv.Context(t))
		if err != nil {
			t.Fatalf("consumer info: %v", err)
		}
		return [3]int{int(ci.NumPending), ci.NumAckPending, ci.NumRedelivered}
	}
	// Stable: all held commands in the backlog and consumer info unchanged
	// for longer than the collector's 2 s cache, with no scrape meanwhile,
	// so the next scrape reads consumer info afresh in the stable state.
	var stable [3]int
	since := time.Now()
	deadline = time.Now().Add(15 * time.Second)
	for {
		now := info()
		if now != stable || now[0]+now[1] != heldCommands {
			stable, since = now, time.Now()
		} else if time.Since(since) > 2500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog not stable within 15 s: last %v\n%s", now, errOut.String())
		}
		time.Sleep(100 * time.Millisecond) // polling an external condition
	}
	fams = scrape(t, metricsURL)
	after := info()
	consumer := map[string]string{"stream": names.ActionsStream(), "consumer": names.WorkerConsumer()}
	got := [3]int{
		int(value(t, fams, "disputesync_consumer_pending_messages", consumer)),
		int(value(t, fams, "disputesync_consumer_ack_pending_messages", consumer)),
		int(value(t, fams, "disputesync_consumer_redelivered_messages", consumer)),
	}
	if got != after || after != stable {
		t.Errorf("backlog gauges (pending, ack pending, redelivered) %v; consumer info %v after the scrape, %v before", got, after, stable)
	}
	if got[0]+got[1] != heldCommands || got[0] == 0 || got[1] == 0 {
		t.Errorf("backlog gauges %v: want the %d held commands split between pending and ack pending", got, heldCommands)
	}

	// Every other metric of docs/contract.md section 4, with sane values.
	now := float64(time.Now().Unix())
	openDisputes := sandboxOpenDisputes(t, sandboxURL)
	checks := []struct {
		name   string
		labels map[string]string
		ok     func(v float64) bool
		want   string
	}{
		{"disputesync_dispute_events_total", map[string]string{"source": "disputeapi", "type": "dispute.opened"}, gt(0), "> 0"},
		{"disputesync_poll_pages_total", map[string]string{"source": "disputeapi", "result": "ok"}, gt(0), "> 0"},
		{"disputesync_poll_last_success_timestamp_seconds", map[string]string{"source": "disputeapi"}, func(v float64) bool { return v > now-60 && v <= now+1 }, "within the last minute"},
		{"disputesync_actions_total", map[string]string{"provider": "alipay", "action": "accept_dispute", "outcome": "succeeded"}, ge(1), ">= 1"},
		{"disputesync_dlq_messages_total", map[string]string{"provider": "alipay", "action": "accept_dispute", "reason": worker.ReasonInvalid}, ge(1), ">= 1"},
		{"disputesync_idempotency_total", map[string]string{"result": "claimed"}, ge(1), ">= 1"},
		{"disputesync_disputes_open", map[string]string{"source": "disputeapi"}, func(v float64) bool { return v == float64(openDisputes) && v > 0 },
			fmt.Sprintf("the sandbox's %d pending disputes", openDisputes)},
		{"disputesync_dispute_next_reply_deadline_timestamp_seconds", map[string]string{"source": "disputeapi"}, gt(0), "> 0"},
		{"disputesync_provider_request_duration_seconds", map[string]string{"provider": "alipay"}, ge(1), "count >= 1"},
		{"disputesync_webhook_notifications_total", map[string]string{"provider": "disputeapi", "result": "unauthenticated"}, ge(1), ">= 1"},
	}
	for _, c := range checks {
		if _, ok := fams[c.name]; !ok {
			t.Errorf("%s is not exported", c.name)
			continue
		}
		if v := sum(fams, c.name, c.labels); !c.ok(v) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, v, c.want)
		}
	}
	for _, b := range []string{"overdue", "24h", "72h", "7d", "later"} {
		if !has(fams, "disputesync_disputes_open", map[string]string{"source": "disputeapi", "deadline": b}) {
			t.Errorf("disputesync_disputes_open{deadline=%q} is missing", b)
		}
	}
	if f := fams["disputesync_provider_request_duration_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("disputesync_provider_request_duration_seconds is not a histogram")
	}

	// Acceptance 2: every PromQL expression of deploy/ names only metrics
	// of this live scrape (a histogram exports _bucket, _sum and _count).
	exported := map[string]bool{"up": true} // Prometheus' own
	for name, f := range fams {
		exported[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}
	exprs := map[string][]string{
		"deploy/grafana/dashboards/disputesync.json":    deployDashboardExprs(t, "../../deploy/grafana/dashboards/disputesync.json"),
		"deploy/prometheus/rules/disputesync.rules.yml": deployRuleExprs(t, "../../deploy/prometheus/rules/disputesync.rules.yml"),
	}
	checked := 0
	for file, list := range exprs {
		if len(list) < 10 { // the extraction itself must not pass vacuously
			t.Errorf("%s: only %d expressions extracted", file, len(list))
		}
		for _, e := range list {
			ns := promexpr.MetricNames(e)
			if len(ns) == 0 {
				t.Errorf("%s: no metric name in %q", file, e)
			}
			for _, n := range ns {
				if !exported[n] {
					t.Errorf("%s: %s is not in the live scrape (expression %q)", file, n, e)
				}
			}
			checked++
		}
	}
	t.Logf("backlog %v (pending, ack pending, redelivered) = consumer info; %d PromQL expressions checked against %d exported families; %d open disputes; schemas: %v",
		got, checked, len(fams), openDisputes, docs.Validated())

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dev exited %d\n%s", code, errOut.String())
		}
	case <-time.After(60 * time.Second): // a hang guard, not a speed bound
		t.Fatal("dev did not stop within 60 s")
	}
}

func gt(x float64) func(float64) bool { return func(v float64) bool { return v > x } }
func ge(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: HTTP %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return fams
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

// sum adds the values of a family's series that carry labels (a
// histogram's sample count).
func sum(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	total := 0.0
	for _, m := range fams[name].GetMetric() {
		if !matches(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

func has(fams map[string]*dto.MetricFamily, name string, labels map[string]string) bool {
	for _, m := range fams[name].GetMetric() {
		if matches(m, labels) {
			return true
		}
	}
	return false
}

// value is the one series of name with labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	if !has(fams, name, labels) {
		t.Fatalf("%s%v is not exported", name, labels)
	}
	return sum(fams, name, labels)
}

// sandboxOpenDisputes counts the sandbox's pending disputes (the control
// API lists them as JSON lines, with the status the list API serves); dev
// runs with --tick 0, so the population stands still.
func sandboxOpenDisputes(t *testing.T, sandboxURL string) int {
	t.Helper()
	resp, err := http.Get(sandboxURL + "/_sandbox/disputes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			Status string `json:"status"` // as the list API serves it now
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("sandbox dispute %s: %v", sc.Bytes(), err)
		}
		if r.Status == "pending" {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func deployDashboardExprs(t *testing.T, file string) []string {
	t.Helper()
	exprs, err := promexpr.DashboardExprs(file)
	if err != nil {
		t.Fatal(err)
	}
	return exprs
}

func deployRuleExprs(t *testing.T, file string) []string {
	t.Helper()
	exprs, err := promexpr.RuleExprs(file)
	if err != nil {
		t.Fatal(err)
	}
	return exprs
}
