package alipay_test

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipay"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/sandbox"
)

// resultCodes maps every result code of acceptDispute (and the ones the
// classification table adds) to its outcome; each row runs for both
// actions.
var resultCodes = []alipayfake.Code{
	{Code: "SUCCESS", Status: "S", Kind: "succeeded"},
	{Code: "PARAM_ILLEGAL", Status: "F", Kind: "permanent"},
	{Code: "REPEAT_REQUEST", Status: "F", Kind: "permanent"},
	{Code: "REPEAT_REQUEST", Status: "F", Kind: "succeeded", Recover: true},
	{Code: "TIME_EXCEEDS_LIMIT", Status: "F", Kind: "permanent"},
	{Code: "TIME_EXCEEDS_LIMIT", Status: "F", Kind: "permanent", Recover: true},
	{Code: "UNKNOWN_EXCEPTION", Status: "U", Kind: "retryable"},
	{Code: "UNKNOWN_EXCEPTION", Status: "U", Kind: "retryable", Recover: true},
	{Code: "REQUEST_TRAFFIC_EXCEED_LIMIT", Status: "U", Kind: "retry_after"},
	{Code: "DEFENSE_EXCEED_LIMIT", Status: "F", Kind: "permanent"},
	{Code: "NOT_ALLOW_IN_CURRENT_STATUS", Status: "F", Kind: "permanent"},
	{Code: "ACCESS_DENIED", Status: "F", Kind: "permanent"},
	{Code: "INVALID_CLIENT", Status: "F", Kind: "permanent"},
	{Code: "INVALID_SIGNATURE", Status: "F", Kind: "permanent"},
	{Code: "KEY_NOT_FOUND", Status: "F", Kind: "permanent"},
	{Code: "INVALID_API", Status: "F", Kind: "permanent"},
	{Code: "NO_INTERFACE_DEF", Status: "F", Kind: "permanent"},
	{Code: "MEDIA_TYPE_NOT_ACCEPTABLE", Status: "F", Kind: "permanent"},
	{Code: "METHOD_NOT_SUPPORTED", Status: "F", Kind: "permanent"},
	{Code: "PROCESS_FAIL", Status: "F", Kind: "permanent"},
	{Code: "SOME_NEW_F_CODE", Status: "F", Kind: "permanent"},
	{Code: "SOME_NEW_U_CODE", Status: "U", Kind: "retryable"},
}

// TestConformance runs the providers' conformance suite against the
// project's sandbox. Alipay has no idempotency key: recovery takes
// REPEAT_REQUEST as proof.
func TestConformance(t *testing.T) {
	t.Parallel()
	alipayfake.CheckCovered(t, resultCodes, alipay.Codes)
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
			return alipayfake.Mux(t, keys, alipayfake.AlipayPlusKeys(t), wrongKey, func(key *rsa.PrivateKey, log *slog.Logger) (alipayfake.Registrar, error) {
				return alipay.New(alipay.Config{BaseURL: baseURL, ClientID: keys.ClientID, PrivateKey: key,
					ProviderPublicKey: keys.ProviderPub, Timeout: time.Minute, Evidence: ev, Logger: log})
			})
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
		Answers: alipayfake.Answers(handlers.Actions(alipay.Provider), resultCodes,
			`,"disputeId":"`+disputeID+`","disputeResolutionTime":"2024-01-01T18:25:00+00:00"`),
		Respond:       alipayfake.Responder(keys),
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
