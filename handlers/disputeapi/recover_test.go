package disputeapi

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

// TestUploadRecoveryPaths covers the other answers of the reconciliation
// read: nothing uploaded yet, a different file under the same name, and a
// provider that cannot be read (never upload blind).
func TestUploadRecoveryPaths(t *testing.T) {
	t.Parallel()
	params := `{"file_name":"proof.pdf","content_type":"pdf","content":"JVBERi0xLjQK"}`
	tests := []struct {
		name        string
		setup       func(*fakePSP)
		wantKind    string
		wantEffects int
		wantPaths   []string
	}{
		{"earlier attempt never landed", func(f *fakePSP) {}, "succeeded", 1, []string{pathRequiredDocuments, pathUpload}},
		{"same name, other content", func(f *fakePSP) {
			f.disputes["D100"].Docs = []fakeDoc{{ID: "doc-0", FileName: "proof.pdf", SHA256: strings.Repeat("ab", 32)}}
		}, "succeeded", 1, []string{pathRequiredDocuments, pathUpload}},
		{"required-documents unavailable", func(f *fakePSP) { f.failBefore = 1 }, "retryable", 0, []string{pathRequiredDocuments}},
		{"dispute unknown", func(f *fakePSP) { delete(f.disputes, "D100") }, "permanent", 0, []string{pathRequiredDocuments}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFakePSP(t, testToken, "D100")
			tt.setup(f)
			c, _ := newTestClient(t, srv.URL, nil)
			_, err := clientHandler(t, c, "upload_document").Apply(context.Background(),
				&handlers.Call{Command: command("ops-1", "D100", params), Attempt: 2, Recover: true})
			if kind(err) != tt.wantKind {
				t.Fatalf("outcome %s (%v), want %s", kind(err), err, tt.wantKind)
			}
			if n := f.effectCount(); n != tt.wantEffects {
				t.Errorf("effects = %d, want %d", n, tt.wantEffects)
			}
			var paths []string
			for _, r := range f.requests() {
				paths = append(paths, r.Path)
			}
			if strings.Join(paths, " ") != strings.Join(tt.wantPaths, " ") {
				t.Errorf("calls %v, want %v", paths, tt.wantPaths)
			}
		})
	}
}

// An evidence store whose reads can fail, and the digest of a reference.
type fakeEvidence = testsupport.FakeEvidence

var digestOf = testsupport.Digest

// TestNoTokenInLogsOrErrors runs success, refusal, recovery and an
// authentication failure with debug logs, and greps for the token.
func TestNoTokenInLogsOrErrors(t *testing.T) {
	t.Parallel()
	f, srv := newFakePSP(t, testToken, "D100")
	c, logs := newTestClient(t, srv.URL, nil)
	wrong, wrongLogs := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Token = []byte(testToken + "-wrong") })
	f.dropAfterApply = 1
	var errs []error
	for i, step := range []struct {
		c       *Client
		action  string
		recover bool
	}{{c, "abandon", false}, {c, "abandon", true}, {c, "abandon", false}, {wrong, "abandon", false}} {
		_, err := clientHandler(t, step.c, step.action).Apply(context.Background(),
			&handlers.Call{Command: command(fmt.Sprintf("r%d", i), "D100", ""), Recover: step.recover})
		errs = append(errs, err)
	}
	if handlers.Code(errs[3]) != "HTTP_401" || !handlers.IsPermanent(errs[3]) {
		t.Fatalf("a wrong token must fail permanently with HTTP_401, got %v", errs[3])
	}
	all := logs.String() + wrongLogs.String()
	for _, err := range errs {
		if err != nil {
			all += err.Error()
		}
	}
	if !strings.Contains(all, "earlier attempt proven") {
		t.Fatalf("expected the recovery log line, got %s", all)
	}
	if strings.Contains(all, testToken) {
		t.Fatal("the bearer token appears in logs or errors")
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
