package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/internal/health"
	"github.com/disputesync/disputesync/internal/topology"
)

// The idempotency record of a command is one Redis hash,
// <PREFIX>:idem:<disputeRequestId>, with the fields
//
//	fp          fingerprint of (provider, action, disputeId, merchant, params)
//	state       held | idle | done
//	owner       the holder's token (unique per delivery attempt)
//	epoch       fencing counter, +1 on every claim
//	lease       lease end, unix ms of the worker clock (see below)
//	calls       provider calls started so far
//	first       when the command was first claimed (ms)
//	seq         stream sequence of the delivery that completed it
//	result      the result JSON, once done
//	published   1 once the non-replayed result is stored in JetStream
//
// Every transition is one Lua script, and every script gives the same answer
// when go-redis runs it twice (it retries on network errors): the owner token
// lets a script recognise its own earlier run.
//
// Times (lease ends, first) are the worker's clock, passed to each script as
// an argument, not the Redis server's TIME: the ACL of deploy/redis need not
// grant TIME, and the retry deadline (RetryDeadline since "first", judged by
// the worker) compares two readings of the same clock. Leases are compared
// across workers, so worker clocks must agree to well within a lease (30 s by
// default); NTP gives milliseconds. RedisCommands lists every command these
// scripts call.

// ClaimStatus is the outcome of a claim.
type ClaimStatus string

const (
	Claimed      ClaimStatus = "claimed"      // this worker now holds the command
	TakenOver    ClaimStatus = "takeover"     // an earlier holder's lease ran out; reconcile first
	Replay       ClaimStatus = "replay"       // done: the stored result is the answer
	Inconsistent ClaimStatus = "inconsistent" // same id, different command
	Busy         ClaimStatus = "busy"         // another worker holds it
)

// Claim is what the claim script answered.
type Claim struct {
	Status    ClaimStatus
	Epoch     int64
	Calls     int64         // provider calls made by earlier attempts
	First     time.Time     // first claim
	Result    []byte        // Replay: the stored result
	Published bool          // Replay: the non-replayed result is in JetStream
	Seq       uint64        // Replay: stream sequence of the completing delivery
	Wait      time.Duration // Busy: time left on the holder's lease
}

// Store is the Redis idempotency store.
type Store struct {
	rdb       redis.UniversalClient
	names     topology.Names
	lease     time.Duration
	retention time.Duration
	now       func() time.Time // the worker's clock; see above
	health    *health.Role     // told of ACL refusals; nil outside a process
}

// run runs a script of the store; an ACL refusal is reported to the role's
// readiness (logged once) and returned as a *health.RedisRefusal.
func (s *Store) run(ctx context.Context, sc script, keys []string, args ...any) *redis.Cmd {
	cmd := sc.run(ctx, s.rdb, keys, args...)
	if err := cmd.Err(); err != nil {
		s.health.RedisRefused(err)
	}
	return cmd
}

// NewStore returns a Store. lease is how long a holder may go without
// renewing; retention how long a finished command is remembered.
func NewStore(rdb redis.UniversalClient, names topology.Names, lease, retention time.Duration) *Store {
	return &Store{rdb: rdb, names: names, lease: lease, retention: retention, now: time.Now}
}

func (s *Store) key(id string) string { return s.names.RedisKey("idem", id) }

// ErrLostClaim is returned when the caller no longer holds the command.
var ErrLostClaim = errors.New("worker: claim lost to another holder")

// nowMillis is the worker's clock as the scripts take it (ARGV, unix ms).
func (s *Store) nowMillis() int64 { return s.now().UnixMilli() }

var claimScript = newScript(`
local k = KEYS[1]
local fp, owner, lease, ttl, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', k) == 0 then
  redis.call('HSET', k, 'fp', fp, 'state', 'held', 'owner', owner, 'epoch', 1, 'lease', now + lease, 'calls', 0, 'first', now)
  redis.call('PEXPIRE', k, ttl)
  return {'claimed', 1, 0, now}
end
local r = redis.call('HMGET', k, 'fp', 'state', 'owner', 'epoch', 'lease', 'calls', 'first', 'result', 'published', 'seq')
if r[1] ~= fp then return {'inconsistent'} end
local state, holder, epoch = r[2], r[3], tonumber(r[4])
if state == 'done' then return {'replay', epoch, tonumber(r[6]), tonumber(r[7]), r[8], r[9] or '0', r[10] or '0'} end
if state == 'held' and holder == owner then
  -- A re-run of this very claim: answer as the first run did.
  local status = 'claimed'
  if redis.call('HGET', k, 'took') == tostring(epoch) then status = 'takeover' end
  return {status, epoch, tonumber(r[6]), tonumber(r[7])}
end
local status = 'claimed'
if state == 'held' then
  local left = tonumber(r[5]) - now
  if left > 0 then return {'busy', epoch, left} end
  status = 'takeover'
end
epoch = epoch + 1
redis.call('HSET', k, 'state', 'held', 'owner', owner, 'epoch', epoch, 'lease', now + lease)
if status == 'takeover' then redis.call('HSET', k, 'took', epoch) end
return {status, epoch, tonumber(r[6]), tonumber(r[7])}
`)

// Claim tries to take the command for owner.
func (s *Store) Claim(ctx context.Context, id, fp, owner string) (Claim, error) {
	res, err := s.run(ctx, claimScript, []string{s.key(id)}, fp, owner, s.lease.Milliseconds(), s.retention.Milliseconds(), s.nowMillis()).Slice()
	if err != nil {
		return Claim{}, fmt.Errorf("worker: claim %s: %w", id, err)
	}
	c := Claim{Status: ClaimStatus(res[0].(string))}
	num := func(i int) int64 {
		if i >= len(res) {
			return 0
		}
		switch v := res[i].(type) {
		case int64:
			return v
		case string:
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
		return 0
	}
	switch c.Status {
	case Claimed, TakenOver:
		c.Epoch, c.Calls, c.First = num(1), num(2), time.UnixMilli(num(3))
	case Replay:
		c.Epoch, c.Calls, c.First = num(1), num(2), time.UnixMilli(num(3))
		if s, ok := res[4].(string); ok {
			c.Result = []byte(s)
		}
		c.Published = num(5) == 1
		c.Seq = uint64(num(6))
	case Busy:
		c.Epoch, c.Wait = num(1), time.Duration(num(2))*time.Millisecond
	case Inconsistent:
	default:
		return Claim{}, fmt.Errorf("worker: claim %s: unexpected answer %v", id, res)
	}
	return c, nil
}

// holderCheck is the common head of the scripts that need the caller to be
// the current holder. Their last argument is the worker's clock.
const holderCheck = `
local now = tonumber(ARGV[#ARGV])
local k = KEYS[1]
local r = redis.call('HMGET', k, 'state', 'owner', 'epoch')
local held = r[1] == 'held' and r[2] == ARGV[1] and tonumber(r[3]) == tonumber(ARGV[2])
`

var beginCallScript = newScript(holderCheck + `
if not held then return -1 end
-- ARGV[3] is the call number this attempt makes: setting, not incrementing,
-- keeps a retried script from counting twice.
redis.call('HSET', k, 'calls', ARGV[3], 'lease', now + tonumber(ARGV[4]))
return tonumber(ARGV[3])
`)

// BeginCall records that the holder is about to call the provider (call
// number n) and renews its lease.
func (s *Store) BeginCall(ctx context.Context, id, owner string, epoch, n int64) error {
	res, err := s.run(ctx, beginCallScript, []string{s.key(id)}, owner, epoch, n, s.lease.Milliseconds(), s.nowMillis()).Int64()
	if err != nil {
		return fmt.Errorf("worker: begin call %s: %w", id, err)
	}
	if res < 0 {
		return ErrLostClaim
	}
	return nil
}

var extendScript = newScript(holderCheck + `
if not held then return 0 end
redis.call('HSET', k, 'lease', now + tonumber(ARGV[3]))
return 1
`)

// Extend renews the holder's lease.
func (s *Store) Extend(ctx context.Context, id, owner string, epoch int64) error {
	ok, err := s.run(ctx, extendScript, []string{s.key(id)}, owner, epoch, s.lease.Milliseconds(), s.nowMillis()).Int64()
	if err != nil {
		return fmt.Errorf("worker: extend %s: %w", id, err)
	}
	if ok == 0 {
		return ErrLostClaim
	}
	return nil
}

var releaseScript = newScript(holderCheck + `
if not held then return 0 end
redis.call('HSET', k, 'state', 'idle', 'owner', '')
return 1
`)

// Release gives the command up without a result, so that a later delivery
// can claim it at once (a retry, a busy dispute, a shutdown).
func (s *Store) Release(ctx context.Context, id, owner string, epoch int64) error {
	if _, err := s.run(ctx, releaseScript, []string{s.key(id)}, owner, epoch, s.nowMillis()).Int64(); err != nil {
		return fmt.Errorf("worker: release %s: %w", id, err)
	}
	return nil
}

var completeScript = newScript(`
local k = KEYS[1]
local r = redis.call('HMGET', k, 'state', 'owner', 'epoch', 'result')
if r[2] == ARGV[1] and tonumber(r[3]) == tonumber(ARGV[2]) then
  if r[1] == 'held' then
    redis.call('HSET', k, 'state', 'done', 'result', ARGV[3], 'seq', ARGV[4], 'published', 0)
    redis.call('PEXPIRE', k, tonumber(ARGV[5]))
    return {'ok'}
  end
  if r[1] == 'done' then return {'ok'} end
end
return {'stale', r[1] or '', r[4] or ''}
`)

// Complete stores the result, if the caller still holds the command. A
// stale holder never overwrites a newer holder's result: it gets
// ErrLostClaim and, if the command is done, the winner's result.
func (s *Store) Complete(ctx context.Context, id, owner string, epoch int64, result []byte, seq uint64) (winner []byte, err error) {
	res, err := s.run(ctx, completeScript, []string{s.key(id)}, owner, epoch, result, seq, s.retention.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("worker: complete %s: %w", id, err)
	}
	if res[0].(string) == "ok" {
		return nil, nil
	}
	if res[1].(string) == "done" {
		return []byte(res[2].(string)), ErrLostClaim
	}
	return nil, ErrLostClaim
}

var markPublishedScript = newScript(`
if redis.call('HGET', KEYS[1], 'state') == 'done' then redis.call('HSET', KEYS[1], 'published', 1) end
return 1
`)

// MarkPublished records that the non-replayed result is stored in JetStream.
// A record that has expired or vanished is left alone, never recreated.
func (s *Store) MarkPublished(ctx context.Context, id string) error {
	if err := s.run(ctx, markPublishedScript, []string{s.key(id)}).Err(); err != nil {
		return fmt.Errorf("worker: mark published %s: %w", id, err)
	}
	return nil
}

// Locks give mutual exclusion per dispute (or per handler lock key) across
// every replica, with the same owner-token and re-run rules.
var lockScript = newScript(`
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

var unlockScript = newScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Lock takes (or renews) the lock on key for owner.
func (s *Store) Lock(ctx context.Context, key, owner string) (bool, error) {
	ok, err := s.run(ctx, lockScript, []string{s.names.RedisKey("lock", key)}, owner, s.lease.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("worker: lock %s: %w", key, err)
	}
	return ok == 1, nil
}

// Unlock releases a lock if owner holds it.
func (s *Store) Unlock(ctx context.Context, key, owner string) error {
	if err := s.run(ctx, unlockScript, []string{s.names.RedisKey("lock", key)}, owner).Err(); err != nil {
		return fmt.Errorf("worker: unlock %s: %w", key, err)
	}
	return nil
}

// Probe runs every script of the store once, on a record and a lock of its
// own that it deletes afterwards, so that an ACL refusing a command a script
// calls is found at start (a configuration error: the process exits) rather
// than on the first command.
func (s *Store) Probe(ctx context.Context) error {
	id := "probe-" + strconv.FormatInt(s.now().UnixNano(), 36)
	p := *s
	p.retention = time.Minute // a record left behind by a failed probe goes soon
	defer func() {
		_ = s.rdb.Del(context.WithoutCancel(ctx), s.key(id), s.names.RedisKey("lock", id)).Err()
	}()
	c, err := p.Claim(ctx, id, "probe", id)
	if err != nil {
		return err
	}
	steps := []func() error{
		func() error { _, err := p.Lock(ctx, id, id); return err },
		func() error { return p.Unlock(ctx, id, id) },
		func() error { return p.BeginCall(ctx, id, id, c.Epoch, 1) },
		func() error { return p.Extend(ctx, id, id, c.Epoch) },
		func() error { return p.Release(ctx, id, id, c.Epoch) },
		func() error { c, err = p.Claim(ctx, id, "probe", id+"b"); return err },
		func() error { _, err := p.Complete(ctx, id, id+"b", c.Epoch, []byte("{}"), 0); return err },
		func() error { return p.MarkPublished(ctx, id) },
	}
	for _, f := range steps {
		if err := f(); err != nil {
			return fmt.Errorf("worker: idempotency store probe: %w", err)
		}
	}
	return nil
}
