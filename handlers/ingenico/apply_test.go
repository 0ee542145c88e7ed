package ingenico

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
	"github.com/disputesync/disputesync/sandbox"
)

// An evidence store whose reads can fail, and the digest of a reference.
type fakeEvidence = testsupport.FakeEvidence

var digestOf = testsupport.Digest

// TestNoSecretInLogsOrErrors runs success, refusal, an unknown dispute and
// a wrong key against the sandbox with debug logging, and greps logs and
// errors for the secret API key.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	t.Parallel()
	keys := sandbox.TestKeys
	sb := sandbox.New(sandbox.Config{Disputes: -1})
	url := handlerstest.Serve(t, sb)
	client := func(secret string) (*Client, *logBuffer) {
		return newTestClient(t, url, func(cfg *Config) {
			cfg.MerchantID, cfg.APIKeyID, cfg.SecretAPIKey = keys.IngenicoMerchantID, keys.IngenicoAPIKeyID, []byte(secret)
		})
	}
	c, logs := client(keys.IngenicoSecretAPIKey)
	bad, badLogs := client(keys.IngenicoSecretAPIKey + "-wrong")
	d := sb.CreateIngenicoDispute(sandbox.IngenicoDispute{})
	var errs []error
	for _, call := range []struct {
		c      *Client
		action string
		id     string
	}{{c, "submit_dispute", d.ID}, {c, "submit_dispute", d.ID}, {c, "cancel_dispute", "404"}, {bad, "cancel_dispute", d.ID}} {
		cmd := command(call.id, "")
		cmd.DisputeRequestID = fmt.Sprintf("req-%d", len(errs))
		_, err := handler(t, call.c, call.action).Apply(context.Background(), &handlers.Call{Command: cmd})
		errs = append(errs, err)
	}
	if errs[0] != nil || kind(errs[1]) != "permanent" || kind(errs[2]) != "permanent" {
		t.Fatalf("outcomes %v, want success then two refusals", errs)
	}
	if handlers.Code(errs[3]) != "MISSING_OR_INVALID_AUTHORIZATION" {
		t.Fatalf("a wrong secret must be refused, got %v", errs[3])
	}
	all := logs.String() + badLogs.String()
	for _, err := range errs {
		if err != nil {
			all += err.Error()
		}
	}
	if !strings.Contains(all, "provider call") {
		t.Fatalf("expected log lines, got %q", all)
	}
	if strings.Contains(all, keys.IngenicoSecretAPIKey) {
		t.Fatal("the secret API key appears in logs or errors")
	}
}
