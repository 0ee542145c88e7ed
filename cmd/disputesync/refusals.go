package main

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/disputesync/disputesync/internal/health"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/internal/versions"
	"github.com/disputesync/disputesync/metrics"
)

// newBoard is the readiness board of a process running c.Roles: refusals
// name the users of c and the role whose subjects were refused.
func newBoard(c *config, names topology.Names, log *slog.Logger, m *metrics.Metrics) *health.Board {
	b := health.NewBoard(log, m)
	b.NATSUser = natsUserName(c)
	b.RedisUser = "default"
	if o, err := redisOptions(string(c.RedisURL)); err == nil && o.Username != "" {
		b.RedisUser = o.Username
	}
	b.RolesOf = func(subject string) []string {
		var out []string
		for _, r := range rolesOfSubject(names, subject) {
			if slices.Contains(c.Roles, r) {
				out = append(out, r)
			}
		}
		return out // none: the board names every role of the process
	}
	return b
}

// natsUserName names the NATS identity in messages; never a secret.
func natsUserName(c *config) string {
	switch {
	case c.NATSUser != "":
		return c.NATSUser
	case c.NATSCreds != "":
		return "of " + c.NATSCreds
	case c.NATSNkeySeed != "":
		return "of the nkey " + c.NATSNkeySeed
	case c.NATSToken != "":
		return "of the token"
	}
	return ""
}

// rolesOfSubject names the roles that use a NATS subject, for subjects only
// some roles use; nil for the JetStream API in general, which every role
// needs.
func rolesOfSubject(n topology.Names, subject string) []string {
	has := func(parts ...string) bool {
		for _, p := range parts {
			if strings.Contains(subject, p) {
				return true
			}
		}
		return false
	}
	switch {
	case has("."+n.PollerBucket()+".", "_"+n.PollerBucket()):
		return []string{"poller"} // checkpoints and the lease
	case has(n.ActionsStream(), n.WorkerConsumer(), n.ResultsStream(), n.DLQStream(), n.EvidenceBucket(),
		n.Prefix()+".results.", n.Prefix()+".dlq."):
		return []string{"worker"}
	case has(n.EventsStream(), n.DisputesBucket(), n.Prefix()+".events."):
		return []string{"poller", "webhook"} // both publish events through the detector
	}
	return nil
}

// explain adds to a failure at start the refusals the servers reported
// meanwhile: "nats: timeout" alone does not tell the operator that the user
// may not publish to the subject. A JetStream API that did not answer
// because the user may not ask it is said so, apart from a server without
// JetStream (which answers "no responders").
func explain(b *health.Board, nc *nats.Conn, err error) error {
	if errors.Is(err, versions.ErrJetStreamNoAnswer) {
		// The violation reaches the error handler asynchronously; the
		// connection's last error is set before that, so read it too.
		if _, ok := b.Refused(versions.JetStreamInfo); !ok && nc != nil {
			if last := nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) {
				b.NATSError(nc, nil, last)
			}
		}
		if msg, ok := b.Refused(versions.JetStreamInfo); ok {
			err = fmt.Errorf("the NATS server has JetStream, but this user has no right to its API: %s (grant publish to \"$JS.API.>\" or the role's API subjects): %w", msg, err)
		}
	}
	refusals := b.Refusals()
	if refusals == nil {
		return err
	}
	var more []string
	for _, r := range strings.Split(refusals.Error(), "\n") {
		if !strings.Contains(err.Error(), r) {
			more = append(more, r)
		}
	}
	if len(more) == 0 {
		return err
	}
	return fmt.Errorf("%w\nrefused by the servers (configuration errors):\n  %s", err, strings.Join(more, "\n  "))
}
