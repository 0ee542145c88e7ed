package health

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// The refusals Redis 7 answers, read into the command refused.
func TestRedisRefusals(t *testing.T) {
	const src = "\nlocal t = redis.call('TIME')\nlocal k = KEYS[1]\nredis.call('HSET', k, 'a', 1) redis.pcall('PEXPIRE', k, 5)\n"
	for _, tc := range []struct {
		err     string
		refused bool
		command string
	}{
		{"ERR The user executing the script can't run this command or subcommand script: 104ae6, on @user_script:2.", true, "TIME"},
		{"ERR The user executing the script can't run this command or subcommand script: 104ae6, on @user_script:4.", true, "HSET or PEXPIRE"},
		{"ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: f08a, on @user_script:3.", true, ""},
		{"NOPERM this user has no permissions to run the 'time' command", true, "TIME"},
		{"NOPERM this user has no permissions to run the 'config|get' command", true, "CONFIG|GET"},
		{"NOPERM this user has no permissions to access one of the keys used as arguments", true, ""},
		{"ERR Error running script (call to f_x): @user_script:2: WRONGTYPE", false, ""},
		{"dial tcp 127.0.0.1:6379: connect: connection refused", false, ""},
	} {
		ref := ScriptRefusal(fmt.Errorf("worker: claim x: %w", errors.New(tc.err)), src)
		if (ref != nil) != tc.refused {
			t.Errorf("%q: refusal %v, want %v", tc.err, ref, tc.refused)
			continue
		}
		if ref != nil && ref.Command != tc.command {
			t.Errorf("%q: command %q, want %q", tc.err, ref.Command, tc.command)
		}
	}
}

// A NATS permissions violation marks the roles of its subject not ready,
// names subject, user and role, and is logged once however often it comes.
func TestNATSViolation(t *testing.T) {
	var logs bytes.Buffer
	b := NewBoard(slog.New(slog.NewTextHandler(&logs, nil)), nil)
	b.NATSUser = "poller"
	b.RolesOf = func(subject string) []string {
		if strings.HasPrefix(subject, "$KV.") {
			return []string{"poller"}
		}
		return nil
	}
	b.Role("poller")
	b.Role("webhook")
	err := fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Publish to "$KV.DISPUTES_POLLER.disputeapi.lease"`)
	for range 3 {
		b.NATSError(nil, nil, err)
	}
	st := b.Status()
	if want := `NATS user poller may not publish to "$KV.DISPUTES_POLLER.disputeapi.lease" (needed by poller)`; st["poller"] != want {
		t.Errorf("poller = %q, want %q", st["poller"], want)
	}
	if st["webhook"] != "ok" {
		t.Errorf("webhook = %q, want ok", st["webhook"])
	}
	if n := strings.Count(logs.String(), "configuration error"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
	if _, ok := b.Refused("$KV.DISPUTES_POLLER.disputeapi.lease"); !ok {
		t.Error("Refused does not know the subject")
	}
	// A subject no role claims concerns every role of the process.
	b.NATSError(nil, nil, fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Publish to "$JS.API.INFO"`))
	if st := b.Status(); !strings.Contains(st["webhook"], "$JS.API.INFO") || !strings.Contains(st["poller"], "$JS.API.INFO") {
		t.Errorf("$JS.API.INFO refusal not on every role: %v", st)
	}
	// A role's own complaint clears; a refusal stays until restart.
	r := b.Role("poller")
	r.NotReady("cannot hold its lease")
	r.Ready()
	if !strings.Contains(b.Status()["poller"], "$KV.") {
		t.Errorf("Ready cleared a refusal: %v", b.Status())
	}
}
