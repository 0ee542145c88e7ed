package sandbox

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

const (
	acceptPath = "/ams/api/v1/payments/acceptDispute"
	supplyPath = "/ams/api/v1/payments/supplyDefenseDocument"
)

func alipayMerchant(t *testing.T) alipayCall {
	return alipayCall{clientID: TestKeys.AlipayClientID, key: mustPriv(t, TestKeys.AlipayMerchantPrivatePEM), requestTime: fixedNow}
}

func TestAlipayAcceptDispute(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	pub := mustPub(t, TestKeys.AlipayProviderPublicPEM)
	open := s.CreateAlipayDispute(AlipayDispute{}).DisputeID
	overdue := s.CreateAlipayDispute(AlipayDispute{DefenseDueTime: fixedNow.Add(-time.Second)}).DisputeID
	defended := s.CreateAlipayDispute(AlipayDispute{Status: AlipayStatusDefenseSupplied}).DisputeID
	tests := []struct {
		name string
		body any
		code string
	}{
		{"missing disputeId", map[string]string{}, "PARAM_ILLEGAL"},
		{"empty disputeId", map[string]string{"disputeId": ""}, "PARAM_ILLEGAL"},
		{"disputeId too long", map[string]string{"disputeId": strings.Repeat("1", 65)}, "PARAM_ILLEGAL"},
		{"disputeId not a string", map[string]int{"disputeId": 5}, "PARAM_ILLEGAL"},
		{"unknown dispute", map[string]string{"disputeId": "202401010000"}, "PARAM_ILLEGAL"},
		{"overdue", map[string]string{"disputeId": overdue}, "TIME_EXCEEDS_LIMIT"},
		{"already defended", map[string]string{"disputeId": defended}, "REPEAT_REQUEST"},
		{"accept", map[string]string{"disputeId": open}, "SUCCESS"},
		{"accept again", map[string]string{"disputeId": open}, "REPEAT_REQUEST"},
	}
	for _, tt := range tests {
		got := postAlipay(t, ts, acceptPath, alipayMerchant(t), pub, tt.body)
		if got.Result.ResultCode != tt.code || got.status != 200 {
			t.Errorf("%s: HTTP %d %+v, want %s", tt.name, got.status, got.Result, tt.code)
			continue
		}
		wantStatus := map[bool]string{true: "S", false: "F"}[tt.code == "SUCCESS"]
		if got.Result.ResultStatus != wantStatus {
			t.Errorf("%s: resultStatus %s", tt.name, got.Result.ResultStatus)
		}
		if tt.code == "SUCCESS" && (got.raw["disputeId"] != open || got.raw["disputeResolutionTime"] != "2026-11-23T10:00:00Z") {
			t.Errorf("%s: body %s", tt.name, got.body)
		}
	}
	if d, _ := s.AlipayDisputeByID(open); d.Status != AlipayStatusAccepted {
		t.Fatalf("status %s", d.Status)
	}
	if e := s.EffectsFor(ProviderAlipay, "", ""); len(e) != 1 || e[0].DisputeID != open || e[0].Operation != "acceptDispute" {
		t.Fatalf("effects %+v", e)
	}
}

func TestAlipaySupplyDefenseDocument(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	pub := mustPub(t, TestKeys.AlipayProviderPublicPEM)
	open := s.CreateAlipayDispute(AlipayDispute{}).DisputeID
	accepted := s.CreateAlipayDispute(AlipayDispute{Status: AlipayStatusAccepted}).DisputeID
	overdue := s.CreateAlipayDispute(AlipayDispute{DefenseDueTime: fixedNow.Add(-time.Second)}).DisputeID
	ev := base64.StdEncoding.EncodeToString([]byte("%PDF-1.4"))
	tests := []struct {
		name string
		body map[string]string
		code string
	}{
		{"missing evidence", map[string]string{"disputeId": open}, "PARAM_ILLEGAL"},
		{"evidence not base64", map[string]string{"disputeId": open, "disputeEvidence": "@@@"}, "PARAM_ILLEGAL"},
		{"evidence too long", map[string]string{"disputeId": open, "disputeEvidence": strings.Repeat("A", 1000004)}, "PARAM_ILLEGAL"},
		{"bad format", map[string]string{"disputeId": open, "disputeEvidence": ev, "disputeEvidenceFormat": "EXE"}, "PARAM_ILLEGAL"},
		{"missing disputeId", map[string]string{"disputeEvidence": ev}, "PARAM_ILLEGAL"},
		{"unknown dispute", map[string]string{"disputeId": "x", "disputeEvidence": ev}, "PARAM_ILLEGAL"},
		{"accepted", map[string]string{"disputeId": accepted, "disputeEvidence": ev}, "REPEAT_REQUEST"},
		{"overdue", map[string]string{"disputeId": overdue, "disputeEvidence": ev}, "TIME_EXCEEDS_LIMIT"},
		{"supply", map[string]string{"disputeId": open, "disputeEvidence": ev, "disputeEvidenceFormat": "pdf"}, "SUCCESS"},
		{"supply again", map[string]string{"disputeId": open, "disputeEvidence": ev}, "REPEAT_REQUEST"},
		{"accept after defense", nil, "REPEAT_REQUEST"},
	}
	for _, tt := range tests {
		path, body := supplyPath, tt.body
		if body == nil {
			path, body = acceptPath, map[string]string{"disputeId": open}
		}
		got := postAlipay(t, ts, path, alipayMerchant(t), pub, body)
		if got.Result.ResultCode != tt.code {
			t.Errorf("%s: %+v, want %s", tt.name, got.Result, tt.code)
		}
	}
	if e := s.EffectsFor(ProviderAlipay, "", open); len(e) != 1 || e[0].Operation != "supplyDefenseDocument" || e[0].Detail["format"] != "PDF" {
		t.Fatalf("effects %+v", e)
	}
}

// TestAlipaySignatureRefusals proves that a wrong key, a changed body, a
// stale timestamp and an unknown client are refused, and nothing applied.
func TestAlipaySignatureRefusals(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	pub := mustPub(t, TestKeys.AlipayProviderPublicPEM)
	id := s.CreateAlipayDispute(AlipayDispute{}).DisputeID
	wrongKey := mustPriv(t, TestKeys.AlipayPlusMerchantPrivatePEM)
	tests := []struct {
		name string
		mod  func(*alipayCall)
		code string
	}{
		{"wrong key", func(c *alipayCall) { c.key = wrongKey }, "INVALID_SIGNATURE"},
		{"changed body", func(c *alipayCall) {
			c.tamper = func(b []byte) []byte { return bytes.Replace(b, []byte(`{`), []byte(`{ `), 1) }
		}, "INVALID_SIGNATURE"},
		{"stale timestamp", func(c *alipayCall) { c.requestTime = fixedNow.Add(-6 * time.Minute) }, "INVALID_SIGNATURE"},
		{"future timestamp", func(c *alipayCall) { c.requestTime = fixedNow.Add(6 * time.Minute) }, "INVALID_SIGNATURE"},
		{"missing signature", func(c *alipayCall) { c.header = map[string]string{"Signature": ""} }, "INVALID_SIGNATURE"},
		{"garbage signature", func(c *alipayCall) {
			c.header = map[string]string{"Signature": "algorithm=RSA256,keyVersion=1,signature=AAAA"}
		}, "INVALID_SIGNATURE"},
		{"missing request time", func(c *alipayCall) { c.header = map[string]string{"Request-Time": ""} }, "INVALID_SIGNATURE"},
		{"unknown client", func(c *alipayCall) { c.clientID = "SOMEONE_ELSE" }, "INVALID_CLIENT"},
		{"alipayplus client on alipay", func(c *alipayCall) { c.clientID = TestKeys.AlipayPlusClientID }, "INVALID_CLIENT"},
		{"within the skew", func(c *alipayCall) { c.requestTime = fixedNow.Add(-4 * time.Minute) }, "SUCCESS"},
	}
	for _, tt := range tests {
		c := alipayMerchant(t)
		tt.mod(&c)
		got := postAlipay(t, ts, acceptPath, c, pub, map[string]string{"disputeId": id})
		if got.Result.ResultCode != tt.code || got.status != 200 {
			t.Errorf("%s: HTTP %d %+v, want %s", tt.name, got.status, got.Result, tt.code)
		}
		if tt.code != "SUCCESS" && len(s.Effects()) != 0 {
			t.Fatalf("%s: applied %+v", tt.name, s.Effects())
		}
	}
}

// TestAlipayAnswersAreSigned checks the answer signature against the
// provider's public key and that another key does not verify it.
func TestAlipayAnswersAreSigned(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	id := s.CreateAlipayDispute(AlipayDispute{}).DisputeID
	got := postAlipay(t, ts, acceptPath, alipayMerchant(t), mustPub(t, TestKeys.AlipayProviderPublicPEM), map[string]string{"disputeId": id})
	if got.header.Get("Client-Id") != TestKeys.AlipayClientID || got.header.Get("Response-Time") == "" {
		t.Fatalf("headers %v", got.header)
	}
	other := mustPub(t, TestKeys.AlipayPlusProviderPublicPEM)
	if err := verifyAnswer(other, acceptPath, got); err == nil {
		t.Fatal("answer verified with the wrong key")
	}
}

func TestAlipayUnknownInterface(t *testing.T) {
	_, ts, _ := newTestServer(t, Config{Disputes: -1})
	got := postAlipay(t, ts, "/ams/api/v1/payments/notAnAPI", alipayMerchant(t), mustPub(t, TestKeys.AlipayProviderPublicPEM), map[string]string{})
	if got.Result.ResultCode != "NO_INTERFACE_DEF" || got.Result.ResultStatus != "F" {
		t.Fatalf("%+v", got.Result)
	}
}

func TestEffectAttributionHeaders(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	id := s.CreateAlipayDispute(AlipayDispute{}).DisputeID
	c := alipayMerchant(t)
	c.header = map[string]string{"Dispute-Request-Id": "ops-1", "Idempotency-Key": "k-1"}
	postAlipay(t, ts, acceptPath, c, nil, map[string]string{"disputeId": id})
	e := s.EffectsFor("", "ops-1", "")
	if len(e) != 1 || e[0].DisputeID != id || e[0].IdempotencyKey != "k-1" || !e[0].At.Equal(fixedNow) {
		t.Fatalf("effects %+v", e)
	}
}
