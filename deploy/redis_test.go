package deploy

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/worker"
)

// TestRedisAsShipped starts redis-server with the shipped redis.conf and
// users.acl (rendered by the shipped render-acl.sh; only ports, paths and
// the password are given, on the command line and in the environment):
// the worker applies a command over TLS as the ACL user, which cannot
// touch a key outside its prefix nor run an administrative command; a
// worker given the wrong CA is refused with a message that says so.
func TestRedisAsShipped(t *testing.T) {
	bins := binaries(t, "nats-server", "disputesync")
	ds := bins["disputesync"]
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The ACL file, with the password filled in by the shipped script.
	password := randomHex(t)
	render := exec.CommandContext(ctx, "sh", filepath.Join(root, "deploy", "redis", "render-acl.sh"))
	render.Env = []string{"PATH=" + os.Getenv("PATH"), "REDIS_DISPUTESYNC_PASSWORD=" + password}
	acl, err := render.Output()
	if err != nil {
		t.Fatalf("render-acl.sh: %v", err)
	}
	aclPath := filepath.Join(t.TempDir(), "users.acl")
	if err := os.WriteFile(aclPath, acl, 0o600); err != nil {
		t.Fatal(err)
	}

	ca := newCA(t, "redis-ca")
	serverCert, serverKey := ca.issue(t, "redis")
	port := freePort(t)
	rp, dir := startRedisServer(t, filepath.Join(root, "deploy", "redis", "redis.conf"),
		"--aclfile", aclPath, "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", serverCert, "--tls-key-file", serverKey, "--tls-ca-cert-file", ca.path)
	redisURL := fmt.Sprintf("rediss://disputesync:%s@127.0.0.1:%d/0", password, port)

	// The ACL user over TLS, as the test's own client.
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	opts.TLSConfig.RootCAs = pool
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	await(t, "redis-server over TLS", 20*time.Second, func() error { return rdb.Ping(ctx).Err() }, rp)

	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil || !strings.Contains(info, "maxmemory_policy:noeviction") {
		t.Errorf("INFO memory: want maxmemory_policy:noeviction (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "appendonlydir")); err != nil {
		t.Errorf("no AOF in redis's directory: %v", err)
	}

	// NATS: a single plain node is enough here.
	natsPort := freePort(t)
	np := start(t, "nats-server", bins["nats-server"], nil, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-sd", t.TempDir())
	natsURL := "nats://" + addr(natsPort)
	nc, err := nats.Connect(natsURL, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	await(t, "nats-server", 30*time.Second, func() error { _, err := js.AccountInfo(ctx); return err }, np)

	sandboxPort := freePort(t)
	sandboxURL := "http://" + addr(sandboxPort)
	start(t, "sandbox", ds, nil, "sandbox", "--addr", addr(sandboxPort), "--disputes", "5", "--tick", "0")
	env := func(metrics, caPath string) []string {
		return []string{
			"DISPUTESYNC_NATS_URL=" + natsURL, "DISPUTESYNC_REDIS_URL=" + redisURL, "DISPUTESYNC_REDIS_TLS_CA=" + caPath,
			"DISPUTESYNC_ROLES=worker", "DISPUTESYNC_METRICS_ADDR=" + metrics,
			"DISPUTESYNC_ALIPAY_URL=" + sandboxURL, "DISPUTESYNC_ALIPAYPLUS_URL=" + sandboxURL,
			"DISPUTESYNC_INGENICO_URL=" + sandboxURL, "DISPUTESYNC_DISPUTEAPI_URL=" + sandboxURL,
		}
	}

	// The wrong CA: refused at start, and the message names the cause.
	wrong := newCA(t, "other-ca")
	bad := exec.CommandContext(ctx, ds, "run")
	bad.Env = env(addr(freePort(t)), wrong.path)
	out, err := bad.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not signed by a trusted CA") || !strings.Contains(string(out), "--redis-tls-ca") {
		t.Errorf("worker with the wrong CA: %v, want a refusal naming the CA:\n%s", err, out)
	}
	if strings.Contains(string(out), password) {
		t.Errorf("the Redis password appears in the output:\n%s", out)
	}

	// The right CA: the worker applies a command.
	metrics := addr(freePort(t))
	wp := start(t, "worker", ds, env(metrics, ca.path), "run")
	ready(t, wp, metrics)
	ids := sampleIDs(t, sandboxURL)
	names := topology.MustNew("disputes")
	results, err := nc.SubscribeSync(names.ResultsAll())
	if err != nil {
		t.Fatal(err)
	}
	const id = "deploy-redis-1"
	msg := nats.NewMsg(names.ActionSubject("alipay", "accept_dispute"))
	msg.Data = []byte(fmt.Sprintf(`{"disputeRequestId":%q,"disputeId":%q}`, id, ids.Alipay[0]))
	msg.Header.Set("Nats-Msg-Id", id)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	m, err := results.NextMsg(45 * time.Second)
	if err != nil {
		t.Fatalf("no result: %v\n%s", err, tail(wp.output(), 3000))
	}
	var res worker.Result
	if err := json.Unmarshal(m.Data, &res); err != nil || res.Outcome != worker.Succeeded {
		t.Errorf("result %s, want succeeded", m.Data)
	}
	if state, err := rdb.HGet(ctx, names.RedisKey("idem", id), "state").Result(); err != nil || state != "done" {
		t.Errorf("idempotency record of %s: state %q, %v; want done", id, state, err)
	}

	// Outside its prefix, and administrative commands: NOPERM.
	for what, err := range map[string]error{
		"GET OTHER:key":  rdb.Get(ctx, "OTHER:key").Err(),
		"SET OTHER:key":  rdb.Set(ctx, "OTHER:key", "x", 0).Err(),
		"FLUSHALL":       rdb.FlushAll(ctx).Err(),
		"CONFIG GET":     rdb.ConfigGet(ctx, "*").Err(),
		"KEYS DISPUTES*": rdb.Keys(ctx, "DISPUTES:*").Err(),
	} {
		if err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%s as disputesync: %v, want NOPERM", what, err)
		}
	}
}

// TestRedisACLIsTheCodesCommands keeps the shipped ACL user and the code's
// own list of the commands it sends (worker.RedisCommands) in step: a
// command the code sends and the ACL lacks stops the product; one the ACL
// grants and the code never sends is a privilege nobody needs.
func TestRedisACLIsTheCodesCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("redis", "users.acl"))
	if err != nil {
		t.Fatal(err)
	}
	var rule string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "user disputesync ") {
			rule = line
		}
	}
	if rule == "" {
		t.Fatal("users.acl has no user disputesync")
	}
	commands := func(s string) []string {
		var out []string
		for _, f := range strings.Fields(s) {
			if strings.HasPrefix(f, "+") || f == "-@all" {
				out = append(out, f)
			}
		}
		slices.Sort(out)
		return out
	}
	got, want := commands(rule), commands(worker.ACLCommands())
	if !slices.Equal(got, want) {
		t.Errorf("users.acl grants %v\nthe code sends %v", got, want)
	}
}
