package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/internal/health"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/internal/versions"
)

// redisACLBeforeIssue14 is the user of deploy/redis/users.acl before issue
// 14 (copied: the deploy file has since changed), with a test password. It
// did not grant TIME, which the claim script called then.
const redisACLBeforeIssue14 = `user disputesync on >pw ~DISPUTES:* resetchannels -@all +@read +@write +@scripting +@connection -@dangerous +info`

// startACLRedis starts redis-server on a free port with the ACL users given
// (plus "admin", allowed everything, to read ACL LOG); it stops when t ends.
func startACLRedis(t *testing.T, users ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is needed for the ACL tests: %v", err)
	}
	dir := t.TempDir()
	acl := filepath.Join(dir, "users.acl")
	lines := append([]string{"user default off", "user admin on >adminpw ~* &* +@all"}, users...)
	if err := os.WriteFile(acl, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--aclfile", acl, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	admin := redis.NewClient(&redis.Options{Addr: addr, Username: "admin", Password: "adminpw"})
	defer admin.Close()
	deadline := time.Now().Add(10 * time.Second)
	for admin.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server on %s does not answer:\n%s", addr, b)
		}
		time.Sleep(50 * time.Millisecond) // a child process has no readiness signal
	}
	return addr
}

// aclLog is what Redis refused so far, as ACL LOG reports it.
func aclLog(t *testing.T, addr string) []string {
	t.Helper()
	admin := redis.NewClient(&redis.Options{Addr: addr, Username: "admin", Password: "adminpw"})
	defer admin.Close()
	entries, err := admin.ACLLog(context.Background(), 100).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, fmt.Sprintf("%s %s by %s", e.Reason, e.Object, e.Username))
	}
	return out
}

// useStore runs every idempotency and lock operation a command goes
// through, and the Alipay+ escalation ledger, as rdb.
func useStore(ctx context.Context, t *testing.T, rdb redis.UniversalClient, names topology.Names, ledger bool) error {
	t.Helper()
	if err := versions.CheckRedis(ctx, rdb); err != nil {
		return err
	}
	versions.EvictionPolicy(ctx, rdb) // optional: a refusal is tolerated
	s := NewStore(rdb, names, time.Minute, time.Hour)
	c, err := s.Claim(ctx, "r1", "fp", "A")
	if err != nil {
		return err
	}
	steps := []func() error{
		func() error { _, err := s.Lock(ctx, "d1", "A"); return err },
		func() error { return s.BeginCall(ctx, "r1", "A", c.Epoch, 1) },
		func() error { return s.Extend(ctx, "r1", "A", c.Epoch) },
		func() error { return s.Release(ctx, "r1", "A", c.Epoch) },
		func() error { c, err = s.Claim(ctx, "r1", "fp", "B"); return err },
		func() error { _, err := s.Complete(ctx, "r1", "B", c.Epoch, []byte(`{}`), 7); return err },
		func() error { return s.MarkPublished(ctx, "r1") },
		func() error { return s.Unlock(ctx, "d1", "A") },
		func() error { _, err := s.Claim(ctx, "r1", "fp", "C"); return err }, // replay
		func() error {
			if !ledger {
				return nil
			}
			l := alipayplus.NewRedisLedger(rdb, names)
			if err := l.Record(ctx, alipayplus.Escalation{PaymentRequestID: "p1", DisputeRequestID: "r1", DisputeID: "d1"}); err != nil {
				return err
			}
			if _, err := l.Escalations(ctx, "p1"); err != nil {
				return err
			}
			return l.Close(ctx, "", "r1", time.Now())
		},
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// TestRedisCommandsAreTheACL is the list of issue 14 item 1 held to the
// code: a user granted only RedisCommands on its prefix runs every
// idempotency operation and the escalation ledger without one refusal (ACL
// LOG stays empty, apart from the optional commands), and the idempotency
// store of the user of deploy/redis before issue 14 now works too, since no
// script calls TIME any more.
func TestRedisCommandsAreTheACL(t *testing.T) {
	t.Parallel()
	names := topology.MustNew("disputes")
	addr := startACLRedis(t,
		"user listed on >pw resetchannels ~"+names.RedisPattern()+" "+ACLCommands(),
		redisACLBeforeIssue14)
	ctx := testenv.Context(t)
	admin := redis.NewClient(&redis.Options{Addr: addr, Username: "admin", Password: "adminpw"})
	defer admin.Close()
	for _, u := range []struct {
		user   string
		ledger bool
	}{
		{"listed", true},
		// The old user lacks MULTI (no @transaction), so only the worker's
		// idempotency store, which failed on TIME, is run as it.
		{"disputesync", false},
	} {
		user := u.user
		if err := admin.FlushAll(ctx).Err(); err != nil { // each user starts from no records
			t.Fatal(err)
		}
		rdb := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: "pw"})
		if err := useStore(ctx, t, rdb, names, u.ledger); err != nil {
			t.Errorf("as %s: %v", user, err)
		}
		rdb.Close()
	}
	for _, e := range aclLog(t, addr) {
		optional := false
		for _, c := range RedisCommands {
			optional = optional || (c.Optional && strings.Contains(e, " "+c.Name+" "))
		}
		if !optional && strings.HasSuffix(e, "by listed") {
			t.Errorf("Redis refused the listed user %q: add it to RedisCommands (and to deploy/redis) or stop sending it", e)
		}
	}
}

// TestRedisScriptRefusalMarksWorkerNotReady is issue 14 acceptance 3, third
// failure, as it would be now: a user whose ACL refuses a command an
// idempotency script calls (then TIME; here HSET) gets an error naming the
// command, the worker is not ready naming the command, the user and the
// role, and the refusal is logged once however many commands fail on it.
func TestRedisScriptRefusalMarksWorkerNotReady(t *testing.T) {
	t.Parallel()
	names := topology.MustNew("disputes")
	addr := startACLRedis(t, "user nohset on >pw resetchannels ~"+names.RedisPattern()+" "+ACLCommands()+" -hset")
	ctx := testenv.Context(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, Username: "nohset", Password: "pw"})
	defer rdb.Close()
	var logs bytes.Buffer
	board := health.NewBoard(slog.New(slog.NewTextHandler(&logs, nil)), nil)
	board.RedisUser = "nohset"
	s := NewStore(rdb, names, time.Minute, time.Hour)
	s.health = board.Role("worker")

	for i := range 3 {
		_, err := s.Claim(ctx, fmt.Sprint("r", i), "fp", "A")
		var ref *health.RedisRefusal
		if !errors.As(err, &ref) || ref.Command != "HSET" {
			t.Fatalf("claim %d: %v, want a refusal of HSET", i, err)
		}
	}
	why := board.Status()["worker"]
	for _, want := range []string{"Redis user nohset may not run HSET", "needed by worker"} {
		if !strings.Contains(why, want) {
			t.Errorf("worker status %q does not say %q", why, want)
		}
	}
	if n := strings.Count(logs.String(), "configuration error"); n != 1 {
		t.Errorf("refusal logged %d times for 3 refused claims, want once:\n%s", n, logs.String())
	}
}
