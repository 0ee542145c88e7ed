package main

import (
	"context"
	"fmt"

	"github.com/disputesync/disputesync/internal/topology"
)

func setupCmd() *subcommand {
	return &subcommand{
		name:     "setup",
		synopsis: "setup [flags]",
		summary:  "create or update the streams, consumer and buckets (idempotent)",
		detail: `Creates the four streams of the contract (<PREFIX>_EVENTS, _ACTIONS, _RESULTS,
_DLQ), the workers' durable consumer, the snapshot and poller KV buckets and
the evidence object store, or updates them to these settings. Running it twice
changes nothing. An existing object whose settings cannot be changed (e.g. an
actions stream that is not a work queue) is reported and nothing is deleted.
"run" and "dev" do the same at start.`,
		flags: func(o *options, c *config) {
			o.connectionFlags(c)
			o.topologyFlags(c)
			o.logFlags(c)
		},
		run: func(ctx context.Context, e env, c *config, _ *options, _ []string) error {
			log := newLogger(c, e)
			nc, js, err := connectNATS(c, log, "disputesync-setup")
			if err != nil {
				return err
			}
			defer nc.Close()
			if err := checkServers(ctx, nc, nil, log); err != nil {
				return err
			}
			names, _ := topology.New(c.Prefix)
			changes, err := topology.Setup(ctx, js, names, topologyOptions(c))
			for _, ch := range changes {
				fmt.Fprintf(e.stdout, "%-12s %-28s %s\n", ch.Kind, ch.Name, ch.Action)
			}
			return err
		},
	}
}

func topologyOptions(c *config) topology.Options {
	return topology.Options{
		Replicas: c.Replicas, ResultsMaxAge: c.Retention, AckWait: c.AckWait,
		MaxDeliver: c.MaxDeliver, MaxAckPending: c.MaxAckPending,
	}
}
