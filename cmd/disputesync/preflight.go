package main

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/webhook"
)

// preflight checks what "run" and "dev" can check without a server: the
// credential files, the provider clients they build, and which roles can
// run with them. It runs before NATS or Redis is contacted, so a
// configuration error leaves no stream, bucket or key behind. It may drop
// the webhook role from c.Roles (see below).
func preflight(c *config, log *slog.Logger) (*credentials, error) {
	cr, err := loadCredentials(c, log)
	if err != nil {
		return nil, err
	}
	if slices.Contains(c.Roles, "worker") {
		// The clients check their base URLs and keys here; the worker
		// builds them again with Redis and the evidence store.
		names, err := topology.New(c.Prefix)
		if err != nil {
			return nil, fmt.Errorf("%w: --prefix: %w", errUsage, err)
		}
		if _, err := providerMux(c, cr, nil, names, nil, nil, log); err != nil {
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	if slices.Contains(c.Roles, "webhook") {
		var served, unserved []string
		for _, p := range []string{webhook.ProviderAlipay, webhook.ProviderAlipayPlus, webhook.ProviderDisputeAPI} {
			if webhookEndpoints(c, cr)[p] {
				served = append(served, p)
			} else {
				unserved = append(unserved, p)
			}
		}
		if len(unserved) > 0 {
			log.Info("webhook endpoints without credentials are not served", "providers", unserved)
		}
		if len(served) == 0 {
			const how = "give --alipay-client-id with its key files, --alipayplus-client-id with its key files, or --disputeapi-webhook-secret-file"
			// A role asked for by name must run or the process must not;
			// the default set runs what it can.
			if c.rolesGiven {
				return nil, fmt.Errorf("%w: --roles names webhook, but no notification endpoint has credentials: %s", errUsage, how)
			}
			c.Roles = slices.DeleteFunc(slices.Clone(c.Roles), func(r string) bool { return r == "webhook" })
			log.Warn("webhook role not started: no notification endpoint has credentials; "+how, "roles", c.Roles)
		}
	}
	return cr, nil
}

// webhookEndpoints says, per provider, whether its notification endpoint
// has credentials. The sandbox's published test keys count only under dev:
// a production process must never accept what anyone holding them can sign.
func webhookEndpoints(c *config, cr *credentials) map[string]bool {
	return map[string]bool{
		webhook.ProviderAlipay:     cr.alipayOK && (!cr.alipayTest || c.dev),
		webhook.ProviderAlipayPlus: cr.alipayPlusOK && (!cr.alipayPlusTest || c.dev),
		webhook.ProviderDisputeAPI: len(cr.webhookSecret) > 0,
	}
}
