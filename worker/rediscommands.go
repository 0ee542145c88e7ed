package worker

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/internal/health"
)

// RedisCommand is one command disputesync sends to Redis, directly or from
// a Lua script, and why: the ACL of a least-privilege Redis user is this
// list (see ACLCommands) and the key pattern "<PREFIX>:*".
type RedisCommand struct {
	Name     string // as in an ACL rule: "hset", "client|setinfo"
	Why      string
	Optional bool // a refusal is tolerated (the feature degrades, nothing fails)
}

// RedisCommands is every command of disputesync (all roles). A test runs
// the worker's idempotency operations, the webhook's markers and the
// escalation ledger as a user granted only these commands on the prefix,
// and fails on any refusal: keep the table true when a script or call
// changes.
var RedisCommands = []RedisCommand{
	// Connection (go-redis on every new connection).
	{Name: "hello", Why: "go-redis opens each connection with HELLO 3 (and AUTH in it)"},
	{Name: "auth", Why: "fallback of HELLO for the ACL user"},
	{Name: "client|setinfo", Why: "go-redis names its library on Redis 7.2+ (a refusal is ignored)", Optional: true},
	{Name: "select", Why: "a database other than 0 in --redis-url"},
	{Name: "ping", Why: "connection check at start and /readyz"},
	// Start-up checks (internal/versions).
	{Name: "info", Why: "INFO server: refuse a Redis older than 6.2"},
	{Name: "config|get", Why: "warn when maxmemory-policy may evict records (a refusal skips the warning)", Optional: true},
	// Scripts of the idempotency store and locks (worker).
	{Name: "evalsha", Why: "runs the idempotency and lock scripts by hash"},
	{Name: "eval", Why: "loads a script the server does not have yet (NOSCRIPT)"},
	{Name: "exists", Why: "claim script: is there a record"},
	{Name: "hset", Why: "claim, begin-call, extend, release, complete, mark-published scripts; escalation ledger"},
	{Name: "hget", Why: "claim and mark-published scripts"},
	{Name: "hmget", Why: "every idempotency script; webhook markers"},
	{Name: "pexpire", Why: "claim, complete and lock scripts: retention and lock expiry"},
	{Name: "get", Why: "lock and unlock scripts; escalation ledger back reference"},
	{Name: "set", Why: "lock script (SET PX); escalation ledger back reference"},
	{Name: "del", Why: "unlock script"},
	// Webhook notification markers and the Alipay+ escalation ledger
	// (MULTI/EXEC pipelines).
	{Name: "multi", Why: "transactions of the webhook markers and the ledger"},
	{Name: "exec", Why: "transactions of the webhook markers and the ledger"},
	{Name: "hsetnx", Why: "webhook markers; escalation ledger"},
	{Name: "expire", Why: "webhook markers; escalation ledger"},
	{Name: "hgetall", Why: "escalation ledger"},
}

// ACLCommands is the command part of an ACL rule granting the required
// RedisCommands: "-@all +hello +auth ...". The optional ones are left out:
// their refusal costs nothing, and CLIENT SETINFO is not even a command an
// ACL may name before Redis 7.2.
func ACLCommands() string {
	s := "-@all"
	for _, c := range RedisCommands {
		if !c.Optional {
			s += " +" + c.Name
		}
	}
	return s
}

// script is a Lua script with its source kept, so that a command the ACL
// refuses inside it can be named (Redis names only the script line).
type script struct {
	src string
	*redis.Script
}

func newScript(src string) script { return script{src: src, Script: redis.NewScript(src)} }

// run runs the script; an ACL refusal becomes a *health.RedisRefusal that
// names the command.
func (s script) run(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	cmd := s.Script.Run(ctx, c, keys, args...)
	if ref := health.ScriptRefusal(cmd.Err(), s.src); ref != nil {
		cmd.SetErr(ref)
	}
	return cmd
}
