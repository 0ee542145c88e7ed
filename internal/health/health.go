// Package health keeps, for /readyz and disputesync_ready{component}, what
// each role of a running process says about its own ability to work, and the
// refusals of the servers that are configuration errors rather than outages:
// a NATS permissions violation and a Redis NOPERM (or a Lua script refused a
// command by the ACL). A refusal is logged once, names what was refused, the
// user and the role that needed it, and keeps that role not ready until the
// process is restarted with a configuration that grants it.
package health

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/disputesync/disputesync/metrics"
)

// Board is the readiness of one process's components.
type Board struct {
	// NATSUser and RedisUser name the users in refusal messages ("" is
	// shown as the server's default user).
	NATSUser, RedisUser string
	// RolesOf names the roles that use a NATS subject; nil, or an empty
	// answer, means every role registered on the board.
	RolesOf func(subject string) []string

	log *slog.Logger
	m   *metrics.Metrics

	mu       sync.Mutex
	problems map[string]map[string]string // component -> cause -> problem
	refused  map[string]string            // NATS subject or Redis command -> message
}

// NewBoard returns an empty board; m may be nil.
func NewBoard(log *slog.Logger, m *metrics.Metrics) *Board {
	return &Board{log: log, m: m, problems: map[string]map[string]string{}, refused: map[string]string{}}
}

// Role registers a component (ready until told otherwise) and returns its
// handle.
func (b *Board) Role(name string) *Role {
	b.mu.Lock()
	if b.problems[name] == nil {
		b.problems[name] = map[string]string{}
	}
	ok := len(b.problems[name]) == 0
	b.mu.Unlock()
	b.m.SetReady(name, ok)
	return &Role{b: b, name: name}
}

// set records (problem != "") or clears a cause of a component not being
// ready, and updates disputesync_ready at once.
func (b *Board) set(component, cause, problem string) {
	b.mu.Lock()
	p := b.problems[component]
	if p == nil {
		p = map[string]string{}
		b.problems[component] = p
	}
	if problem == "" {
		delete(p, cause)
	} else {
		p[cause] = problem
	}
	ok := len(p) == 0
	b.mu.Unlock()
	b.m.SetReady(component, ok)
}

// Status is each registered component's state: "ok", or why it is not
// ready (several causes joined by "; ").
func (b *Board) Status() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(b.problems))
	for c, p := range b.problems {
		if len(p) == 0 {
			out[c] = "ok"
			continue
		}
		msgs := make([]string, 0, len(p))
		for _, m := range p {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		out[c] = strings.Join(msgs, "; ")
	}
	return out
}

// Refusals returns every refusal recorded so far as one error, or nil: a
// failure at start is explained by them better than by the timeout that
// followed.
func (b *Board) Refusals() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, 0, len(b.refused))
	for k := range b.refused {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	errs := make([]error, 0, len(keys))
	for _, k := range keys {
		errs = append(errs, errors.New(b.refused[k]))
	}
	return errors.Join(errs...)
}

// Refused reports whether the NATS server refused this process the subject
// (a publish or a subscription), and the message that names it.
func (b *Board) Refused(subject string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	msg, ok := b.refused["nats "+subject]
	return msg, ok
}

// refuse records a refusal once: the first time it is logged and marks the
// roles not ready; it returns the message.
func (b *Board) refuse(key, msg string, roles []string) string {
	b.mu.Lock()
	prev, seen := b.refused[key]
	if !seen {
		b.refused[key] = msg
	}
	b.mu.Unlock()
	if seen {
		return prev
	}
	b.log.Error("configuration error: the server refused a request; grant it and restart", "refusal", msg)
	for _, r := range roles {
		b.set(r, key, msg)
	}
	return msg
}

func (b *Board) roles() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for c := range b.problems {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func user(name string) string {
	if name == "" {
		return "(default)"
	}
	return name
}

// permissionRe reads the operation and subject of a NATS permissions
// violation ('Permissions Violation for Publish to "subject"').
var permissionRe = regexp.MustCompile(`(?i)for (publish|subscription) to "([^"]+)"`)

// NATSError is the connection's asynchronous error handler: a permissions
// violation is recorded by subject; other errors are logged.
func (b *Board) NATSError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		b.log.Warn("NATS error", "err", err)
		return
	}
	m := permissionRe.FindStringSubmatch(err.Error())
	if m == nil {
		b.refuse("nats "+err.Error(), fmt.Sprintf("NATS user %s: %v", user(b.NATSUser), err), b.roles())
		return
	}
	op, subject := strings.ToLower(m[1]), m[2]
	var roles []string
	if b.RolesOf != nil {
		roles = b.RolesOf(subject)
	}
	if len(roles) == 0 {
		roles = b.roles()
	}
	b.refuse("nats "+subject, fmt.Sprintf("NATS user %s may not %s %q (needed by %s)",
		user(b.NATSUser), map[string]string{"publish": "publish to", "subscription": "subscribe to"}[op], subject,
		strings.Join(roles, ", ")), roles)
}

// Role is one component's handle on the board. A nil Role does nothing, so
// code run without a board (tests, tools) need not check.
type Role struct {
	b    *Board
	name string
}

// Ready clears the role's own complaint (refusals stay).
func (r *Role) Ready() {
	if r != nil {
		r.b.set(r.name, "self", "")
	}
}

// NotReady records why the role cannot do its work.
func (r *Role) NotReady(problem string) {
	if r != nil {
		r.b.set(r.name, "self", r.name+": "+problem)
	}
}

// RedisRefused reports whether err is a refusal by the Redis ACL; if so it
// is recorded (logged once per command, the role marked not ready).
func (r *Role) RedisRefused(err error) bool {
	var ref *RedisRefusal
	if !errors.As(err, &ref) {
		c, ok := RedisCommandRefused(err)
		if !ok {
			return false
		}
		ref = &RedisRefusal{Command: c, Err: err}
	}
	if r != nil {
		what := "run " + ref.Command
		if ref.Command == "" {
			what = "access a key it used"
		}
		r.b.refuse("redis "+ref.Command, fmt.Sprintf("Redis user %s may not %s (needed by %s): %v",
			user(r.b.RedisUser), what, r.name, ref.Err), []string{r.name})
	}
	return true
}

// RedisRefusal is a command the Redis ACL refused, with the error Redis
// gave. Command is "" when the ACL refused a key rather than a command.
type RedisRefusal struct {
	Command string
	Err     error
}

func (e *RedisRefusal) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("refused by the Redis ACL: %v", e.Err)
	}
	return fmt.Sprintf("the Redis ACL refused %s: %v", e.Command, e.Err)
}

func (e *RedisRefusal) Unwrap() error { return e.Err }

var (
	nopermCommandRe = regexp.MustCompile(`^NOPERM .*run the '([^']+)' command`)
	scriptLineRe    = regexp.MustCompile(`user executing the script can't (run|access).* on @user_script:(\d+)`)
	callRe          = regexp.MustCompile(`redis\.p?call\('([A-Za-z]+)'`)
)

// RedisCommandRefused reads a refusal of the Redis ACL sent directly
// ("NOPERM ... run the 'time' command"); it returns the command, upper
// case, or "" for a refused key.
func RedisCommandRefused(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	s := err.Error()
	if i := strings.Index(s, "NOPERM"); i >= 0 {
		if m := nopermCommandRe.FindStringSubmatch(s[i:]); m != nil {
			return strings.ToUpper(m[1]), true
		}
		return "", true
	}
	if strings.Contains(s, "user executing the script can't") {
		return "", true
	}
	return "", false
}

// ScriptRefusal reads a refusal from inside a Lua script. Redis names the
// script line ("on @user_script:2"), not the command, so the command is read
// from that line of source; nil when err is not such a refusal.
func ScriptRefusal(err error, source string) *RedisRefusal {
	if err == nil {
		return nil
	}
	m := scriptLineRe.FindStringSubmatch(err.Error())
	if m == nil {
		if c, ok := RedisCommandRefused(err); ok {
			return &RedisRefusal{Command: c, Err: err}
		}
		return nil
	}
	ref := &RedisRefusal{Err: err}
	if m[1] == "access" {
		return ref // a key outside the user's patterns
	}
	var line int
	fmt.Sscan(m[2], &line)
	lines := strings.Split(source, "\n")
	if line >= 1 && line <= len(lines) {
		var cmds []string
		for _, c := range callRe.FindAllStringSubmatch(lines[line-1], -1) {
			if u := strings.ToUpper(c[1]); !slices.Contains(cmds, u) {
				cmds = append(cmds, u)
			}
		}
		ref.Command = strings.Join(cmds, " or ")
	}
	if ref.Command == "" {
		ref.Command = "a command of its Lua script"
	}
	return ref
}
