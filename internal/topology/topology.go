// Package topology names every subject, stream, consumer, bucket and Redis
// key of one deployment from its prefix, and creates the JetStream side of it
// (docs/contract.md section 2). Two prefixes never share a name, so two deployments
// can share one NATS and one Redis without seeing each other.
package topology

import (
	"fmt"
	"regexp"
	"strings"
)

// Names derives every name of a deployment from its prefix.
type Names struct {
	prefix string // subject root, e.g. "disputes"
	upper  string // name prefix, e.g. "DISPUTES"
}

var validPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// New validates a prefix and returns its names.
func New(prefix string) (Names, error) {
	if !validPrefix.MatchString(prefix) {
		return Names{}, fmt.Errorf("prefix %q: must be 1 to 32 letters, digits, '_' or '-' (it is a subject token and part of stream names)", prefix)
	}
	return Names{prefix: prefix, upper: strings.ToUpper(prefix)}, nil
}

// MustNew is New for prefixes known to be valid (tests, constants).
func MustNew(prefix string) Names {
	n, err := New(prefix)
	if err != nil {
		panic(err)
	}
	return n
}

// Prefix is the subject root.
func (n Names) Prefix() string { return n.prefix }

// Streams.
func (n Names) EventsStream() string  { return n.upper + "_EVENTS" }
func (n Names) ActionsStream() string { return n.upper + "_ACTIONS" }
func (n Names) ResultsStream() string { return n.upper + "_RESULTS" }
func (n Names) DLQStream() string     { return n.upper + "_DLQ" }

// WorkerConsumer is the durable pull consumer all worker replicas share.
func (n Names) WorkerConsumer() string { return n.upper + "_WORKER" }

// Buckets.
func (n Names) DisputesBucket() string { return n.upper + "_DISPUTES" } // KV: dispute snapshots
func (n Names) PollerBucket() string   { return n.upper + "_POLLER" }   // KV: checkpoints and the poller lease
func (n Names) EvidenceBucket() string { return n.upper + "_EVIDENCE" } // object store: attachments

// Subjects. Tokens must not contain '.', '*', '>' or spaces.
func (n Names) EventsAll() string { return n.prefix + ".events.>" }
func (n Names) EventSubject(source, typ string) string {
	return n.prefix + ".events." + source + "." + typ
}
func (n Names) ActionsAll() string { return n.prefix + ".actions.>" }
func (n Names) ActionSubject(provider, action string) string {
	return n.prefix + ".actions." + provider + "." + action
}
func (n Names) ResultsAll() string { return n.prefix + ".results.>" }
func (n Names) ResultSubject(provider, action string) string {
	return n.prefix + ".results." + provider + "." + action
}
func (n Names) DLQAll() string { return n.prefix + ".dlq.>" }
func (n Names) DLQSubject(provider, action string) string {
	return n.prefix + ".dlq." + provider + "." + action
}

// ParseActionSubject splits "<prefix>.actions.<provider>.<action>".
func (n Names) ParseActionSubject(subject string) (provider, action string, ok bool) {
	rest, found := strings.CutPrefix(subject, n.prefix+".actions.")
	if !found {
		return "", "", false
	}
	provider, action, ok = strings.Cut(rest, ".")
	if !ok || provider == "" || action == "" || strings.Contains(action, ".") {
		return "", "", false
	}
	return provider, action, true
}

// RedisKey joins parts under the deployment's Redis key prefix, e.g.
// RedisKey("idem", id) = "DISPUTES:idem:<id>".
func (n Names) RedisKey(parts ...string) string {
	return n.upper + ":" + strings.Join(parts, ":")
}

// RedisPattern matches every Redis key of the deployment.
func (n Names) RedisPattern() string { return n.upper + ":*" }
