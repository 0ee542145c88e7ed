package ingenico

import (
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/sandbox"
)

// TestConformance runs the providers' conformance suite: the validation
// table, the classification of each documented answer, signing, recovery
// after an unknown outcome with the X-GCS-Idempotence-Key, and evidence by
// reference, against the project's sandbox.
func TestConformance(t *testing.T) {
	t.Parallel()
	const pdf = `"fileName":"a.pdf","fileType":"application/pdf"`
	long := strings.Repeat("A", MaxContentChars+4)
	digest := "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
	notAllowed := string(errorBody("DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION", "DISPUTE_SERVICE_ERROR", "Action not allowed for current state", 400))
	handlerstest.Run(t, handlerstest.Provider{
		Name:  Provider,
		Start: startSandbox,
		New: func(t *testing.T, baseURL string, ev handlers.Evidence, wrongKey bool) *handlers.Mux {
			keys := sandbox.TestKeys
			secret := keys.IngenicoSecretAPIKey
			if wrongKey {
				secret += "x"
			}
			c, _ := newTestClient(t, baseURL, func(cfg *Config) {
				cfg.MerchantID, cfg.APIKeyID, cfg.SecretAPIKey = keys.IngenicoMerchantID, keys.IngenicoAPIKeyID, []byte(secret)
				cfg.Evidence = ev
			})
			mux := handlers.NewMux()
			c.Register(mux)
			return mux
		},
		Validators: Validators,
		Invalid: []handlerstest.Invalid{
			{Name: "no disputeRequestId", Action: "submit_dispute", Cmd: &handlers.Command{DisputeID: "1"}, Want: "disputeRequestId: is required"},
			{Name: "long disputeRequestId", Action: "submit_dispute", Cmd: &handlers.Command{DisputeRequestID: strings.Repeat("r", 65), DisputeID: "1"}, Want: "disputeRequestId: must be at most 64 characters (has 65)"},
			{Name: "header injection", Action: "cancel_dispute", Cmd: &handlers.Command{DisputeRequestID: "a\r\nX-Evil: 1", DisputeID: "1"}, Want: "disputeRequestId: must not contain control characters"},
			{Name: "no disputeId", Action: "submit_dispute", Cmd: &handlers.Command{DisputeRequestID: "r"}, Want: "disputeId: is required"},
			{Name: "long disputeId", Action: "cancel_dispute", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: strings.Repeat("ä", 65)}, Want: "disputeId: must be at most 64 characters (has 65)"},
			{Name: "dot-dot disputeId", Action: "submit_dispute", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: ".."}, Want: `disputeId: must not be ".."`},
			{Name: "submit with a param", Action: "submit_dispute", Cmd: command("1", `{"comment":"x"}`), Want: "params.comment: is not a known field"},
			{Name: "params not an object", Action: "cancel_dispute", Cmd: command("1", `["x"]`), Want: "params: must be a JSON object"},
			{Name: "params a string", Action: "cancel_dispute", Cmd: command("1", `"x"`), Want: "params: must be a JSON object"},
			{Name: "upload without params", Action: "upload_file", Cmd: command("1", ""), Want: "params.fileName: is required"},
			{Name: "upload unknown field", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"content":"QQ==","fileSize":"2"}`), Want: "params.fileSize: is not a known field"},
			{Name: "fileName empty", Action: "upload_file", Cmd: command("1", `{"fileName":"","fileType":"application/pdf","content":"QQ=="}`), Want: "params.fileName: must not be \"\" (leave an optional field out, or null)"},
			{Name: "fileName a number", Action: "upload_file", Cmd: command("1", `{"fileName":12,"fileType":"application/pdf","content":"QQ=="}`), Want: "params.fileName: must be a JSON string"},
			{Name: "fileName a path", Action: "upload_file", Cmd: command("1", `{"fileName":"../a.pdf","fileType":"application/pdf","content":"QQ=="}`), Want: "params.fileName: must be a file name, not a path"},
			{Name: "fileName too long", Action: "upload_file", Cmd: command("1", `{"fileName":"`+strings.Repeat("n", 256)+`","fileType":"application/pdf","content":"QQ=="}`), Want: "params.fileName: must be at most 255 characters (has 256)"},
			{Name: "fileType missing", Action: "upload_file", Cmd: command("1", `{"fileName":"a.pdf","content":"QQ=="}`), Want: "params.fileType: is required"},
			{Name: "fileType not MIME", Action: "upload_file", Cmd: command("1", `{"fileName":"a.pdf","fileType":"pdf","content":"QQ=="}`), Want: "params.fileType: must be a MIME type such as application/pdf"},
			{Name: "fileType with parameters", Action: "upload_file", Cmd: command("1", `{"fileName":"a.pdf","fileType":"text/plain; charset=utf-8","content":"QQ=="}`), Want: "params.fileType: must be a MIME type such as application/pdf"},
			{Name: "no content", Action: "upload_file", Cmd: command("1", `{`+pdf+`}`), Want: "params.content: is required (or params.contentRef)"},
			{Name: "content null", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"content":null}`), Want: "params.content: is required (or params.contentRef)"},
			{Name: "content and contentRef", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"content":"QQ==","contentRef":{"name":"o"}}`), Want: "params.content: must not be given together with params.contentRef"},
			{Name: "content not base64", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"content":"not base64!"}`), Want: "params.content: must be standard base64"},
			{Name: "content too long", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"content":"`+long+`"}`), Want: "params.content: must be at most 2048000 base64 characters (has 2048004)"},
			{Name: "contentRef without name", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"contentRef":{"digest":"`+digest+`"}}`), Want: "params.contentRef.name: is required"},
			{Name: "contentRef unknown field", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"contentRef":{"name":"o","bucket":"b"}}`), Want: "params.contentRef.bucket: is not a known field"},
			{Name: "contentRef bad digest", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"contentRef":{"name":"o","digest":"md5=abc"}}`), Want: "params.contentRef.digest: must be SHA-256=<base64url of 32 bytes>"},
			{Name: "contentRef negative size", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"contentRef":{"name":"o","size":-1}}`), Want: "params.contentRef.size: must be a non-negative integer"},
			{Name: "contentRef too large", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"contentRef":{"name":"o","size":1536001}}`), Want: "params.contentRef.size: must be at most 1536000 bytes (2048000 base64 characters)"},
			{Name: "contentRef not an object", Action: "upload_file", Cmd: command("1", `{`+pdf+`,"contentRef":"o"}`), Want: "params.contentRef: must be a JSON object"},
		},
		Valid: []handlerstest.Valid{
			{Action: "submit_dispute", Cmd: command("162", "")},
			{Action: "submit_dispute", Cmd: command("162", "null")},
			{Action: "cancel_dispute", Cmd: command("162", "{}")},
			{Action: "upload_file", Cmd: command("162", `{"fileName":"Beleg ä.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`)},
			{Action: "upload_file", Cmd: command("162", `{"fileName":"scan.PNG","fileType":"Image/PNG","contentRef":{"name":"ev/1","digest":"SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=","size":12}}`)},
			{Action: "upload_file", Cmd: command("162", `{"fileName":"x.jpg","fileType":"image/jpeg","content":null,"contentRef":{"name":"ev/2"}}`)},
		},
		Answers: []handlerstest.Answer{
			{Name: "200 submit", Action: "submit_dispute", Status: 200, Body: `{"id":"162","status":"CREATED"}`, Kind: "succeeded", Code: "CREATED"},
			{Name: "200 cancel", Action: "cancel_dispute", Status: 200, Body: `{"id":"162","status":"CANCELLED"}`, Kind: "succeeded", Code: "CANCELLED"},
			{Name: "200 without status", Action: "submit_dispute", Status: 200, Body: `{"id":"162"}`, Kind: "succeeded", Code: "HTTP_200"},
			{Name: "201 upload", Action: "upload_file", Status: 201, Body: `{"id":"f1"}`, Kind: "succeeded", Code: "HTTP_201"},
			{Name: "200 upload without file id", Action: "upload_file", Status: 200, Body: `{}`, Kind: "retryable", Code: "HTTP_200"},
			{Name: "200 unparsable", Action: "submit_dispute", Status: 200, Body: `<html>`, Kind: "retryable", Code: "HTTP_200"},
			{Name: "204 empty", Action: "submit_dispute", Status: 204, Body: ``, Kind: "retryable", Code: "HTTP_204"},
			{Name: "400 action not allowed", Action: "submit_dispute", Status: 400, Body: notAllowed, Kind: "permanent", Code: "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION"},
			{Name: "400 code only", Action: "submit_dispute", Status: 400, Body: `{"errorId":"e","errors":[{"code":"21000020","category":"CONNECT_PLATFORM_ERROR","httpStatusCode":400}]}`, Kind: "permanent", Code: "21000020"},
			{Name: "400 unparsable", Action: "submit_dispute", Status: 400, Body: `bad request`, Kind: "permanent", Code: "HTTP_400"},
			{Name: "401", Action: "submit_dispute", Status: 401, Body: string(errorBody("MISSING_OR_INVALID_AUTHORIZATION", "CONNECT_PLATFORM_ERROR", "no", 401)), Kind: "permanent", Code: "MISSING_OR_INVALID_AUTHORIZATION"},
			{Name: "403", Action: "cancel_dispute", Status: 403, Body: string(errorBody("ACCESS_TO_MERCHANT_NOT_ALLOWED", "CONNECT_PLATFORM_ERROR", "no", 403)), Kind: "permanent", Code: "ACCESS_TO_MERCHANT_NOT_ALLOWED"},
			{Name: "404", Action: "cancel_dispute", Status: 404, Body: string(errorBody("DISPUTE_NOT_FOUND", "DISPUTE_SERVICE_ERROR", "no", 404)), Kind: "permanent", Code: "DISPUTE_NOT_FOUND"},
			{Name: "409 key in progress", Action: "submit_dispute", Status: 409, Body: string(errorBody("DUPLICATE_REQUEST_IN_PROGRESS", "CONNECT_PLATFORM_ERROR", "busy", 409)), Kind: "retryable", Code: "DUPLICATE_REQUEST_IN_PROGRESS"},
			{Name: "429 Retry-After seconds", Action: "submit_dispute", Status: 429, Header: map[string]string{"Retry-After": "7"}, Body: `{}`, Kind: "retry_after", Code: "HTTP_429", Delay: 7 * time.Second},
			{Name: "429 no Retry-After", Action: "upload_file", Status: 429, Body: ``, Kind: "retry_after", Code: "HTTP_429", Delay: DefaultRetryAfter},
			{Name: "429 huge Retry-After", Action: "upload_file", Status: 429, Header: map[string]string{"Retry-After": "86400"}, Kind: "retry_after", Code: "HTTP_429", Delay: maxRetryAfter},
			{Name: "400 IO_ERROR", Action: "submit_dispute", Status: 400, Body: string(errorBody("PROCESSING_ERROR", CategoryIOError, "io", 400)), Kind: "retryable", Code: "PROCESSING_ERROR"},
			{Name: "500", Action: "submit_dispute", Status: 500, Body: string(errorBody("INTERNAL_ERROR", "CONNECT_PLATFORM_ERROR", "boom", 500)), Kind: "retryable", Code: "INTERNAL_ERROR"},
			{Name: "502 html", Action: "submit_dispute", Status: 502, Body: `<html>bad gateway</html>`, Kind: "retryable", Code: "HTTP_502"},
			{Name: "503 IO_ERROR", Action: "cancel_dispute", Status: 503, Body: string(errorBody("SERVICE_UNAVAILABLE", CategoryIOError, "later", 503)), Kind: "retryable", Code: "SERVICE_UNAVAILABLE"},
			{Name: "504", Action: "upload_file", Status: 504, Body: ``, Kind: "retryable", Code: "HTTP_504"},
		},
		AnswerCommand: func(action string) *handlers.Command {
			if action == handlers.ActionUploadFile {
				return command("162", `{"fileName":"a.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`)
			}
			return command("162", "")
		},
		Signed:       handlers.ActionCancelDispute,
		WrongKeyCode: "MISSING_OR_INVALID_AUTHORIZATION",
		Recover: []handlerstest.Recovery{
			{Action: handlers.ActionSubmitDispute, Endpoint: "submit", Code: "CREATED"},
			{Action: handlers.ActionUploadFile, Endpoint: "files", Code: "HTTP_200"},
		},
		IdempotencyKey: true,
		EvidenceAction: handlers.ActionUploadFile,
		ContentFields:  []string{"content"},
	})
}

// startSandbox starts the sandbox with its published test keys.
func startSandbox(t *testing.T) *handlerstest.Sandbox {
	sb := sandbox.New(sandbox.Config{Disputes: -1})
	return &handlerstest.Sandbox{
		URL: handlerstest.Serve(t, sb),
		Command: func(t *testing.T, action, requestID string) *handlers.Command {
			d := sb.CreateIngenicoDispute(sandbox.IngenicoDispute{})
			cmd := &handlers.Command{DisputeRequestID: requestID, DisputeID: d.ID}
			if action == handlers.ActionUploadFile {
				cmd.Params = []byte(`{"fileName":"a.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`)
			}
			return cmd
		},
		Stored: func(t *testing.T, cmd *handlers.Command) handlerstest.Stored {
			d, _ := sb.IngenicoDisputeByID(cmd.DisputeID)
			if len(d.Files) != 1 {
				t.Fatalf("the sandbox holds %d files, want 1", len(d.Files))
			}
			return handlerstest.Stored{Size: d.Files[0].FileSize, SHA256: d.Files[0].SHA256}
		},
	}
}
