package disputeapi

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
	"github.com/disputesync/disputesync/sandbox"
)

// TestUploadRecoveryPaths: a recovered upload first reads the dispute's
// documents; it uploads only when no document of the same name and content
// is there, against the sandbox.
func TestUploadRecoveryPaths(t *testing.T) {
	t.Parallel()
	params := `{"file_name":"proof.pdf","content_type":"pdf","content":"JVBERi0xLjQK"}`
	tests := []struct {
		name        string
		setup       func(t *testing.T, sb *sandbox.Server, c *Client, id string) string // returns the dispute id
		wantKind    string
		wantEffects int
		wantCalls   string
	}{
		{"earlier attempt never landed", func(t *testing.T, sb *sandbox.Server, c *Client, id string) string { return id },
			"succeeded", 1, "map[disputeapi.documents/upload:1 disputeapi.required-documents:1]"},
		{"same name, other content", func(t *testing.T, sb *sandbox.Server, c *Client, id string) string {
			other := command("ops-0", id, `{"file_name":"proof.pdf","content_type":"pdf","content":"QUJD"}`)
			if _, err := clientHandler(t, c, "upload_document").Apply(context.Background(), &handlers.Call{Command: other}); err != nil {
				t.Fatal(err)
			}
			return id
		}, "succeeded", 1, "map[disputeapi.documents/upload:2 disputeapi.required-documents:1]"},
		{"required-documents unavailable", func(t *testing.T, sb *sandbox.Server, c *Client, id string) string {
			sb.SetFaults(sandbox.ProviderDisputeAPI, "required-documents", sandbox.Faults{UnavailableRate: 1})
			return id
		}, "retryable", 0, "map[disputeapi.required-documents:1]"},
		{"dispute unknown", func(t *testing.T, sb *sandbox.Server, c *Client, id string) string { return "NO-SUCH-DISPUTE" },
			"permanent", 0, "map[disputeapi.required-documents:1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := sandbox.New(sandbox.Config{Disputes: 5})
			c, _ := newTestClient(t, handlerstest.Serve(t, sb), func(cfg *Config) { cfg.Token = []byte(sandbox.TestKeys.DisputeAPIToken) })
			id := tt.setup(t, sb, c, sb.SampleIDs().DisputeAPI[0])
			_, err := clientHandler(t, c, "upload_document").Apply(context.Background(),
				&handlers.Call{Command: command("ops-1", id, params), Attempt: 2, Recover: true})
			if kind(err) != tt.wantKind {
				t.Fatalf("outcome %s (%v), want %s", kind(err), err, tt.wantKind)
			}
			if n := len(sb.EffectsFor(sandbox.ProviderDisputeAPI, "ops-1", "")); n != tt.wantEffects {
				t.Errorf("effects = %d, want %d", n, tt.wantEffects)
			}
			if got := fmt.Sprint(sb.Requests()); got != tt.wantCalls {
				t.Errorf("calls %s, want %s", got, tt.wantCalls)
			}
		})
	}
}

// An evidence store whose reads can fail, and the digest of a reference.
type fakeEvidence = testsupport.FakeEvidence

var digestOf = testsupport.Digest

// TestNoTokenInLogsOrErrors runs success, refusal, recovery and an
// authentication failure against the sandbox with debug logs, and greps
// for the token.
func TestNoTokenInLogsOrErrors(t *testing.T) {
	t.Parallel()
	token := sandbox.TestKeys.DisputeAPIToken
	sb := sandbox.New(sandbox.Config{Disputes: 5})
	url := handlerstest.Serve(t, sb)
	c, logs := newTestClient(t, url, func(cfg *Config) { cfg.Token = []byte(token) })
	wrong, wrongLogs := newTestClient(t, url, func(cfg *Config) { cfg.Token = []byte(token + "-wrong") })
	id := sb.SampleIDs().DisputeAPI[0]
	sb.SetFaults(sandbox.ProviderDisputeAPI, "abandon", sandbox.Faults{ApplyThenFailRate: 1})
	var errs []error
	for i, step := range []struct {
		c       *Client
		recover bool
	}{{c, false}, {c, true}, {c, false}, {wrong, false}} {
		_, err := clientHandler(t, step.c, "abandon").Apply(context.Background(),
			&handlers.Call{Command: command(fmt.Sprintf("r%d", i), id, ""), Recover: step.recover})
		errs = append(errs, err)
		sb.ClearFaults()
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
	if strings.Contains(all, token) {
		t.Fatal("the bearer token appears in logs or errors")
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
