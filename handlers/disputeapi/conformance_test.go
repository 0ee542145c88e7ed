package disputeapi

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/sandbox"
)

// TestConformance runs the providers' conformance suite against the
// project's sandbox. The Dispute API has no idempotency key: recovery
// takes its "already done" answers as proof.
func TestConformance(t *testing.T) {
	t.Parallel()
	const up = `"file_name":"a.pdf","content_type":"pdf"`
	params := map[string]string{
		handlers.ActionAbandon:        "",
		handlers.ActionUploadDocument: `{"file_name":"a.pdf","content_type":"pdf","content":"JVBERi0xLjQK"}`,
		handlers.ActionRemoveDocument: `{"document_id":"doc-1"}`,
		handlers.ActionSubmitDefense:  `{"comment":"delivered"}`,
	}
	handlerstest.Run(t, handlerstest.Provider{
		Name:  Provider,
		Start: startSandbox(params),
		New: func(t *testing.T, baseURL string, ev handlers.Evidence, wrongKey bool) *handlers.Mux {
			token := sandbox.TestKeys.DisputeAPIToken
			if wrongKey {
				token += "x"
			}
			c, _ := newTestClient(t, baseURL, func(cfg *Config) {
				cfg.Token = []byte(token)
				cfg.Evidence = ev
			})
			mux := handlers.NewMux()
			c.Register(mux)
			return mux
		},
		Validators: Validators,
		Invalid: []handlerstest.Invalid{
			{Name: "no disputeRequestId", Action: "abandon", Cmd: command("", "D1", ""), Want: "disputeRequestId: is required"},
			{Name: "long disputeRequestId", Action: "abandon", Cmd: command(strings.Repeat("r", 65), "D1", ""), Want: "disputeRequestId: must be at most 64 characters (has 65)"},
			{Name: "no disputeId", Action: "abandon", Cmd: command("r", "", ""), Want: "disputeId: is required"},
			{Name: "long disputeId", Action: "submit_defense", Cmd: command("r", strings.Repeat("9", 65), `{"comment":"x"}`), Want: "disputeId: must be at most 64 characters (has 65)"},
			{Name: "control character in disputeId", Action: "abandon", Cmd: command("r", "D\x001", ""), Want: "disputeId: must not contain control characters"},
			{Name: "abandon with a param", Action: "abandon", Cmd: command("r", "D1", `{"reason":"x"}`), Want: "params.reason: is not a known field"},
			{Name: "params an array", Action: "abandon", Cmd: command("r", "D1", `[]`), Want: "params: must be a JSON object"},
			{Name: "upload camelCase field", Action: "upload_document", Cmd: command("r", "D1", `{"fileName":"a.pdf","content_type":"pdf","content":"QQ=="}`), Want: "params.fileName: is not a known field"},
			{Name: "upload no file_name", Action: "upload_document", Cmd: command("r", "D1", `{"content_type":"pdf","content":"QQ=="}`), Want: "params.file_name: is required"},
			{Name: "upload file_name a path", Action: "upload_document", Cmd: command("r", "D1", `{"file_name":"C:\\x.pdf","content_type":"pdf","content":"QQ=="}`), Want: "params.file_name: must be a file name, not a path"},
			{Name: "upload file_name too long", Action: "upload_document", Cmd: command("r", "D1", `{"file_name":"`+strings.Repeat("é", 129)+`","content_type":"pdf","content":"QQ=="}`), Want: "params.file_name: must be at most 128 characters (has 129)"},
			{Name: "upload content_type MIME", Action: "upload_document", Cmd: command("r", "D1", `{"file_name":"a.pdf","content_type":"application/pdf","content":"QQ=="}`), Want: "params.content_type: must be one of pdf, doc, docx, xls, xlsx, bmp, jpg, jpeg, png, gif"},
			{Name: "upload content_type upper case", Action: "upload_document", Cmd: command("r", "D1", `{"file_name":"a.pdf","content_type":"PDF","content":"QQ=="}`), Want: "params.content_type: must be one of pdf, doc, docx, xls, xlsx, bmp, jpg, jpeg, png, gif"},
			{Name: "upload content_type number", Action: "upload_document", Cmd: command("r", "D1", `{"file_name":"a.pdf","content_type":1,"content":"QQ=="}`), Want: "params.content_type: must be a JSON string"},
			{Name: "upload no content", Action: "upload_document", Cmd: command("r", "D1", `{`+up+`}`), Want: "params.content: is required (or params.contentRef)"},
			{Name: "upload empty content", Action: "upload_document", Cmd: command("r", "D1", `{`+up+`,"content":""}`), Want: "params.content: must not be \"\" (leave an optional field out, or null)"},
			{Name: "upload content and ref", Action: "upload_document", Cmd: command("r", "D1", `{`+up+`,"content":"QQ==","contentRef":{"name":"x"}}`), Want: "params.content: must not be given together with params.contentRef"},
			{Name: "upload bad base64", Action: "upload_document", Cmd: command("r", "D1", `{`+up+`,"content":"QQ="}`), Want: "params.content: must be standard base64"},
			{Name: "upload content too long", Action: "upload_document", Cmd: command("r", "D1", `{`+up+`,"content":"`+strings.Repeat("QUFB", MaxContentChars/4+1)+`"}`), Want: "params.content: must be at most 2048000 base64 characters (has 2048004)"},
			{Name: "upload ref without name", Action: "upload_document", Cmd: command("r", "D1", `{`+up+`,"contentRef":{"size":3}}`), Want: "params.contentRef.name: is required"},
			{Name: "upload ref bad digest", Action: "upload_document", Cmd: command("r", "D1", `{`+up+`,"contentRef":{"name":"x","digest":"SHA-256=short"}}`), Want: "params.contentRef.digest: must be SHA-256=<base64url of 32 bytes>"},
			{Name: "upload ref size a string", Action: "upload_document", Cmd: command("r", "D1", `{`+up+`,"contentRef":{"name":"x","size":"3"}}`), Want: "params.contentRef.size: must be a non-negative integer"},
			{Name: "remove no document_id", Action: "remove_document", Cmd: command("r", "D1", `{}`), Want: "params.document_id: is required"},
			{Name: "remove document_id too long", Action: "remove_document", Cmd: command("r", "D1", `{"document_id":"`+strings.Repeat("d", 129)+`"}`), Want: "params.document_id: must be at most 128 characters (has 129)"},
			{Name: "remove unknown field", Action: "remove_document", Cmd: command("r", "D1", `{"document_id":"d","disputes_id":"D2"}`), Want: "params.disputes_id: is not a known field"},
			{Name: "defense no comment", Action: "submit_defense", Cmd: command("r", "D1", ""), Want: "params.comment: is required"},
			{Name: "defense blank comment", Action: "submit_defense", Cmd: command("r", "D1", `{"comment":" \n "}`), Want: "params.comment: must not be blank"},
			{Name: "defense comment too long", Action: "submit_defense", Cmd: command("r", "D1", `{"comment":"`+strings.Repeat("c", MaxCommentChars+1)+`"}`), Want: "params.comment: must be at most 2000 characters (has 2001)"},
			{Name: "defense comment control char", Action: "submit_defense", Cmd: command("r", "D1", `{"comment":"a\u0007b"}`), Want: "params.comment: must not contain control characters other than line breaks and tabs"},
			{Name: "defense comment an object", Action: "submit_defense", Cmd: command("r", "D1", `{"comment":{"text":"x"}}`), Want: "params.comment: must be a JSON string"},
		},
		Valid: []handlerstest.Valid{
			{Action: handlers.ActionAbandon, Cmd: command("r", "D1", "")},
		},
		Answers: []handlerstest.Answer{
			{Name: "200 abandon", Action: "abandon", Status: 200, Body: `{"code":"200","msg":"SUCCESS","data":null}`, Kind: "succeeded", Code: "200", Message: "SUCCESS"},
			{Name: "200 numeric code", Action: "submit_defense", Status: 200, Body: `{"code":200,"msg":"SUCCESS"}`, Kind: "succeeded", Code: "200", Message: "SUCCESS"},
			{Name: "200 upload", Action: "upload_document", Status: 200, Body: `{"code":"200","msg":"SUCCESS","data":{"document_id":"doc-1"}}`, Kind: "succeeded", Code: "200", Message: "SUCCESS"},
			{Name: "200 upload without document_id", Action: "upload_document", Status: 200, Body: `{"code":"200","msg":"SUCCESS","data":{}}`, Kind: "retryable", Code: "200"},
			{Name: "200 remove", Action: "remove_document", Status: 200, Body: `{"code":"200","msg":"SUCCESS"}`, Kind: "succeeded", Code: "200", Message: "SUCCESS"},
			{Name: "envelope 400 in HTTP 200", Action: "abandon", Status: 200, Body: `{"code":"400","msg":"PARAM_ERROR"}`, Kind: "permanent", Code: "400", Message: "PARAM_ERROR"},
			{Name: "envelope 400 in HTTP 400", Action: "submit_defense", Status: 400, Body: `{"code":"400","msg":"DISPUTE_ALREADY_DEFENDED"}`, Kind: "permanent", Code: "400", Message: "DISPUTE_ALREADY_DEFENDED"},
			{Name: "already closed without Recover", Action: "abandon", Status: 200, Body: `{"code":"400","msg":"DISPUTE_ALREADY_CLOSED"}`, Kind: "permanent", Code: "400", Message: "DISPUTE_ALREADY_CLOSED"},
			{Name: "document not found without Recover", Action: "remove_document", Status: 200, Body: `{"code":"400","msg":"DOCUMENT_NOT_FOUND"}`, Kind: "permanent", Code: "400", Message: "DOCUMENT_NOT_FOUND"},
			{Name: "envelope 500 in HTTP 200", Action: "abandon", Status: 200, Body: `{"code":"500","msg":"SYSTEM_ERROR"}`, Kind: "retryable", Code: "500", Message: "SYSTEM_ERROR"},
			{Name: "unknown envelope code", Action: "abandon", Status: 200, Body: `{"code":"302","msg":"?"}`, Kind: "retryable", Code: "302"},
			{Name: "200 unreadable", Action: "abandon", Status: 200, Body: `<html>`, Kind: "retryable", Code: "HTTP_200"},
			{Name: "200 empty object", Action: "abandon", Status: 200, Body: `{}`, Kind: "retryable", Code: "HTTP_200"},
			{Name: "200 code with HTTP 404", Action: "abandon", Status: 404, Body: `{"code":"200","msg":"SUCCESS"}`, Kind: "permanent", Code: "HTTP_404"},
			{Name: "401", Action: "abandon", Status: 401, Body: `{"code":"401","msg":"UNAUTHORIZED"}`, Kind: "permanent", Code: "HTTP_401", Message: "UNAUTHORIZED"},
			{Name: "401 no body", Action: "upload_document", Status: 401, Kind: "permanent", Code: "HTTP_401"},
			{Name: "403", Action: "abandon", Status: 403, Body: `forbidden`, Kind: "permanent", Code: "HTTP_403"},
			{Name: "404 html", Action: "abandon", Status: 404, Body: `<html>`, Kind: "permanent", Code: "HTTP_404"},
			{Name: "429 Retry-After", Action: "abandon", Status: 429, Header: map[string]string{"Retry-After": "3"}, Kind: "retry_after", Code: "HTTP_429", Delay: 3 * time.Second},
			{Name: "429 default", Action: "abandon", Status: 429, Body: `{"code":"500","msg":"TOO_MANY"}`, Kind: "retry_after", Code: "500", Delay: DefaultRetryAfter},
			{Name: "500 envelope", Action: "abandon", Status: 500, Body: `{"code":"500","msg":"SYSTEM_ERROR"}`, Kind: "retryable", Code: "500"},
			{Name: "500 with envelope 400", Action: "abandon", Status: 500, Body: `{"code":"400","msg":"PARAM_ERROR"}`, Kind: "retryable", Code: "400"},
			{Name: "502 html", Action: "submit_defense", Status: 502, Body: `<html>`, Kind: "retryable", Code: "HTTP_502"},
			{Name: "503", Action: "remove_document", Status: 503, Kind: "retryable", Code: "HTTP_503"},
		},
		AnswerCommand: func(action string) *handlers.Command { return command("r1", "D100", params[action]) },
		Signed:        handlers.ActionAbandon,
		WrongKeyCode:  "HTTP_401",
		Recover: []handlerstest.Recovery{
			{Action: handlers.ActionAbandon, Endpoint: "abandon", Code: MsgDisputeAlreadyClosed},
			{Action: handlers.ActionSubmitDefense, Endpoint: "defend", Code: MsgDisputeAlreadyDefended},
			{Action: handlers.ActionUploadDocument, Endpoint: "documents/upload", Code: "200"},
		},
		EvidenceAction: handlers.ActionUploadDocument,
		ContentFields:  []string{"content"},
	})
}

// startSandbox starts a sandbox with a population of open disputes; each
// command takes the next one.
func startSandbox(params map[string]string) func(t *testing.T) *handlerstest.Sandbox {
	return func(t *testing.T) *handlerstest.Sandbox {
		sb := sandbox.New(sandbox.Config{Disputes: 20})
		var mu sync.Mutex
		ids := sb.SampleIDs().DisputeAPI
		return &handlerstest.Sandbox{
			URL: handlerstest.Serve(t, sb),
			Command: func(t *testing.T, action, requestID string) *handlers.Command {
				mu.Lock()
				defer mu.Unlock()
				if len(ids) == 0 {
					t.Fatal("the sandbox has no open dispute left")
				}
				id := ids[0]
				ids = ids[1:]
				return command(requestID, id, params[action])
			},
			Stored: func(t *testing.T, cmd *handlers.Command) handlerstest.Stored {
				for _, e := range sb.EffectsFor(sandbox.ProviderDisputeAPI, cmd.DisputeRequestID, cmd.DisputeID) {
					return handlerstest.Stored{SHA256: e.Detail["sha256"]}
				}
				t.Fatal("the sandbox recorded no upload")
				return handlerstest.Stored{}
			},
		}
	}
}
