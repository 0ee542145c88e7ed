package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/internal/embedded"
	"github.com/disputesync/disputesync/internal/health"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/internal/versions"
)

// redisACLBeforeIssue14 is the user of deploy/redis/users.acl before issue
// 14 (copied: the deploy file has since changed), with a test password. It
// did not grant TIME, which the claim script called then.
const redisACLBeforeIssue14 = `user disputesync on >pw ~DISPUTES:* resetchannels -@all +@read +@write +@scripting +@connection -@dangerous +info`

// aclLog is what Redis refused so far, as ACL LOG reports it.
func aclLog(t *testing.T, addr string) []string {
	t.Helper()
	admin := testenv.ACLAdminClient(addr)
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
	addr := testenv.RedisWithACL(t,
		"user listed on >pw resetchannels ~"+names.RedisPattern()+" "+ACLCommands(),
		redisACLBeforeIssue14)
	ctx := testenv.Context(t)
	admin := testenv.ACLAdminClient(addr)
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
	addr := testenv.RedisWithACL(t, "user nohset on >pw resetchannels ~"+names.RedisPattern()+" "+ACLCommands()+" -hset")
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

// The start-up probe passes on the Redis servers disputesync runs on (the
// embedded one of "dev" included) and leaves no key behind.
func TestStoreProbe(t *testing.T) {
	t.Parallel()
	mr, err := embedded.StartRedis("")
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	env := testenv.New(t)
	opts, _ := redis.ParseURL(mr.URL())
	embeddedRedis := redis.NewClient(opts)
	defer embeddedRedis.Close()
	for name, rdb := range map[string]redis.UniversalClient{"redis-server": env.Redis, "embedded": embeddedRedis} {
		ctx := testenv.Context(t)
		if err := NewStore(rdb, env.Names, time.Minute, time.Hour).Probe(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if keys, _ := rdb.Keys(ctx, env.Names.RedisPattern()).Result(); len(keys) != 0 {
			t.Errorf("%s: the probe left %v", name, keys)
		}
	}
}
