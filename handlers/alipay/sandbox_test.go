package alipay_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipay"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient/alipayfake"
	"github.com/disputesync/disputesync/sandbox"
)

type sandboxBundle struct {
	srv *sandbox.Server
	mux *handlers.Mux
}

// withSandbox serves a sandbox (wrapped by wrap, if set) and registers a
// client that trusts the published provider key.
func withSandbox(t *testing.T, cfg sandbox.Config, ev handlers.Evidence, wrap func(http.Handler) http.Handler) *sandboxBundle {
	t.Helper()
	cfg.Disputes = -1
	srv := sandbox.New(cfg)
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	keys := alipayfake.AlipayKeys(t)
	c, err := alipay.New(alipay.Config{BaseURL: ts.URL, ClientID: keys.ClientID, PrivateKey: keys.MerchantKey,
		ProviderPublicKey: keys.ProviderPub, Timeout: time.Minute, Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	mux := handlers.NewMux()
	c.Register(mux)
	return &sandboxBundle{srv: srv, mux: mux}
}

func (b *sandboxBundle) do(t *testing.T, action string, cmd *handlers.Command, recover bool) (*handlers.Response, error) {
	t.Helper()
	h, _ := b.mux.Handler(alipay.Provider, action)
	if err := h.Validate(cmd); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return h.Apply(context.Background(), &handlers.Call{Provider: alipay.Provider, Action: action, Command: cmd, Attempt: 1, Recover: recover})
}

func TestSandboxAcceptDispute(t *testing.T) {
	t.Parallel()
	b := withSandbox(t, sandbox.Config{}, nil, nil)
	d := b.srv.CreateAlipayDispute(sandbox.AlipayDispute{})
	cmd := &handlers.Command{DisputeRequestID: "acc-1", DisputeID: d.DisputeID}

	resp, err := b.do(t, "accept_dispute", cmd, false)
	if err != nil || resp.Code != "SUCCESS" {
		t.Fatalf("accept: %+v %v", resp, err)
	}
	if got, _ := b.srv.AlipayDisputeByID(d.DisputeID); got.Status != sandbox.AlipayStatusAccepted {
		t.Fatalf("sandbox status %s", got.Status)
	}
	// The same command retried after an unknown outcome: REPEAT_REQUEST is
	// the proof, and nothing is applied twice.
	resp, err = b.do(t, "accept_dispute", cmd, true)
	if err != nil || resp.Code != "REPEAT_REQUEST" || resp.Message != alipayclient.MessageAlreadyApplied {
		t.Fatalf("recovery: %+v %v", resp, err)
	}
	// A fresh command on an accepted dispute: failed.
	_, err = b.do(t, "accept_dispute", &handlers.Command{DisputeRequestID: "acc-2", DisputeID: d.DisputeID}, false)
	if !handlers.IsPermanent(err) || handlers.Code(err) != "REPEAT_REQUEST" {
		t.Fatalf("second command: %v", err)
	}
	if n := len(b.srv.EffectsFor(sandbox.ProviderAlipay, "", d.DisputeID)); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
	if e := b.srv.EffectsFor(sandbox.ProviderAlipay, "acc-1", ""); len(e) != 1 {
		t.Fatalf("effect not attributed to the command: %+v", b.srv.Effects())
	}
	// An unknown dispute: the provider refuses.
	_, err = b.do(t, "accept_dispute", &handlers.Command{DisputeRequestID: "acc-3", DisputeID: "NO_SUCH_DISPUTE"}, false)
	if !handlers.IsPermanent(err) || handlers.Code(err) != "PARAM_ILLEGAL" {
		t.Fatalf("unknown dispute: %v", err)
	}
}

func TestSandboxSupplyDefenseDocumentFromEvidence(t *testing.T) {
	t.Parallel()
	doc := make([]byte, 750000) // the largest that fits 1 000 000 Base64 characters
	for i := range doc {
		doc[i] = byte(i * 7)
	}
	sum := sha256.Sum256(doc)
	b := withSandbox(t, sandbox.Config{}, memEvidence{"defense.pdf": doc}, nil)
	d := b.srv.CreateAlipayDispute(sandbox.AlipayDispute{})
	cmd := &handlers.Command{DisputeRequestID: "def-1", DisputeID: d.DisputeID, Params: json.RawMessage(fmt.Sprintf(
		`{"disputeEvidenceRef":{"name":"defense.pdf","digest":"SHA-256=%s","size":%d},"disputeEvidenceFormat":"pdf"}`,
		base64.URLEncoding.EncodeToString(sum[:]), len(doc)))}
	resp, err := b.do(t, "supply_defense_document", cmd, false)
	if err != nil || resp.Code != "SUCCESS" {
		t.Fatalf("supply: %+v %v", resp, err)
	}
	eff := b.srv.EffectsFor(sandbox.ProviderAlipay, "def-1", d.DisputeID)
	if len(eff) != 1 || eff[0].Detail["bytes"] != fmt.Sprint(len(doc)) || eff[0].Detail["format"] != "PDF" {
		t.Fatalf("effects %+v", eff)
	}
}

func TestSandboxForgedOrMissingSignature(t *testing.T) {
	t.Parallel()
	forged := sandbox.TestKeys
	// A sandbox that signs with a key the client does not trust.
	forged.AlipayProviderPrivatePEM = sandbox.TestKeys.AlipayPlusProviderPrivatePEM
	stripSignature := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				if k != "Signature" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
		})
	}
	cases := map[string]*sandboxBundle{
		"forged":  withSandbox(t, sandbox.Config{Keys: forged}, nil, nil),
		"missing": withSandbox(t, sandbox.Config{}, nil, stripSignature),
	}
	for name, b := range cases {
		d := b.srv.CreateAlipayDispute(sandbox.AlipayDispute{})
		resp, err := b.do(t, "accept_dispute", &handlers.Command{DisputeRequestID: "f-" + name, DisputeID: d.DisputeID}, false)
		if err == nil || resp != nil || !errors.Is(err, alipayclient.ErrUnverified) {
			t.Fatalf("%s signature: %+v %v, want an ErrUnverified error", name, resp, err)
		}
	}
}
