package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/testenv"
)

// runArgs are the flags every "run" of these tests needs: the test's own
// servers and prefix, free ports, and a list API that answers nothing (so
// the poller touches no one's sandbox on this machine).
func runArgs(env *testenv.Env, extra ...string) []string {
	return append([]string{"run", "--nats-url", env.NATSURL, "--redis-url", env.RedisURL, "--prefix", env.Prefix,
		"--metrics-addr", "127.0.0.1:0", "--webhook-addr", "127.0.0.1:0", "--disputeapi-url", "http://127.0.0.1:1",
		"--log-format", "json"}, extra...)
}

// deploymentObjects lists the streams (buckets included) and Redis keys of
// env's prefix.
func deploymentObjects(t *testing.T, env *testenv.Env) []string {
	t.Helper()
	ctx := testenv.Context(t)
	var found []string
	names := env.JS.StreamNames(ctx)
	for n := range names.Name() {
		if strings.Contains(n, strings.ToUpper(env.Prefix)) {
			found = append(found, "stream "+n)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatalf("list streams: %v", err)
	}
	keys, err := env.Redis.Keys(ctx, env.Names.RedisPattern()).Result()
	if err != nil {
		t.Fatalf("redis keys: %v", err)
	}
	for _, k := range keys {
		found = append(found, "redis key "+k)
	}
	return found
}

// A configuration error of "run", credentials included, is found before any
// server is touched: exit 2, a message naming the flag, and no stream,
// bucket or Redis key of the prefix afterwards.
func TestRunChecksConfigurationBeforeServers(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "no-such-file")
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"alipay client id without its keys", []string{"--alipay-client-id", "C1"}, nil,
			"alipay needs --alipay-client-id, --alipay-private-key-file and --alipay-public-key-file together"},
		{"unreadable token file", []string{"--disputeapi-token-file", missing}, nil, "--disputeapi-token-file: cannot read"},
		{"unreadable webhook secret", []string{"--disputeapi-webhook-secret-file", missing}, nil, "--disputeapi-webhook-secret-file: cannot read"},
		{"ingenico half configured", []string{"--ingenico-merchant-id", "M1"}, nil, "ingenico needs"},
		{"provider URL not absolute", []string{"--disputeapi-url", "psp.example"}, nil, "base URL"},
		{"webhook role named without credentials", []string{"--roles", "worker,webhook"}, nil, "--roles names webhook, but no notification endpoint has credentials"},
		{"webhook role named in the environment", nil, map[string]string{"DISPUTESYNC_ROLES": "webhook"}, "--roles names webhook"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			args := runArgs(env, tc.args...) // a flag given twice: the last wins
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out, errOut syncBuffer
			code := run(ctx, args, func(k string) string { return tc.env[k] }, &out, &errOut)
			if code != exitUsage || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, errOut.String(), exitUsage, tc.want)
			}
			if got := deploymentObjects(t, env); len(got) > 0 {
				t.Errorf("a run refused for its configuration left %v behind", got)
			}
		})
	}
}

// logWatch is a log sink that reports when a JSON log line with a given
// msg arrives.
type logWatch struct {
	mu    sync.Mutex
	buf   strings.Builder
	lines []map[string]any
	want  string
	seen  chan map[string]any
}

func newLogWatch(msg string) *logWatch {
	return &logWatch{want: msg, seen: make(chan map[string]any, 1)}
}

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		s := w.buf.String()
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		w.buf.Reset()
		w.buf.WriteString(s[i+1:])
		var line map[string]any
		if json.Unmarshal([]byte(s[:i]), &line) != nil {
			continue
		}
		w.lines = append(w.lines, line)
		if line["msg"] == w.want {
			select {
			case w.seen <- line:
			default:
			}
		}
	}
	return len(p), nil
}

// find returns the first log line with this msg.
func (w *logWatch) find(msg string) map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

func roles(line map[string]any) []string {
	var out []string
	list, _ := line["roles"].([]any)
	for _, r := range list {
		s, _ := r.(string)
		out = append(out, s)
	}
	return out
}

// "run" with the default roles serves the notification endpoints whose
// credentials are given, says which it does not serve, and leaves the
// webhook role out (with a warning) when none has credentials.
func TestRunServesOnlyWebhookEndpointsWithCredentials(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		args        []string
		wantRoles   []string
		unserved    []string // logged as not served
		roleLeftOut bool
	}{
		{"no credentials", nil, []string{"poller", "worker"}, []string{"alipay", "alipayplus", "disputeapi"}, true},
		{"disputeapi secret", []string{"--disputeapi-webhook-secret-file", secret}, []string{"poller", "worker", "webhook"}, []string{"alipay", "alipayplus"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := newLogWatch("disputesync running")
			var out syncBuffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, runArgs(env, tc.args...), noEnv, &out, logs) }()
			var running map[string]any
			select {
			case running = <-logs.seen:
			case code := <-done:
				t.Fatalf("run exited %d before it was running: %v", code, logs.lines)
			case <-time.After(time.Minute):
				t.Fatalf("run not running within a minute: %v", logs.lines)
			}
			if got := roles(running); !slices.Equal(got, tc.wantRoles) {
				t.Errorf("running with roles %v, want %v", got, tc.wantRoles)
			}
			line := logs.find("webhook endpoints without credentials are not served")
			var unserved []string
			if line != nil {
				for _, p := range line["providers"].([]any) {
					unserved = append(unserved, p.(string))
				}
			}
			if !slices.Equal(unserved, tc.unserved) {
				t.Errorf("logged as not served: %v, want %v", unserved, tc.unserved)
			}
			if left := logs.find("webhook role not started: no notification endpoint has credentials; give --alipay-client-id with its key files, --alipayplus-client-id with its key files, or --disputeapi-webhook-secret-file") != nil; left != tc.roleLeftOut {
				t.Errorf("warning that the webhook role is left out: %v, want %v", left, tc.roleLeftOut)
			}
			if got := deploymentObjects(t, env); len(got) == 0 {
				t.Errorf("run started but created no stream: %v", logs.lines)
			}
			cancel()
			select {
			case code := <-done:
				if code != exitOK {
					t.Errorf("run exited %d after its context ended: %v", code, logs.lines)
				}
			case <-time.After(time.Minute):
				t.Fatal("run did not stop within a minute of its context ending")
			}
		})
	}
}
