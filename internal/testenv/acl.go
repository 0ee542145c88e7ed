package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testenv: redis-server is needed for ACL tests: %v", err)
	}
	dir := t.TempDir()
	acl := filepath.Join(dir, "users.acl")
	lines := append([]string{"user default off", "user " + ACLAdmin + " on >adminpw ~* &* +@all"}, users...)
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
	admin := ACLAdminClient(addr)
	defer admin.Close()
	deadline := time.Now().Add(10 * time.Second)
	for admin.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("testenv: redis-server on %s does not answer:\n%s", addr, b)
		}
		time.Sleep(50 * time.Millisecond) // a child process has no readiness signal
	}
	return addr
}

// ACLAdminClient is a client of RedisWithACL's server as ACLAdmin.
func ACLAdminClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Username: ACLAdmin, Password: "adminpw", MaxRetries: -1})
}
