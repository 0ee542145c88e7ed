package alipayplus_test

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/sandbox"
)

// resultCodes maps every result code of initiateEscalation to its outcome.
var resultCodes = []alipayfake.Code{
	{Code: "SUCCESS", Status: "S", Kind: "succeeded"},
	{Code: "ACCESS_DENIED", Status: "F", Kind: "permanent"},
	{Code: "CURRENCY_NOT_SUPPORT", Status: "F", Kind: "permanent"},
	{Code: "ESCALATION_AMOUNT_EXCEED_LIMIT", Status: "F", Kind: "permanent"},
	{Code: "EXCEEDS_ESCALATION_REQUEST_LIMIT", Status: "F", Kind: "permanent"},
	{Code: "INVALID_CLIENT", Status: "F", Kind: "permanent"},
	{Code: "INVALID_SIGNATURE", Status: "F", Kind: "permanent"},
	{Code: "KEY_NOT_FOUND", Status: "F", Kind: "permanent"},
	{Code: "MEDIA_TYPE_NOT_ACCEPTABLE", Status: "F", Kind: "permanent"},
	{Code: "METHOD_NOT_SUPPORTED", Status: "F", Kind: "permanent"},
	{Code: "NO_INTERFACE_DEF", Status: "F", Kind: "permanent"},
	{Code: "ORDER_NOT_EXIST", Status: "F", Kind: "permanent"},
	{Code: "PARAM_ILLEGAL", Status: "F", Kind: "permanent"},
	{Code: "PROCESS_FAIL", Status: "F", Kind: "permanent"},
	{Code: "SPECIAL_MERCHANT_REQUIRES_MERCHANT_DISPUTE_ID", Status: "F", Kind: "permanent"},
	{Code: "SPECIAL_MERCHANT_REQUIRES_MERCHANT_CUSTOMER_ID", Status: "F", Kind: "permanent"},
	{Code: "SPECIAL_MERCHANT_REQUIRES_MERCHANT_NOT_REFUND_RECORD", Status: "F", Kind: "permanent"},
	{Code: "REPEAT_REQ_INCONSISTENT", Status: "F", Kind: "permanent"},
	{Code: "REQUEST_TRAFFIC_EXCEED_LIMIT", Status: "U", Kind: "retry_after"},
	{Code: "UNKNOWN_EXCEPTION", Status: "U", Kind: "retryable"},
	{Code: "SOME_NEW_U_CODE", Status: "U", Kind: "retryable"},
	{Code: "SOME_NEW_F_CODE", Status: "F", Kind: "permanent"},
}

// TestConformance runs the providers' conformance suite against the
// project's sandbox. The escalation's disputeRequestId is Alipay+'s own
// idempotency key: the recovered call resends it and gets the first answer.
func TestConformance(t *testing.T) {
	t.Parallel()
	alipayfake.CheckCovered(t, resultCodes, alipayplus.Codes)
	keys := alipayfake.AlipayPlusKeys(t)
	handlerstest.Run(t, handlerstest.Provider{
		Name: alipayplus.Provider,
		Start: func(t *testing.T) *handlerstest.Sandbox {
			sb := sandbox.New(sandbox.Config{Disputes: -1})
			return &handlerstest.Sandbox{
				URL: handlerstest.Serve(t, sb),
				Command: func(t *testing.T, action, requestID string) *handlers.Command {
					pay := sb.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{}).PaymentRequestID
					return sandboxEscalation(requestID, pay, "USD", "")
				},
				Stored: func(t *testing.T, cmd *handlers.Command) handlerstest.Stored {
					var p struct{ PaymentRequestID string }
					_ = json.Unmarshal(cmd.Params, &p)
					for _, e := range sb.Escalations(p.PaymentRequestID) {
						var sent struct {
							SupportingDocumentation []struct{ Content string } `json:"supportingDocumentation"`
						}
						if err := json.Unmarshal(e.Request, &sent); err != nil || len(sent.SupportingDocumentation) != 1 {
							t.Fatalf("the escalation carries %d attachments (%v), want 1", len(sent.SupportingDocumentation), err)
						}
						data, err := base64.StdEncoding.DecodeString(sent.SupportingDocumentation[0].Content)
						if err != nil {
							t.Fatal(err)
						}
						sum := sha256.Sum256(data)
						return handlerstest.Stored{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
					}
					t.Fatal("the sandbox holds no escalation")
					return handlerstest.Stored{}
				},
			}
		},
		New: func(t *testing.T, baseURL string, ev handlers.Evidence, wrongKey bool) *handlers.Mux {
			return alipayfake.Mux(t, keys, alipayfake.AlipayKeys(t), wrongKey, func(key *rsa.PrivateKey, log *slog.Logger) (alipayfake.Registrar, error) {
				return alipayplus.New(alipayplus.Config{BaseURL: baseURL, ClientID: keys.ClientID, PrivateKey: key,
					ProviderPublicKey: keys.ProviderPub, Timeout: time.Minute, Evidence: ev, Logger: log})
			})
		},
		Validators: alipayplus.Validators,
		Invalid: []handlerstest.Invalid{
			{Name: "no disputeRequestId", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{Params: params(nil)}, Want: "disputeRequestId: is required"},
			{Name: "disputeRequestId too long", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: strings.Repeat("a", 65), Params: params(nil)}, Want: "disputeRequestId: must be at most 64 characters"},
			{Name: "params.disputeRequestId differs", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeRequestId"] = "e2" })}, Want: "params.disputeRequestId: must equal the command's disputeRequestId"},
			{Name: "no params", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1"}, Want: "params.paymentRequestId: is required"},
			{Name: "paymentRequestId missing", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { delete(m, "paymentRequestId") })}, Want: "params.paymentRequestId: is required"},
			{Name: "paymentRequestId null", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["paymentRequestId"] = nil })}, Want: "params.paymentRequestId: is required"},
			{Name: "paymentRequestId too long", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["paymentRequestId"] = strings.Repeat("9", 65) })}, Want: "params.paymentRequestId: must be at most 64 characters"},
			{Name: "paymentRequestId a number", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["paymentRequestId"] = 12345 })}, Want: "params.paymentRequestId: must be a JSON string"},
			{Name: "unknown field (typo)", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["remark"] = "x" })}, Want: "params.remark: is not a field of initiateEscalation"},
			{Name: "disputeOccurTime not ISO 8601", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeOccurTime"] = "2019-11-27 12:01:01" })}, Want: "params.disputeOccurTime: must be an ISO 8601 date-time such as 2019-11-27T12:01:01+08:00"},
			{Name: "reason code unknown", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeReasonCode"] = "7804" })}, Want: "params.disputeReasonCode: must be one of 7801, 7802, 7803"},
			{Name: "reason code a number", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeReasonCode"] = 7801 })}, Want: "params.disputeReasonCode: must be a JSON string"},
			{Name: "description unknown", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeReasonCodeDescription"] = "FRAUD" })},
				Want: "params.disputeReasonCodeDescription: must be one of MERCHANDIZE_OR_SERVICE_NOT_RECEIVED, NOT_AS_DESCRIBED, REFUND_NOT_PROCESSED, AMOUNT_DIFFER, DUPLICATE_PROCESSED, PAIDED_BY_OTHER_MEANS, USER_DENIED_PARTICIPANTING_IN_A_TRANSACTION"},
			{Name: "amount missing", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { delete(m, "escalationAmount") })}, Want: "params.escalationAmount: is required"},
			{Name: "amount not an object", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = "100 HKD" })}, Want: "params.escalationAmount: must be a JSON object"},
			{Name: "amount value a number", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": 100} })}, Want: "params.escalationAmount.value: must be a JSON string"},
			{Name: "amount value zero", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "0"} })}, Want: "params.escalationAmount.value: must be a natural number string (1..)"},
			{Name: "amount value decimal", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "1.00"} })}, Want: "params.escalationAmount.value: must be a natural number string (1..)"},
			{Name: "amount value negative", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "-5"} })}, Want: "params.escalationAmount.value: must be a natural number string (1..)"},
			{Name: "amount value leading zero", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "0100"} })}, Want: "params.escalationAmount.value: must be a natural number string (1..)"},
			{Name: "amount value empty", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": ""} })}, Want: `params.escalationAmount.value: must not be "" (leave an optional field out, or null)`},
			{Name: "currency too long", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKDD", "value": "1"} })}, Want: "params.escalationAmount.currency: must be at most 3 characters"},
			{Name: "currency lower case", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "hkd", "value": "1"} })}, Want: "params.escalationAmount.currency: must be a 3-letter ISO 4217 code such as EUR"},
			{Name: "amount unknown field", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "1", "amount": "1"}
			})}, Want: "params.escalationAmount.amount: is not a field of Amount"},
			{Name: "merchantDisputeId too long", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["merchantDisputeId"] = strings.Repeat("m", 33) })}, Want: "params.merchantDisputeId: must be at most 32 characters"},
			{Name: "customerId empty", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["customerIdAssignedByMerchant"] = "" })}, Want: `params.customerIdAssignedByMerchant: must not be "" (leave an optional field out, or null)`},
			{Name: "remarks too long", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["remarks"] = strings.Repeat("ü", 1025) })}, Want: "params.remarks: must be at most 1024 characters"},
			{Name: "attachments not an array", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["supportingDocumentation"] = att("attachmentType", "OTHER_MATERIAL") })}, Want: "params.supportingDocumentation: must be a JSON array"},
			{Name: "attachments empty", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["supportingDocumentation"] = []any{} })}, Want: "params.supportingDocumentation: must not be an empty array (leave an optional field out, or null)"},
			{Name: "attachment type missing", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["supportingDocumentation"] = []any{att("file", "f")} })}, Want: "params.supportingDocumentation[0].attachmentType: is required"},
			{Name: "attachment type unknown", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f"), att("attachmentType", "SELFIE", "file", "f")}
			})}, Want: "params.supportingDocumentation[1].attachmentType: must be one of ARTICLES_OF_ASSOCIATION, ENTERPRISES_ANNUAL_INSPECTION_REPORT, PROOF_OF_ADDRESS, OTHER_MATERIAL, REGISTRATION_CERTIFICATE, TRANSACTION_RECEIPT, PROOF_OF_DELIVERY, MERCHANT_INFORMATION, END_USER_INFORMATION, OTHER_DOCUMENTATION, MERCHANT_NOT_REFUND_RECORDS, SUPPORTING_DOCUMENTATION"},
			{Name: "attachment file and content", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "content", "QQ==", "contentType", "pdf")}
			})}, Want: "params.supportingDocumentation[0].file: must not be given together with content (file xor content)"},
			{Name: "attachment neither file nor content", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "attachmentName", "a")}
			})}, Want: "params.supportingDocumentation[0].content: is required when file is not given (file xor content)"},
			{Name: "attachment content without type", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "QQ==")}
			})}, Want: "params.supportingDocumentation[0].contentType: is required when content is given"},
			{Name: "attachment content type unknown", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "QQ==", "contentType", "tiff")}
			})}, Want: "params.supportingDocumentation[0].contentType: must be one of pdf, doc, docx, xls, xlsx, bmp, jpg, jpeg, png, gif"},
			{Name: "attachment content not base64", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "%%%", "contentType", "pdf")}
			})}, Want: "params.supportingDocumentation[0].content: must be standard Base64"},
			{Name: "attachment content too long", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", strings.Repeat("A", 2048004), "contentType", "pdf")}
			})}, Want: "params.supportingDocumentation[0].content: must be at most 2048000 characters"},
			{Name: "attachment file too long", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["merchantNotRefundRecord"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", strings.Repeat("f", 1025))}
			})}, Want: "params.merchantNotRefundRecord[0].file: must be at most 1024 characters"},
			{Name: "attachment name too long", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["merchantNotRefundRecord"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "attachmentName", strings.Repeat("n", 129))}
			})}, Want: "params.merchantNotRefundRecord[0].attachmentName: must be at most 128 characters"},
			{Name: "attachment content and contentRef", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				a := att("attachmentType", "OTHER_MATERIAL", "content", "QQ==", "contentType", "pdf")
				a["contentRef"] = map[string]any{"name": "x"}
				m["supportingDocumentation"] = []any{a}
			})}, Want: "params.supportingDocumentation[0].contentRef: must not be given together with content"},
			{Name: "attachment contentRef too large", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				a := att("attachmentType", "OTHER_MATERIAL", "contentType", "pdf")
				a["contentRef"] = map[string]any{"name": "x", "size": 1536001}
				m["supportingDocumentation"] = []any{a}
			})}, Want: "params.supportingDocumentation[0].contentRef.size: must be at most 1536000 bytes (2048000 Base64 characters)"},
			{Name: "attachment unknown field", Action: handlers.ActionInitiateEscalation, Cmd: &handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
				m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "fileName", "x")}
			})}, Want: "params.supportingDocumentation[0].fileName: is not a field of Attachment"},
		},
		Valid: []handlerstest.Valid{
			{Action: handlers.ActionInitiateEscalation, Cmd: escalation("esc-1", "pay-1")},
		},
		Answers:       alipayfake.Answers(handlers.Actions(alipayplus.Provider), resultCodes, `,"disputeId":"202102231907410200070000000000"`),
		Respond:       alipayfake.Responder(keys),
		AnswerCommand: func(string) *handlers.Command { return escalation("esc-1", "pay-1") },
		Signed:        handlers.ActionInitiateEscalation,
		WrongKeyCode:  "INVALID_SIGNATURE",
		Recover: []handlerstest.Recovery{
			{Action: handlers.ActionInitiateEscalation, Endpoint: "initiateEscalation", Code: "SUCCESS"},
		},
		EvidenceAction: handlers.ActionInitiateEscalation,
	})
}
