package main

import (
	"context"
	"fmt"
	"net"

	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/poller"
	"github.com/disputesync/disputesync/webhook"
)

// startWebhook starts the notification receiver on --webhook-addr. It shares
// the poller's change detector when this process polls too, so a pushed and
// a polled change follow one once-per-state rule.
func startWebhook(s *system, cr *credentials, det *poller.Detector) (string, func(context.Context) error, error) {
	cfg := webhook.Config{
		Addr: s.cfg.WebhookAddr, JS: s.js, Names: s.names,
		Ledger: alipayplus.NewRedisLedger(s.rdb, s.names), Redis: s.rdb,
		DisputeAPISecret: cr.webhookSecret, Metrics: s.m, Logger: s.log.With("component", "webhook"),
	}
	if det != nil {
		cfg.Detector = det
	}
	// An endpoint without its credentials is not served; test keys verify
	// notifications only in dev (see webhookEndpoints).
	served := webhookEndpoints(s.cfg, cr)
	if served[webhook.ProviderAlipay] {
		cfg.AlipayClientID, cfg.AlipayPublicKey = cr.alipayID, cr.alipayPub
	}
	if served[webhook.ProviderAlipayPlus] {
		cfg.AlipayPlusClientID, cfg.AlipayPlusPublicKey, cfg.AlipayPlusPrivateKey = cr.alipayPlusID, cr.alipayPlusPub, cr.alipayPlusKey
	}
	srv, err := webhook.New(cfg)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", s.cfg.WebhookAddr)
	if err != nil {
		return "", nil, fmt.Errorf("webhook: listen on %s: %w", s.cfg.WebhookAddr, err)
	}
	return ln.Addr().String(), func(ctx context.Context) error { return srv.Serve(ctx, ln) }, nil
}
