package main

import (
	"context"
	"fmt"
)

func runCmd() *subcommand {
	var printConfig bool
	return &subcommand{
		name:     "run",
		synopsis: "run [flags]",
		summary:  "production: poller, worker and webhook against external NATS and Redis",
		detail: `Runs the roles given by --roles (default all three) against the NATS and
Redis of the flags, after creating or updating the streams (as "setup" does).
Serves /metrics, /healthz and /readyz on --metrics-addr. SIGINT or SIGTERM
stops fetching, gives in-flight commands a few seconds to finish and releases
the rest for redelivery.

Provider credentials come from files. A provider whose base URL is on this
machine (a sandbox) uses the sandbox's published test keys when none are
given; any other provider without credentials is not configured and its
commands are rejected with PROVIDER_NOT_CONFIGURED. A notification endpoint
is served only with its credentials (never the test keys); with none at all
the webhook role is left out with a warning, or, when --roles names it,
run refuses to start. All configuration, credential files included, is
checked before NATS or Redis is contacted.`,
		flags: func(o *options, c *config) {
			o.boolean(&printConfig, "print-config", "print the effective configuration (secrets redacted) and exit")
			o.list(&c.Roles, "roles", "poller,worker,webhook", "roles this process runs: poller, worker, webhook")
			o.connectionFlags(c)
			o.endpointFlags(c)
			o.providerFlags(c)
			o.pollerFlags(c)
			o.workerFlags(c)
			o.topologyFlags(c)
			o.logFlags(c)
		},
		run: func(ctx context.Context, e env, c *config, o *options, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected arguments %q", errUsage, args)
			}
			if printConfig {
				o.dump(e.stdout)
				return nil
			}
			c.rolesGiven = o.given("roles")
			log := newLogger(c, e)
			_, wait, err := startSystem(ctx, c, log)
			if err != nil {
				return err
			}
			return wait()
		},
	}
}
