package alipay_test

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
	"github.com/disputesync/disputesync/handlers/alipay"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
	"github.com/disputesync/disputesync/sandbox"
)

// The log sink and evidence store shared with the other alipay-style tests.
type (
	syncBuffer  = testsupport.LogBuffer
	memEvidence = testsupport.Evidence
)

type bundle struct {
	client *alipay.Client
	fake   *alipayfake.Fake
	mux    *handlers.Mux
	logs   *syncBuffer
}

func setup(t *testing.T, ev handlers.Evidence) *bundle {
	t.Helper()
	keys := alipayfake.AlipayKeys(t)
	fake := alipayfake.New(t, keys, alipayfake.AlipayPlusKeys(t).ProviderKey)
	logs := &syncBuffer{}
	c, err := alipay.New(alipay.Config{
		BaseURL: fake.URL, ClientID: keys.ClientID, PrivateKey: keys.MerchantKey, ProviderPublicKey: keys.ProviderPub,
		Timeout: time.Minute, Evidence: ev,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := handlers.NewMux()
	c.Register(mux)
	b := &bundle{client: c, fake: fake, mux: mux, logs: logs}
	t.Cleanup(func() { assertNoSecrets(t, logs.String(), fake) })
	return b
}

// assertNoSecrets fails if a log line carries key material, a signature
// sent or received, or a request body's evidence.
func assertNoSecrets(t *testing.T, logs string, fake *alipayfake.Fake) {
	t.Helper()
	k := sandbox.TestKeys
	for _, pem := range []string{k.AlipayMerchantPrivatePEM, k.AlipayProviderPrivatePEM, k.AlipayPlusProviderPrivatePEM} {
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
		var body struct {
			DisputeEvidence string `json:"disputeEvidence"`
		}
		_ = json.Unmarshal(r.Body, &body)
		if body.DisputeEvidence != "" && strings.Contains(logs, body.DisputeEvidence) {
			t.Errorf("a log line contains the evidence")
		}
	}
}

func (b *bundle) apply(t *testing.T, action string, cmd *handlers.Command, recover bool) (*handlers.Response, error) {
	t.Helper()
	h, ok := b.mux.Handler(alipay.Provider, action)
	if !ok {
		t.Fatalf("%s not registered", action)
	}
	if err := h.Validate(cmd); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return h.Apply(context.Background(), &handlers.Call{Provider: alipay.Provider, Action: action, Command: cmd, Attempt: 1, Recover: recover})
}

const evidenceB64 = "JVBERi0xLjcKZXZpZGVuY2U=" // "%PDF-1.7\nevidence"

func commands() map[string]*handlers.Command {
	return map[string]*handlers.Command{
		"accept_dispute": {DisputeRequestID: "ops-1", DisputeID: "2024010121013101637705928564"},
		"supply_defense_document": {DisputeRequestID: "ops-2", DisputeID: "2024010121013101637705928564",
			Params: json.RawMessage(`{"disputeEvidence":"` + evidenceB64 + `","disputeEvidenceFormat":"PDF"}`)},
	}
}

func TestForgedOrMissingSignatureIsNeverSuccess(t *testing.T) {
	t.Parallel()
	for _, s := range []alipayfake.Signing{alipayfake.SignNone, alipayfake.SignForged, alipayfake.SignOtherBody, alipayfake.SignNoTime} {
		for action, cmd := range commands() {
			t.Run(fmt.Sprintf("%s/%d", action, s), func(t *testing.T) {
				t.Parallel()
				b := setup(t, nil)
				b.fake.Always(alipayfake.Reply{Code: "SUCCESS", Status: "S", Signing: s})
				resp, err := b.apply(t, action, cmd, true)
				if err == nil || resp != nil {
					t.Fatalf("unverified SUCCESS reported as success: %+v", resp)
				}
				if !errors.Is(err, alipayclient.ErrUnverified) || handlers.IsPermanent(err) {
					t.Fatalf("error %v, want retryable ErrUnverified", err)
				}
			})
		}
	}
}

func TestRequestBodies(t *testing.T) {
	t.Parallel()
	pdf := []byte("%PDF-1.7\nrefund proof ü")
	sum := sha256.Sum256(pdf)
	ev := memEvidence{"proof.pdf": pdf}
	cases := []struct {
		name, action string
		cmd          *handlers.Command
		want         string
	}{
		{"accept", "accept_dispute", &handlers.Command{DisputeRequestID: "r1", DisputeID: "D1"}, `{"disputeId":"D1"}`},
		{"accept with matching params.disputeId", "accept_dispute", &handlers.Command{DisputeRequestID: "r1", DisputeID: "D1", Params: json.RawMessage(`{"disputeId":"D1"}`)}, `{"disputeId":"D1"}`},
		{"supply without format", "supply_defense_document", &handlers.Command{DisputeRequestID: "r2", DisputeID: "D2", Params: json.RawMessage(`{"disputeEvidence":"` + evidenceB64 + `","disputeEvidenceFormat":null}`)},
			`{"disputeId":"D2","disputeEvidence":"` + evidenceB64 + `"}`},
		{"supply with format", "supply_defense_document", &handlers.Command{DisputeRequestID: "r2", DisputeID: "D2", Params: json.RawMessage(`{"disputeEvidenceFormat":"jpg","disputeEvidence":"` + evidenceB64 + `"}`)},
			`{"disputeId":"D2","disputeEvidence":"` + evidenceB64 + `","disputeEvidenceFormat":"jpg"}`},
		{"supply from the evidence bucket", "supply_defense_document", &handlers.Command{DisputeRequestID: "r3", DisputeID: "D3",
			Params: json.RawMessage(fmt.Sprintf(`{"disputeEvidenceRef":{"name":"proof.pdf","digest":"SHA-256=%s","size":%d}}`, base64.URLEncoding.EncodeToString(sum[:]), len(pdf)))},
			`{"disputeId":"D3","disputeEvidence":"` + base64.StdEncoding.EncodeToString(pdf) + `"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, ev)
			if _, err := b.apply(t, tc.action, tc.cmd, false); err != nil {
				t.Fatal(err)
			}
			reqs := b.fake.Requests()
			if len(reqs) != 1 || !reqs[0].SigValid {
				t.Fatalf("want one validly signed request, got %d", len(reqs))
			}
			if string(reqs[0].Body) != tc.want {
				t.Fatalf("body\n got %s\nwant %s", reqs[0].Body, tc.want)
			}
			wantPath := alipay.PathAcceptDispute
			if tc.action == "supply_defense_document" {
				wantPath = alipay.PathSupplyDefenseDocument
			}
			if reqs[0].Path != wantPath || reqs[0].Header.Get("Dispute-Request-Id") != tc.cmd.DisputeRequestID {
				t.Fatalf("path %s, Dispute-Request-Id %q", reqs[0].Path, reqs[0].Header.Get("Dispute-Request-Id"))
			}
		})
	}
}

func TestEvidenceReferenceFailuresAreInvalidWithoutACall(t *testing.T) {
	t.Parallel()
	pdf := []byte("%PDF")
	cases := []struct {
		name string
		ev   handlers.Evidence
		ref  string
		want string
	}{
		{"missing object", memEvidence{}, `{"name":"gone.pdf"}`, `params.disputeEvidenceRef: evidence object "gone.pdf" cannot be read: get gone.pdf: nats: object not found`},
		{"digest mismatch", memEvidence{"a": pdf}, `{"name":"a","digest":"SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="}`, `params.disputeEvidenceRef: evidence object "a" does not match its digest`},
		{"no evidence store", nil, `{"name":"a"}`, `params.disputeEvidenceRef: evidence references cannot be read: no evidence store is configured`},
		{"too large", memEvidence{"big": make([]byte, 750001)}, `{"name":"big"}`, `params.disputeEvidenceRef: evidence object "big" is 1000004 Base64 characters, more than 1000000`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.ev)
			_, err := b.apply(t, "supply_defense_document", &handlers.Command{DisputeRequestID: "r", DisputeID: "D",
				Params: json.RawMessage(`{"disputeEvidenceRef":` + tc.ref + `}`)}, false)
			var inv *handlers.InvalidError
			if !errors.As(err, &inv) || err.Error() != tc.want || handlers.Code(err) != handlers.CodeInvalidCommand {
				t.Fatalf("error %v, want InvalidError %q", err, tc.want)
			}
			if n := len(b.fake.Requests()); n != 0 {
				t.Fatalf("%d provider calls, want 0", n)
			}
		})
	}
}

func TestValidatorsDoNotApply(t *testing.T) {
	t.Parallel()
	mux := handlers.NewMux()
	alipay.Validators(mux)
	if got := strings.Join(mux.Registered(), ","); got != "alipay.accept_dispute,alipay.supply_defense_document" {
		t.Fatalf("registered %s", got)
	}
	for action, cmd := range commands() {
		h, _ := mux.Handler(alipay.Provider, action)
		if err := h.Validate(cmd); err != nil {
			t.Fatalf("%s: Validate %v", action, err)
		}
		if _, err := h.Apply(context.Background(), &handlers.Call{Command: cmd}); !handlers.IsPermanent(err) {
			t.Fatalf("%s: Apply of a validator: %v, want a permanent error", action, err)
		}
	}
	if got := handlers.LockKey(mustHandler(t, mux, "accept_dispute"), &handlers.Command{DisputeID: "D9"}); got != "dispute:D9" {
		t.Fatalf("lock key %q", got)
	}
}

func mustHandler(t *testing.T, mux *handlers.Mux, action string) handlers.Handler {
	h, ok := mux.Handler(alipay.Provider, action)
	if !ok {
		t.Fatalf("%s not registered", action)
	}
	return h
}
