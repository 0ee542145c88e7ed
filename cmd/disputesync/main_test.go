package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

func runCLI(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	code := run(context.Background(), args, getenv, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Every subcommand's --help names every flag with its environment variable
// and its default.
func TestHelpExplainsEveryFlag(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, noEnv, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, sc := range subcommands() {
		if !strings.Contains(out, sc.name) {
			t.Errorf("disputesync --help does not list %s", sc.name)
		}
		code, help, _ := runCLI(t, noEnv, sc.name, "--help")
		if code != 0 {
			t.Errorf("%s --help exit %d", sc.name, code)
		}
		o := newOptions(sc.name)
		sc.flags(o, &config{})
		for _, opt := range o.opts {
			if !strings.Contains(help, "--"+opt.name) || !strings.Contains(help, envName(opt.name)) {
				t.Errorf("%s --help lacks --%s or %s", sc.name, opt.name, envName(opt.name))
			}
			if opt.usage == "" {
				t.Errorf("%s --%s has no explanation", sc.name, opt.name)
			}
			if opt.def != "" && !opt.secret && !strings.Contains(help, "default "+opt.def) {
				t.Errorf("%s --help does not show the default of --%s (%s)", sc.name, opt.name, opt.def)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"run", "--poll-interval=-1s"}, nil, "--poll-interval: must be a positive duration, got -1s"},
		{[]string{"run", "--poll-interval=soon"}, nil, `"soon" is not a duration`},
		{[]string{"run"}, map[string]string{"DISPUTESYNC_POLL_INTERVAL": "-5m"}, "--poll-interval: must be a positive duration"},
		{[]string{"run", "--roles", "poller,cook"}, nil, `unknown role "cook"`},
		{[]string{"run", "--prefix", "a.b"}, nil, "--prefix"},
		{[]string{"run", "--concurrency", "0"}, nil, "--concurrency: must be at least 1"},
		{[]string{"run", "--metrics-addr", "nowhere"}, nil, "--metrics-addr: must be host:port"},
		{[]string{"run", "--log-level", "loud"}, nil, "--log-level"},
		{[]string{"setup", "--max-deliver", "1"}, nil, "--max-deliver"},
		{[]string{"frobnicate"}, nil, "unknown subcommand"},
		{[]string{"action"}, nil, "give PROVIDER and ACTION"},
		{[]string{"action", "alipay", "refund"}, nil, "is not an action"},
	}
	for _, c := range cases {
		getenv := func(k string) string { return c.env[k] }
		code, _, errOut := runCLI(t, getenv, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	t.Parallel()
	c := &config{}
	o := newOptions("run")
	runCmd().flags(o, c)
	env := map[string]string{"DISPUTESYNC_PREFIX": "fromenv", "DISPUTESYNC_CONCURRENCY": "3", "DISPUTESYNC_POLL_INTERVAL": "2m"}
	if err := o.parse([]string{"--prefix", "fromflag"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "fromflag" || c.Concurrency != 3 || c.PollInterval != 2*time.Minute {
		t.Fatalf("prefix %q concurrency %d interval %s", c.Prefix, c.Concurrency, c.PollInterval)
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	c := &config{}
	o := newOptions("run")
	runCmd().flags(o, c)
	env := map[string]string{
		"DISPUTESYNC_REDIS_URL":     "redis://app:hunter2pass@127.0.0.1:1/0",
		"DISPUTESYNC_NATS_PASSWORD": "natsSecret99",
	}
	if err := o.parse(nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	o.dump(&dump)
	if strings.Contains(dump.String(), "hunter2pass") || strings.Contains(dump.String(), "natsSecret99") {
		t.Fatalf("config dump shows a secret:\n%s", dump.String())
	}
	if fmt.Sprintf("%v %+v %#v", c.NATSPassword, c.NATSPassword, c.NATSPassword) != "[redacted] [redacted] [redacted]" {
		t.Fatal("a secret prints")
	}
	// An unreachable Redis with a password: the error names it without it.
	code, _, errOut := runCLI(t, func(k string) string { return env[k] }, "run", "--nats-url", "nats://127.0.0.1:1")
	if code == 0 || strings.Contains(errOut, "hunter2pass") || strings.Contains(errOut, "natsSecret99") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// The foundation's end-to-end check: dev comes up, a sandbox dispute
// arrives as a CloudEvent, and a command published with plain NATS (as
// "nats pub" does) gets a succeeded result; Ctrl-C stops it cleanly.
func TestDevEndToEnd(t *testing.T) {
	t.Parallel()
	env := testenv.New(t) // provides a Redis (and cleans its prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", t.TempDir(), "--nats-addr", "127.0.0.1:0",
			"--sandbox-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--webhook-addr", "127.0.0.1:0",
			"--redis-url", env.RedisURL, "--prefix", env.Prefix, "--poll-interval", "1s", "--disputes", "30"},
			noEnv, &out, &errOut)
	}()
	natsURL, dispute := awaitBanner(t, &out, &errOut, done)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	events, _ := nc.SubscribeSync(env.Prefix + ".events.>")
	results, _ := nc.SubscribeSync(env.Prefix + ".results.>")
	// A dispute from the sandbox arrives as a CloudEvent (the living
	// population creates new ones every tick; the first scan may be done).
	ev, err := events.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no dispute event: %v\nstderr:\n%s", err, errOut.String())
	}
	var ce map[string]any
	if err := json.Unmarshal(ev.Data, &ce); err != nil || ce["specversion"] != "1.0" || ce["source"] != "disputeapi" || ev.Header.Get("Nats-Msg-Id") == "" {
		t.Fatalf("event is not a CloudEvent: %s %v", ev.Data, ev.Header)
	}
	cmd := fmt.Sprintf(`{"disputeRequestId":"e2e-0001","disputeId":%q}`, dispute)
	if err := nc.Publish(env.Prefix+".actions.alipay.accept_dispute", []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	m, err := results.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no result: %v\nstderr:\n%s", err, errOut.String())
	}
	var res worker.Result
	if err := json.Unmarshal(m.Data, &res); err != nil || res.Outcome != worker.Succeeded || res.DisputeRequestID != "e2e-0001" {
		t.Fatalf("result %s", m.Data)
	}
	start := time.Now()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("dev exited %d after Ctrl-C\n%s", code, errOut.String())
		}
	case <-time.After(60 * time.Second): // a hang guard: stopping is the outcome, not its speed
		t.Fatal("dev did not stop within 60 s")
	}
	t.Logf("dev stopped in %v", time.Since(start))
}

var (
	natsLine    = regexp.MustCompile(`NATS \(JetStream\)\s+(nats://\S+)`)
	disputeLine = regexp.MustCompile(`accept_dispute --nats-url \S+ --dispute-id (\S+)`)
)

func awaitBanner(t *testing.T, out, errOut *syncBuffer, done chan int) (natsURL, dispute string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second) // a hang guard: start-up under -race on a loaded machine is slow
	for {
		s := out.String()
		if n, d := natsLine.FindStringSubmatch(s), disputeLine.FindStringSubmatch(s); n != nil && d != nil {
			return n[1], d[1]
		}
		select {
		case code := <-done:
			t.Fatalf("dev exited %d before it was up:\n%s\n%s", code, s, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev not up within 90 s:\n%s\n%s", s, errOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling another goroutine's output
	}
}

// --dry-run shows the signed provider request with credentials masked, and
// publishes nothing (no NATS is reachable on the port it is given).
func TestActionDryRunShowsTheProviderRequest(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, noEnv, "action", "alipay", "accept_dispute", "--dispute-id", "2024010121013101637705928564",
		"--request-id", "dry-1", "--nats-url", "nats://127.0.0.1:1", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"would publish to disputes.actions.alipay.accept_dispute", "POST /ams/api/v1/payments/acceptDispute",
		"Signature: [masked]", "Client-Id: SANDBOX_ALIPAY_CLIENT", `{"disputeId":"2024010121013101637705928564"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "signature=") {
		t.Errorf("dry run shows a signature:\n%s", out)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                          "nats://127.0.0.1:4222",
		"nats://u:p4ss@h1:4222,nats://u:p4ss@h2:4222":    "nats://u:xxxxx@h1:4222,nats://u:xxxxx@h2:4222",
		"nats://u:p4ss@h1:4222, nats://u:p4ss@h2:4222":   "nats://u:xxxxx@h1:4222,nats://u:xxxxx@h2:4222",
		"redis://:p4ss@127.0.0.1:6379/0":                 "redis://:xxxxx@127.0.0.1:6379/0",
		"u:p4ss@h:6379":                                  "[redacted]",
		"rediss://default:p4ss@a:6380,rediss://b:6380/0": "rediss://default:xxxxx@a:6380,rediss://b:6380/0",
	} {
		if got := redactURL(in); got != want || strings.Contains(got, "p4ss") {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrintConfigRedactsSecrets(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DISPUTESYNC_REDIS_URL": "redis://app:hunter2pass@127.0.0.1:1/0"}
	code, out, _ := runCLI(t, func(k string) string { return env[k] }, "run", "--print-config", "--nats-token", "tok3nSecret")
	if code != 0 || !strings.Contains(out, "redis-url=redis://app:xxxxx@127.0.0.1:1/0") || !strings.Contains(out, "nats-token=[redacted]") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if strings.Contains(out, "hunter2pass") || strings.Contains(out, "tok3nSecret") {
		t.Fatalf("--print-config shows a secret:\n%s", out)
	}
}
