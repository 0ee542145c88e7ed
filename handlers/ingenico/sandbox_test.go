package ingenico

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/sandbox"
)

// TestAgainstSandbox runs every action against the project's sandbox with
// its published test keys, including faults the sandbox injects.
func TestAgainstSandbox(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{Disputes: -1})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	keys := sandbox.TestKeys
	evidence := bytes.Repeat([]byte("%PDF-1.4 sandbox evidence\n"), MaxContentBytes/26)
	newClient := func(secret string) *Client {
		c, _ := newTestClient(t, srv.URL, func(cfg *Config) {
			cfg.MerchantID, cfg.APIKeyID, cfg.SecretAPIKey = keys.IngenicoMerchantID, keys.IngenicoAPIKeyID, []byte(secret)
			cfg.Evidence = &fakeEvidence{Objects: map[string][]byte{"ev/1": evidence}}
		})
		return c
	}
	c := newClient(keys.IngenicoSecretAPIKey)
	d := sb.CreateIngenicoDispute(sandbox.IngenicoDispute{})
	apply := func(action, reqID, disputeID, params string, recover bool) (*handlers.Response, error) {
		cmd := &handlers.Command{DisputeRequestID: reqID, DisputeID: disputeID}
		if params != "" {
			cmd.Params = []byte(params)
		}
		return handler(t, c, action).Apply(context.Background(), &handlers.Call{Command: cmd, Recover: recover})
	}
	check := func(step string, resp *handlers.Response, err error, wantKind, wantCode string) {
		t.Helper()
		code := handlers.Code(err)
		if err == nil {
			code = resp.Code
		}
		if kind(err) != wantKind || code != wantCode {
			t.Fatalf("%s: %s %q (%v), want %s %q", step, kind(err), code, err, wantKind, wantCode)
		}
	}

	resp, err := apply("upload_file", "sb-1", d.ID, `{"fileName":"evidence.pdf","fileType":"application/pdf","contentRef":{"name":"ev/1","digest":"`+digestOf(evidence)+`"}}`, false)
	check("upload", resp, err, "succeeded", "HTTP_200")

	// Apply then fail: the sandbox applies the submit and answers an error;
	// the recovery resend with the same key must not submit twice.
	sb.SetFaults(sandbox.ProviderIngenico, "submit", sandbox.Faults{ApplyThenFailRate: 1})
	resp, err = apply("submit_dispute", "sb-2", d.ID, "", false)
	check("submit, answer lost", resp, err, "retryable", handlers.Code(err))
	sb.ClearFaults()
	resp, err = apply("submit_dispute", "sb-2", d.ID, "", true)
	check("submit, recovered", resp, err, "succeeded", "CREATED")
	resp, err = apply("submit_dispute", "sb-3", d.ID, "", false)
	check("second submit", resp, err, "permanent", "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION")

	sb.SetFaults(sandbox.ProviderIngenico, "cancel", sandbox.Faults{ThrottleRate: 1})
	resp, err = apply("cancel_dispute", "sb-4", d.ID, "", false)
	check("cancel throttled", resp, err, "retry_after", "TOO_MANY_REQUESTS")
	sb.ClearFaults()
	resp, err = apply("cancel_dispute", "sb-5", d.ID, "", false)
	check("cancel", resp, err, "succeeded", "CANCELLED")
	resp, err = apply("cancel_dispute", "sb-6", "no-such-dispute", "", false)
	check("unknown dispute", resp, err, "permanent", "UNKNOWN_DISPUTE_ID")

	c = newClient(keys.IngenicoSecretAPIKey + "x")
	resp, err = apply("cancel_dispute", "sb-7", d.ID, "", false)
	check("wrong secret", resp, err, "permanent", "MISSING_OR_INVALID_AUTHORIZATION")

	got, _ := sb.IngenicoDisputeByID(d.ID)
	if got.Status != sandbox.IngenicoCancelled || len(got.Files) != 1 {
		t.Fatalf("sandbox dispute: status %s, %d files", got.Status, len(got.Files))
	}
	sum := sha256.Sum256(evidence)
	if got.Files[0].SHA256 != hex.EncodeToString(sum[:]) || got.Files[0].FileSize != int64(len(evidence)) {
		t.Fatalf("the sandbox holds a file of %d bytes that does not match the %d-byte evidence", got.Files[0].FileSize, len(evidence))
	}
	var ops []string
	for _, e := range sb.EffectsFor(sandbox.ProviderIngenico, "", d.ID) {
		ops = append(ops, e.Operation+":"+e.IdempotencyKey)
	}
	if want := "[files:sb-1 submit:sb-2 cancel:sb-5]"; fmt.Sprint(ops) != want {
		t.Fatalf("effects %v, want %s", ops, want)
	}
}
