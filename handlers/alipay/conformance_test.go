package alipay_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipay"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/sandbox"
)

// resultCodes maps every result code of acceptDispute (and the ones the
// classification table adds) to its outcome; each row runs for both
// actions.
var resultCodes = []struct {
	code, status string
	recover      bool
	kind         string
}{
	{"SUCCESS", "S", false, "succeeded"},
	{"PARAM_ILLEGAL", "F", false, "permanent"},
	{"REPEAT_REQUEST", "F", false, "permanent"},
	{"REPEAT_REQUEST", "F", true, "succeeded"},
	{"TIME_EXCEEDS_LIMIT", "F", false, "permanent"},
	{"TIME_EXCEEDS_LIMIT", "F", true, "permanent"},
	{"UNKNOWN_EXCEPTION", "U", false, "retryable"},
	{"UNKNOWN_EXCEPTION", "U", true, "retryable"},
	{"REQUEST_TRAFFIC_EXCEED_LIMIT", "U", false, "retry_after"},
	{"DEFENSE_EXCEED_LIMIT", "F", false, "permanent"},
	{"NOT_ALLOW_IN_CURRENT_STATUS", "F", false, "permanent"},
	{"ACCESS_DENIED", "F", false, "permanent"},
	{"INVALID_CLIENT", "F", false, "permanent"},
	{"INVALID_SIGNATURE", "F", false, "permanent"},
	{"KEY_NOT_FOUND", "F", false, "permanent"},
	{"INVALID_API", "F", false, "permanent"},
	{"NO_INTERFACE_DEF", "F", false, "permanent"},
	{"MEDIA_TYPE_NOT_ACCEPTABLE", "F", false, "permanent"},
	{"METHOD_NOT_SUPPORTED", "F", false, "permanent"},
	{"PROCESS_FAIL", "F", false, "permanent"},
	{"SOME_NEW_F_CODE", "F", false, "permanent"},
	{"SOME_NEW_U_CODE", "U", false, "retryable"},
}

// TestConformance runs the providers' conformance suite against the
// project's sandbox. Alipay has no idempotency key: recovery takes
// REPEAT_REQUEST as proof.
func TestConformance(t *testing.T) {
	t.Parallel()
	covered := map[string]bool{}
	for _, tc := range resultCodes {
		covered[tc.code] = true
	}
	for code := range alipay.Codes {
		if !covered[code] {
			t.Errorf("code %s of the table has no test row", code)
		}
	}
	keys := alipayfake.AlipayKeys(t)
	const disputeID = "2024010121013101637705928564"
	commands := map[string]func() *handlers.Command{
		handlers.ActionAcceptDispute: func() *handlers.Command {
			return &handlers.Command{DisputeRequestID: "ops-1", DisputeID: disputeID}
		},
		handlers.ActionSupplyDefenseDocument: func() *handlers.Command {
			return &handlers.Command{DisputeRequestID: "ops-2", DisputeID: disputeID,
				Params: json.RawMessage(`{"disputeEvidence":"` + evidenceB64 + `","disputeEvidenceFormat":"PDF"}`)}
		},
	}
	var answers []handlerstest.Answer
	for _, tc := range resultCodes {
		for _, action := range handlers.Actions(alipay.Provider) {
			a := handlerstest.Answer{
				Name:   fmt.Sprintf("%s/%s/recover=%v", action, tc.code, tc.recover),
				Action: action, Status: http.StatusOK, Kind: tc.kind, Code: tc.code, Recover: tc.recover,
				Body: fmt.Sprintf(`{"result":{"resultCode":%q,"resultStatus":%q,"resultMessage":"msg %s"},"disputeId":%q,"disputeResolutionTime":"2024-01-01T18:25:00+00:00"}`,
					tc.code, tc.status, tc.code, disputeID),
			}
			switch {
			case tc.code == "REPEAT_REQUEST" && tc.recover:
				a.Message = alipayclient.MessageAlreadyApplied
			case tc.kind == "permanent":
				a.Message = "msg " + tc.code
			case tc.kind == "retry_after":
				a.Delay = alipayclient.ThrottleDelay
			}
			answers = append(answers, a)
		}
	}
	long := strings.Repeat("x", 65)
	handlerstest.Run(t, handlerstest.Provider{
		Name: alipay.Provider,
		Start: func(t *testing.T) *handlerstest.Sandbox {
			sb := sandbox.New(sandbox.Config{Disputes: -1})
			return &handlerstest.Sandbox{
				URL: handlerstest.Serve(t, sb),
				Command: func(t *testing.T, action, requestID string) *handlers.Command {
					cmd := commands[action]()
					cmd.DisputeRequestID = requestID
					cmd.DisputeID = sb.CreateAlipayDispute(sandbox.AlipayDispute{}).DisputeID
					return cmd
				},
				Stored: func(t *testing.T, cmd *handlers.Command) handlerstest.Stored {
					for _, e := range sb.EffectsFor(sandbox.ProviderAlipay, cmd.DisputeRequestID, cmd.DisputeID) {
						var n int64
						fmt.Sscan(e.Detail["bytes"], &n)
						return handlerstest.Stored{Size: n}
					}
					t.Fatal("the sandbox recorded no defense document")
					return handlerstest.Stored{}
				},
			}
		},
		New: func(t *testing.T, baseURL string, ev handlers.Evidence, wrongKey bool) *handlers.Mux {
			key := keys.MerchantKey
			if wrongKey {
				key = alipayfake.AlipayPlusKeys(t).MerchantKey
			}
			c, err := alipay.New(alipay.Config{BaseURL: baseURL, ClientID: keys.ClientID, PrivateKey: key,
				ProviderPublicKey: keys.ProviderPub, Timeout: 5 * time.Second, Evidence: ev,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			mux := handlers.NewMux()
			c.Register(mux)
			return mux
		},
		Validators: alipay.Validators,
		Invalid: []handlerstest.Invalid{
			{Name: "accept without dispute id", Action: "accept_dispute", Cmd: &handlers.Command{DisputeRequestID: "r"}, Want: "disputeId: is required"},
			{Name: "accept dispute id too long", Action: "accept_dispute", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: long}, Want: "disputeId: must be at most 64 characters"},
			{Name: "accept params.disputeId differs", Action: "accept_dispute", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeId":"E"}`)}, Want: "params.disputeId: must equal the command's disputeId"},
			{Name: "accept params.disputeId not a string", Action: "accept_dispute", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeId":12}`)}, Want: "params.disputeId: must be a JSON string"},
			{Name: "accept params.disputeId empty", Action: "accept_dispute", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeId":""}`)}, Want: `params.disputeId: must not be "" (leave an optional field out, or null)`},
			{Name: "accept unknown field", Action: "accept_dispute", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeID":"D"}`)}, Want: "params.disputeID: is not a field of acceptDispute"},
			{Name: "accept params not an object", Action: "accept_dispute", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`["D"]`)}, Want: "params: must be a JSON object"},
			{Name: "supply without evidence", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{}`)}, Want: "params.disputeEvidence: is required (or disputeEvidenceRef)"},
			{Name: "supply without params", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D"}, Want: "params.disputeEvidence: is required (or disputeEvidenceRef)"},
			{Name: "supply evidence not base64", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidence":"not base64!"}`)}, Want: "params.disputeEvidence: must be standard Base64"},
			{Name: "supply evidence too long", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidence":"` + strings.Repeat("A", 1000004) + `"}`)}, Want: "params.disputeEvidence: must be at most 1000000 characters"},
			{Name: "supply evidence empty", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidence":""}`)}, Want: `params.disputeEvidence: must not be "" (leave an optional field out, or null)`},
			{Name: "supply evidence and ref", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidence":"QQ==","disputeEvidenceRef":{"name":"a"}}`)}, Want: "params.disputeEvidence: must not be given together with disputeEvidenceRef"},
			{Name: "supply ref without name", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidenceRef":{"digest":"SHA-256=x"}}`)}, Want: "params.disputeEvidenceRef.name: is required"},
			{Name: "supply ref bad digest", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidenceRef":{"name":"a","digest":"MD5=abc"}}`)}, Want: "params.disputeEvidenceRef.digest: must be SHA-256=<base64url of 32 bytes>"},
			{Name: "supply ref too large", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidenceRef":{"name":"a","size":750001}}`)}, Want: "params.disputeEvidenceRef.size: must be at most 750000 bytes (1000000 Base64 characters)"},
			{Name: "supply ref unknown field", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidenceRef":{"name":"a","bucket":"b"}}`)}, Want: "params.disputeEvidenceRef.bucket: is not a field of contentRef"},
			{Name: "supply bad format", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidence":"QQ==","disputeEvidenceFormat":"DOCX"}`)}, Want: "params.disputeEvidenceFormat: must be one of PDF, JPG, JPEG, PNG"},
			{Name: "supply typo", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidence":"QQ==","disputeEvidenceFromat":"PDF"}`)}, Want: "params.disputeEvidenceFromat: is not a field of supplyDefenseDocument"},
			{Name: "supply duplicate key", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeEvidence":"QQ==","disputeEvidence":"Qg=="}`)}, Want: "params.disputeEvidence: appears twice"},
			{Name: "supply dispute id differs", Action: "supply_defense_document", Cmd: &handlers.Command{DisputeRequestID: "r", DisputeID: "D", Params: json.RawMessage(`{"disputeId":"X","disputeEvidence":"QQ=="}`)}, Want: "params.disputeId: must equal the command's disputeId"},
		},
		Valid: []handlerstest.Valid{
			{Action: handlers.ActionAcceptDispute, Cmd: commands[handlers.ActionAcceptDispute]()},
			{Action: handlers.ActionSupplyDefenseDocument, Cmd: commands[handlers.ActionSupplyDefenseDocument]()},
		},
		Answers: answers,
		Respond: func(w http.ResponseWriter, r *http.Request, a handlerstest.Answer) {
			alipayfake.WriteSigned(w, r, keys, a.Status, []byte(a.Body))
		},
		AnswerCommand: func(action string) *handlers.Command { return commands[action]() },
		Signed:        handlers.ActionAcceptDispute,
		WrongKeyCode:  "INVALID_SIGNATURE",
		Recover: []handlerstest.Recovery{
			{Action: handlers.ActionAcceptDispute, Endpoint: "acceptDispute", Code: "REPEAT_REQUEST"},
			{Action: handlers.ActionSupplyDefenseDocument, Endpoint: "supplyDefenseDocument", Code: "REPEAT_REQUEST"},
		},
		EvidenceAction: handlers.ActionSupplyDefenseDocument,
		ContentFields:  []string{"disputeEvidence", "disputeEvidenceFormat"},
	})
}
