package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/worker"
)

var runningMetrics = regexp.MustCompile(`metrics=http://(\S+)/metrics`)

// process is "disputesync run" started in this test binary.
type process struct {
	out, errOut syncBuffer
	done        chan int
	cancel      context.CancelFunc
	metricsURL  string
}

// startRun starts "run" with args and waits until it serves /readyz; it is
// stopped when t ends.
func startRun(t *testing.T, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{done: make(chan int, 1), cancel: cancel}
	go func() {
		p.done <- run(ctx, append([]string{"run", "--metrics-addr", "127.0.0.1:0", "--log-format", "text"}, args...), noEnv, &p.out, &p.errOut)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Error("run did not stop within 30s of its context ending")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := runningMetrics.FindStringSubmatch(p.errOut.String()); m != nil {
			p.metricsURL = "http://" + m[1]
			return p
		}
		select {
		case code := <-p.done:
			t.Fatalf("run exited %d before it was running:\n%s", code, p.errOut.String())
		case <-time.After(50 * time.Millisecond): // polling a log for the banner
		}
		if time.Now().After(deadline) {
			t.Fatalf("run not running after 60s:\n%s", p.errOut.String())
		}
	}
}

type readyz struct {
	status int
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

func (p *process) readyz(t *testing.T) readyz {
	t.Helper()
	resp, err := http.Get(p.metricsURL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	r := readyz{status: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	return r
}

// awaitNotReady polls /readyz until component is not ready or a generous
// deadline passes; it returns the answer.
func (p *process) awaitNotReady(t *testing.T, component string) readyz {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := p.readyz(t)
		if r.status == http.StatusServiceUnavailable && r.Checks[component] != "ok" && r.Checks[component] != "" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %v after 90s; log:\n%s", r.status, r.Checks, p.errOut.String())
		}
		select {
		case code := <-p.done:
			t.Fatalf("run exited %d:\n%s", code, p.errOut.String())
		case <-time.After(100 * time.Millisecond): // a probe polls, as Kubernetes does
		}
	}
}

// readyMetric is disputesync_ready{component} as /metrics shows it.
func (p *process) readyMetric(t *testing.T, component string) float64 {
	t.Helper()
	fams := scrape(t, p.metricsURL+"/metrics")
	return sum(fams, "disputesync_ready", map[string]string{"component": component})
}

// TestReadyzPollerRejectedToken is issue 12 acceptance 3: a poller whose
// token the list API rejects is not ready, /readyz says so naming the
// poller and why, before its second poll (the source stopped for good: no
// list call follows the rejected one), and disputesync_ready follows.
func TestReadyzPollerRejectedToken(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	var lists atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/list") {
			lists.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"401","message":"invalid token"}`)
	}))
	defer api.Close()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("wrong-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRun(t, "--roles", "poller", "--nats-url", env.NATSURL, "--redis-url", env.RedisURL, "--prefix", env.Prefix,
		"--disputeapi-url", api.URL, "--disputeapi-token-file", token, "--poll-interval", "2s")

	r := p.awaitNotReady(t, "poller")
	if n := lists.Load(); n != 1 {
		t.Errorf("list requests when /readyz answered 503 = %d, want 1 (not ready before the second poll)", n)
	}
	why := r.Checks["poller"]
	for _, want := range []string{"poller", "disputeapi", "rejected", "HTTP 401"} {
		if !strings.Contains(why, want) {
			t.Errorf("/readyz checks.poller = %q: does not say %q", why, want)
		}
	}
	if strings.Contains(why, "wrong-token") || strings.Contains(p.errOut.String(), "wrong-token") {
		t.Error("the token appears in /readyz or the log")
	}
	if v := p.readyMetric(t, "poller"); v != 0 {
		t.Errorf("disputesync_ready{component=\"poller\"} = %v, want 0", v)
	}
	if r.Checks["nats"] != "ok" || r.Checks["redis"] != "ok" {
		t.Errorf("servers should still be ok: %v", r.Checks)
	}
}

// natsGrantsBeforeIssue14 are the grants of deploy/nats/nats-server.conf
// before issue 14 (copied: the deploy file has since changed), with plain
// passwords for the test.
const natsGrantsBeforeIssue14 = `
authorization {
  users: [
    { user: poller, password: "pw",
      permissions: {
        publish: { allow: ["disputes.events.>", "$JS.API.>"], deny: ["disputes.actions.>", "$JS.ACK.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.DELETE.>"] }
        subscribe: { allow: ["_INBOX.>"] }
      } }
    { user: worker, password: "pw",
      permissions: {
        publish: {
          allow: ["disputes.results.>", "disputes.dlq.>",
                  "$JS.API.CONSUMER.MSG.NEXT.DISPUTES_ACTIONS.DISPUTES_WORKER",
                  "$JS.API.CONSUMER.INFO.DISPUTES_ACTIONS.DISPUTES_WORKER",
                  "$JS.ACK.DISPUTES_ACTIONS.DISPUTES_WORKER.>",
                  "$JS.API.STREAM.MSG.GET.OBJ_DISPUTES_EVIDENCE", "$JS.API.CONSUMER.CREATE.OBJ_DISPUTES_EVIDENCE.>",
                  "$JS.API.STREAM.INFO.>"]
          deny: ["disputes.actions.>"]
        }
        subscribe: { allow: ["_INBOX.>"] }
      } }
    { user: admin, password: "pw",
      permissions: { publish: { allow: ["$JS.API.>"] }, subscribe: { allow: ["_INBOX.>"] } } }
  ]
}
`

// violationLog counts the permission violations the server logs, by
// subject: the server's side of what the client was refused.
type violationLog struct {
	mu sync.Mutex
	n  map[string]int
}

var serverViolation = regexp.MustCompile(`Publish Violation - .*Subject "([^"]+)"`)

func (v *violationLog) record(format string, args ...any) {
	if m := serverViolation.FindStringSubmatch(fmt.Sprintf(format, args...)); m != nil {
		v.mu.Lock()
		v.n[m[1]]++
		v.mu.Unlock()
	}
}
func (v *violationLog) count(subject string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n[subject]
}
func (v *violationLog) Noticef(f string, a ...any) { v.record(f, a...) }
func (v *violationLog) Warnf(f string, a ...any)   { v.record(f, a...) }
func (v *violationLog) Fatalf(f string, a ...any)  { v.record(f, a...) }
func (v *violationLog) Errorf(f string, a ...any)  { v.record(f, a...) }
func (v *violationLog) Debugf(f string, a ...any)  { v.record(f, a...) }
func (v *violationLog) Tracef(f string, a ...any)  { v.record(f, a...) }

// startAuthNATS starts a nats-server (JetStream unless noJS) with the
// authorization block given, on a free port; it stops when t ends.
func startAuthNATS(t *testing.T, authorization string, noJS bool) (string, *violationLog) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(authorization), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("old grants: %v", err)
	}
	opts.Host, opts.Port, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true
	opts.JetStream, opts.StoreDir = !noJS, filepath.Join(dir, "js")
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	v := &violationLog{n: map[string]int{}}
	srv.SetLogger(v, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready after 10s")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL(), v
}

// TestOldNATSGrantsPollerLease is issue 14 acceptance 3, first failure: the
// poller as NATS user "poller" under the grants before issue 14 may not
// write its lease. It used to log "lease check failed" every 5 s and stay
// ready; now /readyz names the refused subject, the user and the role, the
// refusal is logged once however often the lease is retried, and
// disputesync_ready{component="poller"} is 0.
func TestOldNATSGrantsPollerLease(t *testing.T) {
	t.Parallel()
	env := testenv.New(t) // Redis only: NATS is this test's own
	url, violations := startAuthNATS(t, natsGrantsBeforeIssue14, false)
	api := httptest.NewServer(http.NotFoundHandler()) // never reached: no lease, no poll
	defer api.Close()
	p := startRun(t, "--roles", "poller", "--nats-url", url, "--nats-user", "poller", "--nats-password", "pw",
		"--redis-url", env.RedisURL, "--prefix", "disputes", "--disputeapi-url", api.URL)

	const lease = "$KV.DISPUTES_POLLER.disputeapi.lease"
	r := p.awaitNotReady(t, "poller")
	for _, want := range []string{`NATS user poller may not publish to "` + lease + `"`, "needed by poller"} {
		if !strings.Contains(r.Checks["poller"], want) {
			t.Errorf("/readyz checks.poller = %q: does not say %q", r.Checks["poller"], want)
		}
	}
	if v := p.readyMetric(t, "poller"); v != 0 {
		t.Errorf("disputesync_ready{component=\"poller\"} = %v, want 0", v)
	}
	// The lease is retried every few seconds: once the server has refused
	// it three times, the process must still have logged it once.
	deadline := time.Now().Add(90 * time.Second)
	for violations.count(lease) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("server refused the lease %d times in 90s, want 3", violations.count(lease))
		}
		time.Sleep(100 * time.Millisecond) // polling the server's log count
	}
	log := p.errOut.String()
	if n := strings.Count(log, `may not publish to \"`+lease); n != 1 {
		t.Errorf("the refusal of %s was logged %d times, want once:\n%s", lease, n, log)
	}
	if n := strings.Count(log, "lease check failed"); n != 1 {
		t.Errorf(`"lease check failed" logged %d times, want once (each distinct failure once):\n%s`, n, log)
	}
}

// TestOldNATSGrantsWorkerStart is issue 14 acceptance 3, second failure:
// the worker as NATS user "worker" under the grants before issue 14 may not
// ask $JS.API.INFO. It used to exit blaming the server ("has no JetStream
// (start it with -js)"); now it exits non-zero naming the user, the subject
// and the role, and a server really without JetStream still gets the -js
// message.
func TestOldNATSGrantsWorkerStart(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	for _, tc := range []struct {
		name, user string
		noJS       bool
		want, not  []string
	}{
		{name: "user without JetStream rights", user: "worker",
			want: []string{"this user has no right to its API", `NATS user worker may not publish to "$JS.API.INFO"`, "needed by worker"},
			not:  []string{"start it with -js"}},
		// admin may ask the JetStream API: only the server lacks it.
		{name: "server without JetStream", user: "admin", noJS: true,
			want: []string{"has no JetStream (start it with -js)"},
			not:  []string{"no right", "may not publish"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := startAuthNATS(t, natsGrantsBeforeIssue14, tc.noJS)
			code, _, stderr := runCLI(t, noEnv, "run", "--roles", "worker", "--nats-url", url, "--nats-user", tc.user,
				"--nats-password", "pw", "--redis-url", env.RedisURL, "--prefix", "disputes", "--metrics-addr", "127.0.0.1:0")
			if code == 0 {
				t.Fatalf("run exited 0; stderr:\n%s", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(stderr, n) {
					t.Errorf("stderr says %q, which is not the cause:\n%s", n, stderr)
				}
			}
		})
	}
}

// TestRedisRefusalWorker is issue 14 acceptance 3, third failure: a worker
// whose Redis user may not run a command of the idempotency scripts (then
// TIME, which no script calls now; here HSET) used to loop on "idempotency
// store unavailable" while ready. At start it now exits 1 naming the
// command, the user and the role; when the grant goes while it runs,
// /readyz answers 503 saying the same, disputesync_ready is 0, and the
// refusal is logged once however often the command is redelivered.
func TestRedisRefusalWorker(t *testing.T) {
	t.Parallel()
	env := testenv.New(t) // NATS only: Redis is this test's own
	pattern := "~" + env.Names.RedisPattern()
	addr := testenv.RedisWithACL(t,
		"user nohset on >pw resetchannels "+pattern+" "+worker.ACLCommands()+" -hset",
		"user listed on >pw resetchannels "+pattern+" "+worker.ACLCommands())
	runArgs := func(user string) []string {
		return []string{"--roles", "worker", "--nats-url", env.NATSURL, "--redis-url", "redis://" + user + ":pw@" + addr + "/0",
			"--prefix", env.Prefix, "--metrics-addr", "127.0.0.1:0"}
	}

	t.Run("at start", func(t *testing.T) {
		code, _, stderr := runCLI(t, noEnv, append([]string{"run"}, runArgs("nohset")...)...)
		if code != 1 {
			t.Errorf("run exited %d, want 1", code)
		}
		for _, want := range []string{"Redis user nohset may not run HSET", "needed by worker"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, stderr)
			}
		}
	})

	t.Run("while running", func(t *testing.T) {
		p := startRun(t, runArgs("listed")...)
		admin := testenv.ACLAdminClient(addr)
		defer admin.Close()
		ctx := testenv.Context(t)
		if err := admin.Do(ctx, "ACL", "SETUSER", "listed", "-hset").Err(); err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(env.Names.ActionSubject("alipay", "accept_dispute"))
		m.Data = []byte(`{"disputeRequestId":"acl-1","disputeId":"D-1","params":{},"requestedBy":"test"}`)
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		r := p.awaitNotReady(t, "worker")
		for _, want := range []string{"Redis user listed may not run HSET", "needed by worker"} {
			if !strings.Contains(r.Checks["worker"], want) {
				t.Errorf("/readyz checks.worker = %q: does not say %q", r.Checks["worker"], want)
			}
		}
		if v := p.readyMetric(t, "worker"); v != 0 {
			t.Errorf("disputesync_ready{component=\"worker\"} = %v, want 0", v)
		}
		if r.Checks["redis"] != "ok" {
			t.Errorf("Redis answers PING: checks.redis = %q, want ok", r.Checks["redis"])
		}
		// Await a redelivery (the claim refused again), then count the logs.
		deadline := time.Now().Add(90 * time.Second)
		for {
			n, err := admin.ACLLog(ctx, 100).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(n) > 0 && n[0].Username == "listed" && n[0].Count >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the claim was not refused twice in 90s: %+v", n)
			}
			time.Sleep(100 * time.Millisecond) // polling the server's ACL LOG
		}
		log := p.errOut.String()
		if n := strings.Count(log, "may not run HSET"); n != 1 {
			t.Errorf("the refusal was logged %d times, want once:\n%s", n, log)
		}
		if strings.Contains(log, "idempotency store unavailable") {
			t.Errorf("a refusal is logged as an outage:\n%s", log)
		}
	})
}
