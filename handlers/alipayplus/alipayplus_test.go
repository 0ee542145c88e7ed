package alipayplus_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/sandbox"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The log sink and evidence store shared with the other alipay-style tests.
type (
	syncBuffer  = testsupport.LogBuffer
	memEvidence = testsupport.Evidence
)

type options struct {
	ledger  alipayplus.Ledger
	ev      handlers.Evidence
	special []string
	now     func() time.Time
}

type bundle struct {
	fake *alipayfake.Fake
	mux  *handlers.Mux
	h    handlers.Handler
	logs *syncBuffer
}

func setup(t *testing.T, o options) *bundle {
	t.Helper()
	keys := alipayfake.AlipayPlusKeys(t)
	fake := alipayfake.New(t, keys, alipayfake.AlipayKeys(t).ProviderKey)
	logs := &syncBuffer{}
	c, err := alipayplus.New(alipayplus.Config{
		BaseURL: fake.URL, ClientID: keys.ClientID, PrivateKey: keys.MerchantKey, ProviderPublicKey: keys.ProviderPub,
		Timeout: time.Minute, Evidence: o.ev, Ledger: o.ledger, SpecialMerchants: o.special, Now: o.now,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := handlers.NewMux()
	c.Register(mux)
	h, ok := mux.Handler(alipayplus.Provider, "initiate_escalation")
	if !ok {
		t.Fatal("initiate_escalation not registered")
	}
	b := &bundle{fake: fake, mux: mux, h: h, logs: logs}
	t.Cleanup(func() { assertNoSecrets(t, logs.String(), fake) })
	return b
}

func assertNoSecrets(t *testing.T, logs string, fake *alipayfake.Fake) {
	t.Helper()
	k := sandbox.TestKeys
	for _, pem := range []string{k.AlipayPlusMerchantPrivatePEM, k.AlipayPlusProviderPrivatePEM, k.AlipayProviderPrivatePEM} {
		for _, line := range strings.Split(pem, "\n") {
			if len(line) >= 40 && strings.Contains(logs, line) {
				t.Errorf("a log line contains private key material")
			}
		}
	}
	if strings.Contains(logs, "PRIVATE KEY") {
		t.Errorf("a log line mentions a private key")
	}
	for _, r := range fake.Requests() {
		sig := r.Header.Get("Signature")
		if i := strings.Index(sig, "signature="); i >= 0 && strings.Contains(logs, sig[i+len("signature="):]) {
			t.Errorf("a log line contains a request signature")
		}
		if strings.Contains(logs, string(r.Body)) {
			t.Errorf("a log line contains a request body")
		}
	}
}

func (b *bundle) apply(t *testing.T, cmd *handlers.Command) (*handlers.Response, error) {
	t.Helper()
	return b.h.Apply(context.Background(), &handlers.Call{Provider: alipayplus.Provider, Action: "initiate_escalation", Command: cmd, Attempt: 1})
}

// escalation returns a valid command for a payment.
func escalation(id, payment string) *handlers.Command {
	return &handlers.Command{DisputeRequestID: id, Params: json.RawMessage(`{
		"paymentRequestId": "` + payment + `",
		"disputeReasonCode": "7801",
		"disputeReasonCodeDescription": "MERCHANDIZE_OR_SERVICE_NOT_RECEIVED",
		"escalationAmount": {"currency": "HKD", "value": "100"},
		"remarks": "remark"}`)}
}

func TestForgedOrMissingSignatureIsNeverSuccess(t *testing.T) {
	t.Parallel()
	for _, s := range []alipayfake.Signing{alipayfake.SignNone, alipayfake.SignForged, alipayfake.SignOtherBody, alipayfake.SignNoTime} {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			t.Parallel()
			b := setup(t, options{})
			b.fake.Always(alipayfake.Reply{Code: "SUCCESS", Status: "S", Signing: s})
			resp, err := b.apply(t, escalation("esc-forged", "pay-1"))
			if err == nil || resp != nil {
				t.Fatalf("unverified SUCCESS reported as success: %+v", resp)
			}
			if !errors.Is(err, alipayclient.ErrUnverified) || handlers.IsPermanent(err) {
				t.Fatalf("error %v, want retryable ErrUnverified", err)
			}
		})
	}
}

func TestRequestBodyAndRetriesAreIdentical(t *testing.T) {
	t.Parallel()
	pdf := []byte("%PDF-1.7 not refunded – 未退款")
	sum := sha256.Sum256(pdf)
	ev := memEvidence{"nr.pdf": pdf}
	b := setup(t, options{ev: ev})
	cmd := &handlers.Command{DisputeRequestID: "esc-body", Merchant: "apple", Params: json.RawMessage(`{
		"disputeRequestId": "esc-body",
		"paymentRequestId": "pay-9",
		"disputeOccurTime": "2019-11-27T12:01:01+08:00",
		"disputeReasonCode": "7802",
		"disputeReasonCodeDescription": "REFUND_NOT_PROCESSED",
		"escalationAmount": {"value": "2500", "currency": "USD"},
		"merchantDisputeId": "M-1",
		"customerIdAssignedByMerchant": "C-1",
		"merchantNotRefundRecord": [{"attachmentType": "MERCHANT_NOT_REFUND_RECORDS", "attachmentName": "nr.pdf", "contentType": "pdf",
			"contentRef": {"name": "nr.pdf", "digest": "SHA-256=` + base64.URLEncoding.EncodeToString(sum[:]) + `", "size": ` + fmt.Sprint(len(pdf)) + `}}],
		"supportingDocumentation": [{"attachmentType": "PROOF_OF_DELIVERY", "file": "https://example.com/pod.pdf"}],
		"remarks": null}`)}
	if err := b.h.Validate(cmd); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := `{"disputeRequestId":"esc-body","paymentRequestId":"pay-9","disputeOccurTime":"2019-11-27T12:01:01+08:00",` +
		`"disputeReasonCode":"7802","disputeReasonCodeDescription":"REFUND_NOT_PROCESSED","escalationAmount":{"currency":"USD","value":"2500"},` +
		`"merchantDisputeId":"M-1","customerIdAssignedByMerchant":"C-1",` +
		`"merchantNotRefundRecord":[{"attachmentType":"MERCHANT_NOT_REFUND_RECORDS","attachmentName":"nr.pdf","content":"` + base64.StdEncoding.EncodeToString(pdf) + `","contentType":"pdf"}],` +
		`"supportingDocumentation":[{"attachmentType":"PROOF_OF_DELIVERY","file":"https://example.com/pod.pdf"}]}`
	b.fake.Always(alipayfake.Reply{Code: "UNKNOWN_EXCEPTION", Status: "U"})
	if _, err := b.apply(t, cmd); err == nil {
		t.Fatal("U answered as success")
	}
	b.fake.Always(alipayfake.Reply{Code: "SUCCESS", Status: "S"})
	if _, err := b.h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 2, Recover: true}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	reqs := b.fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, r := range reqs {
		if string(r.Body) != want {
			t.Fatalf("request %d body\n got %s\nwant %s", i, r.Body, want)
		}
		if !r.SigValid || r.Path != alipayplus.PathInitiateEscalation {
			t.Fatalf("request %d: signature valid %v, path %s", i, r.SigValid, r.Path)
		}
	}
	if reqs[0].Header.Get("Request-Time") == "" || reqs[0].Header.Get("Signature") == "" {
		t.Fatal("missing signature headers")
	}
}

func TestLockKey(t *testing.T) {
	t.Parallel()
	mux := handlers.NewMux()
	alipayplus.Validators(mux)
	h, _ := mux.Handler(alipayplus.Provider, "initiate_escalation")
	cases := []struct {
		cmd  *handlers.Command
		want string
	}{
		{escalation("e1", "pay-77"), "payment:pay-77"},
		{&handlers.Command{DisputeRequestID: "e2", DisputeID: "D", Params: json.RawMessage(`{"paymentRequestId":"pay-78"}`)}, "payment:pay-78"},
		{&handlers.Command{DisputeRequestID: "e3", DisputeID: "D", Params: json.RawMessage(`{"paymentRequestId":78}`)}, "dispute:D"},
		{&handlers.Command{DisputeRequestID: "e4", Params: json.RawMessage(`nonsense`)}, ""},
	}
	for _, tc := range cases {
		if got := handlers.LockKey(h, tc.cmd); got != tc.want {
			t.Errorf("%s: lock key %q, want %q", tc.cmd.DisputeRequestID, got, tc.want)
		}
	}
}

func TestValidatorsDoNotApply(t *testing.T) {
	t.Parallel()
	mux := handlers.NewMux()
	alipayplus.Validators(mux)
	h, _ := mux.Handler(alipayplus.Provider, "initiate_escalation")
	cmd := escalation("e", "p")
	if err := h.Validate(cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply(context.Background(), &handlers.Call{Command: cmd}); !handlers.IsPermanent(err) {
		t.Fatalf("Apply of a validator: %v, want a permanent error", err)
	}
}
