package topology_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testenv.Context(t)
	first, err := topology.Setup(ctx, env.JS, env.Names, topology.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range first {
		if c.Action != "created" {
			t.Errorf("first setup: %s %s %s, want created", c.Kind, c.Name, c.Action)
		}
	}
	second, err := topology.Setup(ctx, env.JS, env.Names, topology.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != len(first) {
		t.Fatalf("second setup reported %d objects, first %d", len(second), len(first))
	}
	for _, c := range second {
		if c.Action != "unchanged" {
			t.Errorf("second setup: %s %s %s, want unchanged", c.Kind, c.Name, c.Action)
		}
	}
	// A changed setting is applied as an update.
	third, err := topology.Setup(ctx, env.JS, env.Names, topology.Options{MaxAckPending: 7})
	if err != nil {
		t.Fatal(err)
	}
	var updated int
	for _, c := range third {
		if c.Action == "updated" {
			updated++
		}
	}
	if updated != 1 {
		t.Fatalf("changing MaxAckPending updated %d objects, want 1: %+v", updated, third)
	}
}

func TestSetupReportsIncompatibleStream(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testenv.Context(t)
	// An actions stream with limits retention cannot become a work queue.
	_, err := env.JS.CreateStream(ctx, jetstream.StreamConfig{
		Name: env.Names.ActionsStream(), Subjects: []string{env.Names.ActionsAll()},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = topology.Setup(ctx, env.JS, env.Names, topology.Options{})
	if !errors.Is(err, topology.ErrIncompatible) {
		t.Fatalf("setup over an incompatible stream: err = %v, want ErrIncompatible", err)
	}
}

// Two deployments with different prefixes on one NATS and one Redis see
// neither each other's messages nor each other's keys.
func TestPrefixesIsolate(t *testing.T) {
	t.Parallel()
	a, b := testenv.New(t), testenv.New(t)
	a.Setup(t, topology.Options{})
	b.Setup(t, topology.Options{})
	ctx, cancel := context.WithTimeout(testenv.Context(t), 20*time.Second)
	defer cancel()

	if _, err := a.JS.Publish(ctx, a.Names.ActionSubject("alipay", "accept_dispute"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.JS.Publish(ctx, a.Names.EventSubject("disputeapi", "dispute.opened"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	a.Redis.Set(ctx, a.Names.RedisKey("idem", "x"), "1", time.Minute)

	for _, stream := range []string{b.Names.ActionsStream(), b.Names.EventsStream()} {
		s, err := b.JS.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 0 {
			t.Errorf("%s holds %d messages published under another prefix", stream, info.State.Msgs)
		}
	}
	for _, stream := range []string{a.Names.ActionsStream(), a.Names.EventsStream()} {
		s, _ := a.JS.Stream(ctx, stream)
		info, _ := s.Info(ctx)
		if info.State.Msgs != 1 {
			t.Errorf("%s holds %d messages, want 1", stream, info.State.Msgs)
		}
	}
	keys, err := b.Redis.Keys(ctx, b.Names.RedisPattern()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("prefix %s sees keys %v", b.Prefix, keys)
	}
}
