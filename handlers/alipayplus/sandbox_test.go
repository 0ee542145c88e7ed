package alipayplus_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/sandbox"
)

func sandboxEscalation(id, payment, currency string, extra string) *handlers.Command {
	return &handlers.Command{DisputeRequestID: id, Params: json.RawMessage(`{
		"disputeRequestId": "` + id + `",
		"paymentRequestId": "` + payment + `",
		"disputeReasonCode": "7802",
		"disputeReasonCodeDescription": "AMOUNT_DIFFER",
		"escalationAmount": {"currency": "` + currency + `", "value": "500"}` + extra + `}`)}
}

// TestSandboxEscalations runs initiate_escalation against the sandbox with
// the Redis ledger: the provider and the local rules agree, and nothing is
// applied twice.
func TestSandboxEscalations(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := testenv.Context(t)
	srv := sandbox.New(sandbox.Config{Disputes: -1})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	keys := alipayfake.AlipayPlusKeys(t)
	ledger := alipayplus.NewRedisLedger(env.Redis, env.Names)
	doc := bytes.Repeat([]byte{0x25, 0x50, 0x44, 0x46, 0x00, 0xff}, 256000) // 1 536 000 bytes: 2 048 000 Base64 characters
	c, err := alipayplus.New(alipayplus.Config{BaseURL: ts.URL, ClientID: keys.ClientID, PrivateKey: keys.MerchantKey,
		ProviderPublicKey: keys.ProviderPub, Timeout: time.Minute, Ledger: ledger, Evidence: memEvidence{"big.pdf": doc}})
	if err != nil {
		t.Fatal(err)
	}
	mux := handlers.NewMux()
	c.Register(mux)
	h, _ := mux.Handler(alipayplus.Provider, "initiate_escalation")
	do := func(cmd *handlers.Command, attempt int) (*handlers.Response, error) {
		t.Helper()
		if err := h.Validate(cmd); err != nil {
			t.Fatalf("Validate %s: %v", cmd.DisputeRequestID, err)
		}
		return h.Apply(ctx, &handlers.Call{Provider: alipayplus.Provider, Action: "initiate_escalation", Command: cmd, Attempt: attempt, Recover: attempt > 1})
	}
	calls := func() int { return srv.Requests()["alipayplus.initiateEscalation"] }

	pay := srv.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{}).PaymentRequestID

	// The first escalation carries a 2 MB attachment from the evidence bucket.
	sum := sha256.Sum256(doc)
	first := sandboxEscalation("esc-1", pay, "USD", fmt.Sprintf(`,"supportingDocumentation":[{"attachmentType":"SUPPORTING_DOCUMENTATION",
		"contentType":"pdf","contentRef":{"name":"big.pdf","digest":"SHA-256=%s","size":%d}}]`, base64.URLEncoding.EncodeToString(sum[:]), len(doc)))
	srv.SetFaults(sandbox.ProviderAlipayPlus, "*", sandbox.Faults{ApplyThenFailRate: 1})
	if _, err := do(first, 1); err == nil || handlers.IsPermanent(err) {
		t.Fatalf("apply-then-fail: %v, want a retryable error", err)
	}
	srv.ClearFaults()
	resp, err := do(first, 2) // same params, same disputeRequestId: Alipay+ answers once
	if err != nil || resp.Code != "SUCCESS" {
		t.Fatalf("retry: %+v %v", resp, err)
	}
	es := srv.Escalations(pay)
	if len(es) != 1 || len(srv.EffectsFor(sandbox.ProviderAlipayPlus, "esc-1", "")) != 1 {
		t.Fatalf("sandbox escalations %d, effects %+v", len(es), srv.Effects())
	}
	var sent struct {
		SupportingDocumentation []struct{ Content string } `json:"supportingDocumentation"`
	}
	if err := json.Unmarshal(es[0].Request, &sent); err != nil || len(sent.SupportingDocumentation) != 1 {
		t.Fatalf("stored request: %v", err)
	}
	got, _ := base64.StdEncoding.DecodeString(sent.SupportingDocumentation[0].Content)
	if sha256.Sum256(got) != sum || len(sent.SupportingDocumentation[0].Content) != 2048000 {
		t.Fatal("the attachment did not reach the provider intact")
	}
	if l, _ := ledger.Escalations(ctx, pay); len(l) != 1 || l[0].DisputeID != es[0].DisputeID {
		t.Fatalf("ledger %+v", l)
	}

	// Ongoing: refused locally, no call.
	before := calls()
	if _, err := do(sandboxEscalation("esc-2", pay, "USD", ""), 1); handlers.Code(err) != alipayplus.CodeExceedsEscalationLimit {
		t.Fatalf("second while ongoing: %v", err)
	}
	if calls() != before {
		t.Fatal("a locally refused escalation reached the provider")
	}

	// The provider answers (responseEscalation) and the webhook closes it.
	if _, ok := srv.EndEscalation(es[0].DisputeID, sandbox.EscalationReplied); !ok {
		t.Fatal("EndEscalation")
	}
	if err := ledger.Close(ctx, "", "esc-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if resp, err := do(sandboxEscalation("esc-2", pay, "USD", ""), 1); err != nil || resp.Code != "SUCCESS" {
		t.Fatalf("second after close: %+v %v", resp, err)
	}
	es = srv.Escalations(pay)
	srv.EndEscalation(es[1].DisputeID, sandbox.EscalationClosed)
	if err := ledger.Close(ctx, pay, "esc-2", time.Now()); err != nil {
		t.Fatal(err)
	}

	// The third is refused locally.
	before = calls()
	if _, err := do(sandboxEscalation("esc-3", pay, "USD", ""), 1); handlers.Code(err) != alipayplus.CodeExceedsEscalationLimit {
		t.Fatalf("third: %v", err)
	}
	if calls() != before {
		t.Fatal("the third escalation reached the provider")
	}

	// The provider stays the judge where disputesync does not know the facts.
	other := srv.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{}).PaymentRequestID
	apple := srv.CreateAlipayPlusPayment(sandbox.AlipayPlusPayment{Merchant: "APPLE"}).PaymentRequestID
	for _, tc := range []struct {
		cmd  *handlers.Command
		code string
	}{
		{sandboxEscalation("esc-1", other, "USD", ""), "REPEAT_REQ_INCONSISTENT"}, // reused id, other payment
		{sandboxEscalation("esc-eur", other, "EUR", ""), "CURRENCY_NOT_SUPPORT"},
		{sandboxEscalation("esc-apple", apple, "USD", ""), alipayplus.CodeSpecialMerchantDisputeID}, // merchant unknown to the publisher
		{sandboxEscalation("esc-nopay", "NO_SUCH_PAYMENT", "USD", ""), "ORDER_NOT_EXIST"},
	} {
		_, err := do(tc.cmd, 1)
		if !handlers.IsPermanent(err) || handlers.Code(err) != tc.code {
			t.Errorf("%s: %v, want failed %s", tc.cmd.DisputeRequestID, err, tc.code)
		}
	}
	if n := len(srv.EffectsFor(sandbox.ProviderAlipayPlus, "", "")); n != 2 {
		t.Fatalf("%d effects, want 2", n)
	}
}
