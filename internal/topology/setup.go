package topology

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Options are the settings of the JetStream objects Setup creates. Zero
// values mean the documented defaults.
type Options struct {
	Replicas int // default 1

	EventsMaxAge  time.Duration // default 90 days
	ResultsMaxAge time.Duration // default 30 days (the idempotency retention)
	DLQMaxAge     time.Duration // default 90 days

	// EventsDuplicates is the events stream's duplicate window. Event ids are
	// derived from the dispute's state, so a poller that restarts and
	// republishes within it publishes nothing new. Default 24 h.
	EventsDuplicates time.Duration
	// ActionsDuplicates drops a command republished with the same
	// Nats-Msg-Id within the window. Default 10 min.
	ActionsDuplicates time.Duration
	// ResultsDuplicates dedups results (Nats-Msg-Id = disputeRequestId).
	// Default 24 h.
	ResultsDuplicates time.Duration

	// Worker consumer.
	AckWait       time.Duration // default 60 s
	MaxDeliver    int           // default 100: a backstop; the worker bounds provider attempts itself
	MaxAckPending int           // default 64
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	def(&o.EventsMaxAge, 90*24*time.Hour)
	def(&o.ResultsMaxAge, 30*24*time.Hour)
	def(&o.DLQMaxAge, 90*24*time.Hour)
	def(&o.EventsDuplicates, 24*time.Hour)
	def(&o.ActionsDuplicates, 10*time.Minute)
	def(&o.ResultsDuplicates, 24*time.Hour)
	def(&o.AckWait, 60*time.Second)
	if o.MaxDeliver == 0 {
		o.MaxDeliver = 100
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 64
	}
	return o
}

// Streams returns the stream configurations of a deployment.
func (n Names) Streams(o Options) []jetstream.StreamConfig {
	o = o.withDefaults()
	return []jetstream.StreamConfig{
		{
			Name: n.EventsStream(), Description: "disputesync dispute events (CloudEvents)",
			Subjects: []string{n.EventsAll()}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: o.Replicas,
			MaxAge: o.EventsMaxAge, Duplicates: o.EventsDuplicates,
		},
		{
			Name: n.ActionsStream(), Description: "disputesync action commands",
			Subjects: []string{n.ActionsAll()}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Replicas: o.Replicas,
			Duplicates: o.ActionsDuplicates,
		},
		{
			Name: n.ResultsStream(), Description: "disputesync action results",
			Subjects: []string{n.ResultsAll()}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: o.Replicas,
			MaxAge: o.ResultsMaxAge, Duplicates: o.ResultsDuplicates,
		},
		{
			Name: n.DLQStream(), Description: "disputesync dead letters",
			Subjects: []string{n.DLQAll()}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: o.Replicas,
			MaxAge: o.DLQMaxAge, Duplicates: 24 * time.Hour,
		},
	}
}

// WorkerConsumerConfig is the durable consumer the workers share.
func (n Names) WorkerConsumerConfig(o Options) jetstream.ConsumerConfig {
	o = o.withDefaults()
	return jetstream.ConsumerConfig{
		Durable:       n.WorkerConsumer(),
		Description:   "disputesync workers",
		FilterSubject: n.ActionsAll(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    o.MaxDeliver,
		MaxAckPending: o.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// ErrIncompatible reports an existing object whose settings cannot be
// updated to what disputesync needs.
var ErrIncompatible = errors.New("exists with incompatible settings")

// Change says what Setup did to one object.
type Change struct {
	Kind   string // "stream", "consumer", "kv", "object store"
	Name   string
	Action string // "created", "updated", "unchanged"
}

// Setup creates or updates every stream, consumer and bucket of a
// deployment. Running it twice changes nothing the second time.
func Setup(ctx context.Context, js jetstream.JetStream, n Names, o Options) ([]Change, error) {
	o = o.withDefaults()
	var changes []Change
	for _, cfg := range n.Streams(o) {
		action, err := ensureStream(ctx, js, cfg)
		if err != nil {
			return changes, err
		}
		changes = append(changes, Change{"stream", cfg.Name, action})
	}
	ccfg := n.WorkerConsumerConfig(o)
	action, err := ensureConsumer(ctx, js, n.ActionsStream(), ccfg)
	if err != nil {
		return changes, err
	}
	changes = append(changes, Change{"consumer", ccfg.Durable, action})

	for _, kv := range []jetstream.KeyValueConfig{
		{Bucket: n.DisputesBucket(), Description: "disputesync dispute snapshots", History: 1, Storage: jetstream.FileStorage, Replicas: o.Replicas},
		{Bucket: n.PollerBucket(), Description: "disputesync poller checkpoints and lease", History: 1, Storage: jetstream.FileStorage, Replicas: o.Replicas},
	} {
		action, err := ensureKV(ctx, js, kv)
		if err != nil {
			return changes, err
		}
		changes = append(changes, Change{"kv", kv.Bucket, action})
	}
	obj := jetstream.ObjectStoreConfig{Bucket: n.EvidenceBucket(), Description: "disputesync evidence attachments", Storage: jetstream.FileStorage, Replicas: o.Replicas, TTL: o.ResultsMaxAge}
	action, err = ensureObjectStore(ctx, js, obj)
	if err != nil {
		return changes, err
	}
	changes = append(changes, Change{"object store", obj.Bucket, action})
	return changes, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (string, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			return "", fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		return "created", nil
	}
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	have := s.CachedInfo().Config
	if have.Retention != cfg.Retention {
		return "", fmt.Errorf("stream %s %w: retention is %s, disputesync needs %s (delete the stream or use another --prefix)",
			cfg.Name, ErrIncompatible, have.Retention, cfg.Retention)
	}
	if streamSame(have, cfg) {
		return "unchanged", nil
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return "", fmt.Errorf("stream %s %w: %w", cfg.Name, ErrIncompatible, err)
	}
	return "updated", nil
}

func streamSame(have, want jetstream.StreamConfig) bool {
	return fmt.Sprint(have.Subjects) == fmt.Sprint(want.Subjects) &&
		have.Storage == want.Storage && have.Replicas == want.Replicas &&
		have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates &&
		have.Description == want.Description
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (string, error) {
	c, err := js.Consumer(ctx, stream, cfg.Durable)
	if err == nil {
		have := c.CachedInfo().Config
		if have.AckWait == cfg.AckWait && have.MaxDeliver == cfg.MaxDeliver &&
			have.MaxAckPending == cfg.MaxAckPending && have.FilterSubject == cfg.FilterSubject &&
			have.Description == cfg.Description {
			return "unchanged", nil
		}
		if _, err := js.UpdateConsumer(ctx, stream, cfg); err != nil {
			return "", fmt.Errorf("consumer %s %w: %w", cfg.Durable, ErrIncompatible, err)
		}
		return "updated", nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return "", fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	if _, err := js.CreateConsumer(ctx, stream, cfg); err != nil {
		return "", fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	return "created", nil
}

func ensureKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (string, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateKeyValue(ctx, cfg); err != nil {
			return "", fmt.Errorf("create kv %s: %w", cfg.Bucket, err)
		}
		return "created", nil
	}
	if err != nil {
		return "", fmt.Errorf("kv %s: %w", cfg.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("kv %s: %w", cfg.Bucket, err)
	}
	if st.History() == int64(cfg.History) {
		return "unchanged", nil
	}
	if _, err := js.UpdateKeyValue(ctx, cfg); err != nil {
		return "", fmt.Errorf("kv %s %w: %w", cfg.Bucket, ErrIncompatible, err)
	}
	return "updated", nil
}

func ensureObjectStore(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (string, error) {
	_, err := js.ObjectStore(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateObjectStore(ctx, cfg); err != nil {
			return "", fmt.Errorf("create object store %s: %w", cfg.Bucket, err)
		}
		return "created", nil
	}
	if err != nil {
		return "", fmt.Errorf("object store %s: %w", cfg.Bucket, err)
	}
	return "unchanged", nil
}
