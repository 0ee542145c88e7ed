package disputeapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

// TestApplyThenLost is the apply-then-lost case for every action: the
// first call is applied but its answer is lost; the retry with Recover
// succeeds without a second effect. The same retry without Recover shows
// what recovery guards against.
func TestApplyThenLost(t *testing.T) {
	t.Parallel()
	const pdf = "JVBERi0xLjQKJcOkw7zDtsOf" // "%PDF-1.4\n%äüöß"
	tests := []struct {
		action, params string
		setup          func(*fakePSP)
		wantCode       string
		wantMsg        string
		// without Recover, the second attempt:
		plainKind    string
		plainEffects int
	}{
		{"abandon", "", nil, MsgDisputeAlreadyClosed, "applied by an earlier attempt: the provider answered 400 DISPUTE_ALREADY_CLOSED", "permanent", 1},
		{"submit_defense", `{"comment":"delivered"}`, nil, MsgDisputeAlreadyDefended, "applied by an earlier attempt: the provider answered 400 DISPUTE_ALREADY_DEFENDED", "permanent", 1},
		{"remove_document", `{"document_id":"doc-9"}`, func(f *fakePSP) {
			f.disputes["D100"].Docs = []fakeDoc{{ID: "doc-9", FileName: "old.pdf"}}
		}, MsgDocumentNotFound, "applied by an earlier attempt: the provider answered 400 DOCUMENT_NOT_FOUND", "permanent", 1},
		{"upload_document", `{"file_name":"proof.pdf","content_type":"pdf","content":"` + pdf + `"}`, nil, "200", "already uploaded by an earlier attempt", "succeeded", 2},
	}
	for _, tt := range tests {
		for _, recover := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s recover=%v", tt.action, recover), func(t *testing.T) {
				t.Parallel()
				f, srv := newFakePSP(t, testToken, "D100")
				if tt.setup != nil {
					tt.setup(f)
				}
				f.dropAfterApply = 1
				c, _ := newTestClient(t, srv.URL, nil)
				h := clientHandler(t, c, tt.action)
				cmd := command("ops-1", "D100", tt.params)
				_, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 1})
				if kind(err) != "retryable" {
					t.Fatalf("first attempt: %s (%v), want retryable", kind(err), err)
				}
				if f.effectCount() != 1 {
					t.Fatalf("the fake did not apply the first attempt")
				}
				resp, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 2, Recover: recover})
				if !recover {
					if kind(err) != tt.plainKind || f.effectCount() != tt.plainEffects {
						t.Fatalf("without Recover: %s (%v), %d effects; want %s, %d", kind(err), err, f.effectCount(), tt.plainKind, tt.plainEffects)
					}
					return
				}
				if err != nil {
					t.Fatalf("recovery attempt: %v", err)
				}
				if resp.Code != tt.wantCode || resp.Message != tt.wantMsg {
					t.Errorf("response %q %q, want %q %q", resp.Code, resp.Message, tt.wantCode, tt.wantMsg)
				}
				if n := f.effectCount(); n != 1 {
					t.Fatalf("effects = %d, want exactly 1", n)
				}
				if tt.action == "upload_document" {
					var body struct {
						Data struct {
							DocumentID string `json:"document_id"`
						} `json:"data"`
					}
					json.Unmarshal(resp.Body, &body)
					if want := f.disputes["D100"].Docs[0].ID; body.Data.DocumentID != want {
						t.Errorf("document_id = %q, want the first attempt's %q", body.Data.DocumentID, want)
					}
				}
			})
		}
	}
}

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

// TestEvidenceUpload: the largest allowed object reaches the provider
// intact (checksum compared at the fake), also through recovery; bad
// references are permanent INVALID_COMMAND, an unavailable store retryable.
func TestEvidenceUpload(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0x7f}, MaxContentBytes/6)
	store := &fakeEvidence{Objects: map[string][]byte{"ev/big": big}}
	ref := fmt.Sprintf(`{"file_name":"big.png","content_type":"png","contentRef":{"name":"ev/big","digest":%q,"size":%d}}`, digestOf(big), len(big))
	tests := []struct {
		name     string
		evidence handlers.Evidence
		params   string
		recover  bool
		lose     bool
		wantKind string
		wantErr  string
	}{
		{"intact", store, ref, false, false, "succeeded", ""},
		{"intact after a lost answer", store, ref, true, true, "succeeded", ""},
		{"missing object", store, `{"file_name":"a.png","content_type":"png","contentRef":{"name":"ev/none"}}`, false, false, "invalid", `params.contentRef: evidence object "ev/none" cannot be read`},
		{"digest mismatch", store, fmt.Sprintf(`{"file_name":"a.png","content_type":"png","contentRef":{"name":"ev/big","digest":%q}}`, digestOf([]byte("x"))), false, false, "invalid", "does not match its digest"},
		{"no store", nil, ref, false, false, "invalid", "no evidence store configured"},
		{"store down", &fakeEvidence{Err: errors.New("nats: no responders")}, ref, true, false, "retryable", `reading evidence object "ev/big"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFakePSP(t, testToken, "D100")
			c, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Evidence = tt.evidence })
			h := clientHandler(t, c, "upload_document")
			cmd := command("ops-1", "D100", tt.params)
			if tt.lose {
				f.dropAfterApply = 1
				if _, err := h.Apply(context.Background(), &handlers.Call{Command: cmd}); kind(err) != "retryable" {
					t.Fatalf("first attempt: %v", err)
				}
			}
			_, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Recover: tt.recover})
			if kind(err) != tt.wantKind {
				t.Fatalf("outcome %s (%v), want %s", kind(err), err, tt.wantKind)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if tt.wantKind == "invalid" && !handlers.IsPermanent(err) {
					t.Errorf("must be permanent: %v", err)
				}
				if n := len(f.requests()); n != 0 {
					t.Errorf("%d requests sent", n)
				}
				return
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			docs := f.disputes["D100"].Docs
			if len(docs) != 1 || sha256.Sum256(docs[0].Content) != sha256.Sum256(big) {
				t.Fatalf("provider holds %d documents; want one equal to the object", len(docs))
			}
		})
	}
}

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
