package ingenico

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

// TestDisputeLifecycle runs the documented state rules of the fake.
func TestDisputeLifecycle(t *testing.T) {
	t.Parallel()
	f, srv := newFakeIngenico(t, map[string]string{"162": "DRAFT"})
	c, _ := newTestClient(t, srv.URL, nil)
	steps := []struct {
		action, reqID, disputeID, params string
		wantKind, wantCode               string
	}{
		{"upload_file", "r1", "162", `{"fileName":"a.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`, "succeeded", "HTTP_201"},
		{"submit_dispute", "r2", "162", "", "succeeded", "CREATED"},
		{"submit_dispute", "r3", "162", "", "permanent", "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION"},
		{"submit_dispute", "r2", "162", "", "succeeded", "CREATED"}, // a replay of r2's answer
		{"cancel_dispute", "r4", "162", "", "succeeded", "CANCELLED"},
		{"cancel_dispute", "r5", "162", "", "permanent", "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION"},
		{"submit_dispute", "r6", "999", "", "permanent", "DISPUTE_NOT_FOUND"},
	}
	for i, s := range steps {
		cmd := &handlers.Command{DisputeRequestID: s.reqID, DisputeID: s.disputeID}
		if s.params != "" {
			cmd.Params = []byte(s.params)
		}
		resp, err := handler(t, c, s.action).Apply(context.Background(), &handlers.Call{Command: cmd})
		code := handlers.Code(err)
		if err == nil {
			code = resp.Code
		}
		if kind(err) != s.wantKind || code != s.wantCode {
			t.Fatalf("step %d %s: %s %q (%v), want %s %q", i, s.action, kind(err), code, err, s.wantKind, s.wantCode)
		}
	}
	if n := f.effectCount(); n != 3 {
		t.Fatalf("effects = %d, want 3 (upload, submit, cancel)", n)
	}
}

// An evidence store whose reads can fail, and the digest of a reference.
type fakeEvidence = testsupport.FakeEvidence

var digestOf = testsupport.Digest

// TestNoSecretInLogsOrErrors runs every kind of answer with debug logging
// and greps logs and errors for the secret API key.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	t.Parallel()
	f, srv := newFakeIngenico(t, map[string]string{"162": "DRAFT"})
	c, logs := newTestClient(t, srv.URL, nil)
	bad, badLogs := newTestClient(t, srv.URL, func(cfg *Config) { cfg.SecretAPIKey = []byte(testSecret + "-wrong") })
	var errs []error
	for _, call := range []struct {
		c      *Client
		action string
		id     string
	}{{c, "submit_dispute", "162"}, {c, "submit_dispute", "162"}, {c, "cancel_dispute", "404"}, {bad, "cancel_dispute", "162"}} {
		cmd := command(call.id, "")
		cmd.DisputeRequestID = fmt.Sprintf("req-%d", len(errs))
		_, err := handler(t, call.c, call.action).Apply(context.Background(), &handlers.Call{Command: cmd})
		errs = append(errs, err)
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
	if strings.Contains(all, testSecret) {
		t.Fatal("the secret API key appears in logs or errors")
	}
	_ = f
}
