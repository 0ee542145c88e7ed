package disputeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/sandbox"
)

// TestAgainstSandbox runs every action against the project's sandbox,
// including its apply-then-fail fault, and counts the effects it applied.
func TestAgainstSandbox(t *testing.T) {
	t.Parallel()
	sb := sandbox.New(sandbox.Config{Disputes: 20})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	ids := sb.SampleIDs().DisputeAPI
	if len(ids) < 2 {
		t.Fatalf("the sandbox offers %d open disputes, want 2", len(ids))
	}
	defended, abandoned := ids[0], ids[1]
	evidence := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0, 1, 2, 3}, MaxContentBytes/8)
	newClient := func(token string) *Client {
		c, _ := newTestClient(t, srv.URL, func(cfg *Config) {
			cfg.Token = []byte(token)
			cfg.Evidence = &fakeEvidence{Objects: map[string][]byte{"ev/png": evidence}}
		})
		return c
	}
	c := newClient(sandbox.TestKeys.DisputeAPIToken)
	apply := func(action, reqID, disputeID, params string, recover bool) (*handlers.Response, error) {
		cmd := command(reqID, disputeID, params)
		return clientHandler(t, c, action).Apply(context.Background(), &handlers.Call{Command: cmd, Recover: recover})
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
	documentID := func(resp *handlers.Response) string {
		var b struct {
			Data struct {
				DocumentID string `json:"document_id"`
			} `json:"data"`
		}
		json.Unmarshal(resp.Body, &b)
		return b.Data.DocumentID
	}

	upload := `{"file_name":"receipt.png","content_type":"png","contentRef":{"name":"ev/png","digest":"` + digestOf(evidence) + `"}}`
	sb.SetFaults(sandbox.ProviderDisputeAPI, "documents/upload", sandbox.Faults{ApplyThenFailRate: 1})
	resp, err := apply("upload_document", "u-1", defended, upload, false)
	check("upload, answer lost", resp, err, "retryable", handlers.Code(err))
	sb.ClearFaults()
	resp, err = apply("upload_document", "u-1", defended, upload, true)
	check("upload, recovered", resp, err, "succeeded", "200")
	doc := documentID(resp)

	resp, err = apply("upload_document", "u-2", defended, `{"file_name":"note.pdf","content_type":"pdf","content":"JVBERi0xLjQK"}`, false)
	check("second upload", resp, err, "succeeded", "200")
	note := documentID(resp)
	sb.SetFaults(sandbox.ProviderDisputeAPI, "documents/remove", sandbox.Faults{ApplyThenFailRate: 1})
	resp, err = apply("remove_document", "r-1", defended, `{"document_id":"`+note+`"}`, false)
	check("remove, answer lost", resp, err, "retryable", handlers.Code(err))
	sb.ClearFaults()
	resp, err = apply("remove_document", "r-1", defended, `{"document_id":"`+note+`"}`, true)
	check("remove, recovered", resp, err, "succeeded", MsgDocumentNotFound)

	sb.SetFaults(sandbox.ProviderDisputeAPI, "defend", sandbox.Faults{ApplyThenFailRate: 1})
	resp, err = apply("submit_defense", "d-1", defended, `{"comment":"Delivered; receipt attached."}`, false)
	check("defend, answer lost", resp, err, "retryable", handlers.Code(err))
	sb.ClearFaults()
	resp, err = apply("submit_defense", "d-1", defended, `{"comment":"Delivered; receipt attached."}`, false)
	check("defend again without Recover", resp, err, "permanent", CodeCallerError)
	resp, err = apply("submit_defense", "d-1", defended, `{"comment":"Delivered; receipt attached."}`, true)
	check("defend, recovered", resp, err, "succeeded", MsgDisputeAlreadyDefended)

	sb.SetFaults(sandbox.ProviderDisputeAPI, "abandon", sandbox.Faults{ApplyThenFailRate: 1})
	resp, err = apply("abandon", "a-1", abandoned, "", false)
	check("abandon, answer lost", resp, err, "retryable", handlers.Code(err))
	sb.ClearFaults()
	resp, err = apply("abandon", "a-1", abandoned, "", true)
	check("abandon, recovered", resp, err, "succeeded", MsgDisputeAlreadyClosed)
	resp, err = apply("abandon", "a-2", "NO-SUCH-DISPUTE", "", false)
	check("unknown dispute", resp, err, "permanent", CodeCallerError)

	c = newClient("wrong-token")
	resp, err = apply("abandon", "a-3", abandoned, "", false)
	check("wrong token", resp, err, "permanent", "HTTP_401")

	var ops []string
	for _, id := range []string{defended, abandoned} {
		for _, e := range sb.EffectsFor(sandbox.ProviderDisputeAPI, "", id) {
			ops = append(ops, e.Operation+":"+e.DisputeRequestID)
		}
	}
	want := "[documents/upload:u-1 documents/upload:u-2 documents/remove:r-1 defend:d-1 abandon:a-1]"
	if fmt.Sprint(ops) != want {
		t.Fatalf("effects %v, want %s", ops, want)
	}
	for _, e := range sb.EffectsFor(sandbox.ProviderDisputeAPI, "u-1", defended) {
		if e.Detail["document_id"] != doc || e.Detail["sha256"] != fmt.Sprintf("%x", sha256Sum(evidence)) {
			t.Fatalf("upload effect %v: want document %s with the evidence's SHA-256", e.Detail, doc)
		}
	}
}
