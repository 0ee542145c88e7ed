package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// ACLAdmin is the user RedisWithACL adds, allowed everything (password
// "adminpw"), to read ACL LOG or reset state.
const ACLAdmin = "admin"

// RedisWithACL starts a redis-server of its own on a free port with the ACL
// users given (one "user ..." line each; the default user is off) and
// returns its address; it stops when t ends. Tests of least-privilege users
// need a server of their own: the shared one has no ACL.
func RedisWithACL(t testing.TB, users ...string) string {
	t.Helper()
	dir := t.TempDir()
	acl := filepath.Join(dir, "users.acl")
	lines := append([]string{"user default off", "user " + ACLAdmin + " on >adminpw ~* &* +@all"}, users...)
	if err := os.WriteFile(acl, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, stop, err := startRedisServer(dir, func(addr string) error {
		admin := ACLAdminClient(addr)
		defer admin.Close()
		return admin.Ping(context.Background()).Err()
	}, "--aclfile", acl)
	if err != nil {
		t.Fatalf("testenv: redis-server for ACL tests: %v", err)
	}
	t.Cleanup(stop)
	return addr
}

// ACLAdminClient is a client of RedisWithACL's server as ACLAdmin.
func ACLAdminClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Username: ACLAdmin, Password: "adminpw", MaxRetries: -1})
}
