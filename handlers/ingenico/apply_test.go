package ingenico

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

// TestRecoverResendsSameKey is the apply-then-lost case: the first submit
// is applied but its answer never arrives; the retry with Recover sends the
// same X-GCS-Idempotence-Key and gets the first outcome, with one effect.
func TestRecoverResendsSameKey(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"submit_dispute", "upload_file"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			f, srv := newFakeIngenico(t, map[string]string{"162": "DRAFT"})
			f.dropAfterApply = 1
			c, _ := newTestClient(t, srv.URL, nil)
			params := ""
			if action == "upload_file" {
				params = `{"fileName":"a.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`
			}
			cmd := command("162", params)
			h := handler(t, c, action)
			_, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 1})
			if kind(err) != "retryable" {
				t.Fatalf("first attempt: %s (%v), want retryable", kind(err), err)
			}
			resp, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 2, Recover: true})
			if err != nil {
				t.Fatalf("recovery attempt: %v", err)
			}
			if action == "submit_dispute" && resp.Code != "CREATED" {
				t.Errorf("code = %q, want CREATED", resp.Code)
			}
			if n := f.effectCount(); n != 1 {
				t.Fatalf("effects = %d, want exactly 1", n)
			}
			reqs := f.requests()
			if len(reqs) != 2 {
				t.Fatalf("requests = %d, want 2", len(reqs))
			}
			for i, r := range reqs {
				if r.Header.Get("X-GCS-Idempotence-Key") != "req-1" || !r.SignatureOK {
					t.Errorf("request %d: key %q, signature ok %v", i, r.Header.Get("X-GCS-Idempotence-Key"), r.SignatureOK)
				}
			}
		})
	}
}

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

// TestEvidenceReferences: a referenced object reaches the provider intact;
// a reference that cannot be satisfied is a permanent INVALID_COMMAND; a
// store that is merely unavailable is retryable.
func TestEvidenceReferences(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("%PDF-1.4 evidence "), MaxContentBytes/18)
	store := &fakeEvidence{Objects: map[string][]byte{"ev/big": big, "ev/small": []byte("hello")}}
	ref := func(name, digest string, size int) string {
		return fmt.Sprintf(`{"fileName":"e.pdf","fileType":"application/pdf","contentRef":{"name":%q,"digest":%q,"size":%d}}`, name, digest, size)
	}
	tests := []struct {
		name     string
		evidence handlers.Evidence
		params   string
		wantKind string
		wantErr  string
	}{
		{"large object intact", store, ref("ev/big", digestOf(big), len(big)), "succeeded", ""},
		{"no digest or size", store, `{"fileName":"e.pdf","fileType":"application/pdf","contentRef":{"name":"ev/small"}}`, "succeeded", ""},
		{"missing object", store, ref("ev/none", digestOf(big), 5), "invalid", `params.contentRef: evidence object "ev/none" cannot be read`},
		{"digest mismatch", store, ref("ev/small", digestOf(big), 5), "invalid", `params.contentRef: evidence object "ev/small" does not match its digest`},
		{"size mismatch", store, ref("ev/small", digestOf([]byte("hello")), 6), "invalid", `params.contentRef: evidence object "ev/small" has 5 bytes, the reference says 6`},
		{"no evidence store", nil, ref("ev/small", digestOf([]byte("hello")), 5), "invalid", "params.contentRef: evidence references are not available"},
		{"store down", &fakeEvidence{Err: errors.New("nats: timeout")}, ref("ev/small", digestOf([]byte("hello")), 5), "retryable", `ingenico upload_file: reading evidence object "ev/small"`},
		{"store says invalid", &fakeEvidence{Err: handlers.Invalid("params.contentRef", "expired")}, ref("ev/small", digestOf([]byte("hello")), 5), "invalid", "params.contentRef: expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFakeIngenico(t, map[string]string{"162": "DRAFT"})
			c, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Evidence = tt.evidence })
			_, err := handler(t, c, "upload_file").Apply(context.Background(), &handlers.Call{Command: command("162", tt.params)})
			if kind(err) != tt.wantKind {
				t.Fatalf("outcome %s (%v), want %s", kind(err), err, tt.wantKind)
			}
			if tt.wantKind == "invalid" && !handlers.IsPermanent(err) {
				t.Errorf("an unsatisfiable reference must be permanent: %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if err != nil {
				if n := len(f.requests()); n != 0 {
					t.Fatalf("%d requests sent", n)
				}
				return
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			files := f.disputes["162"].Files
			if len(files) != 1 {
				t.Fatalf("files = %d, want 1", len(files))
			}
			want := store.Objects[strings.Split(strings.Split(tt.params, `"name":"`)[1], `"`)[0]]
			if sha256.Sum256(files[0].Content) != sha256.Sum256(want) {
				t.Fatalf("the provider received %d bytes that do not match the object's %d", len(files[0].Content), len(want))
			}
		})
	}
}

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
