package main

import (
	"context"
)

// startWebhook starts the notification receiver (wired when the webhook
// package lands).
func startWebhook(_ context.Context, s *system, _ *credentials) (string, func(context.Context) error, error) {
	s.log.Warn("the webhook role is not available in this build yet")
	return "", func(ctx context.Context) error { <-ctx.Done(); return nil }, nil
}
