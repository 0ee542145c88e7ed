package sandbox

import (
	"strings"
	"testing"
	"time"
)

const escalatePath = "/aps/api/v1/disputes/initiateEscalation"

func apMerchant(t *testing.T) alipayCall {
	return alipayCall{clientID: TestKeys.AlipayPlusClientID, key: mustPriv(t, TestKeys.AlipayPlusMerchantPrivatePEM), requestTime: fixedNow}
}

// escalation returns a valid request body as a generic map, to be edited.
func escalation(reqID, paymentID string) map[string]any {
	return map[string]any{
		"disputeRequestId":             reqID,
		"paymentRequestId":             paymentID,
		"disputeReasonCode":            "7801",
		"disputeReasonCodeDescription": "MERCHANDIZE_OR_SERVICE_NOT_RECEIVED",
		"escalationAmount":             map[string]any{"currency": "USD", "value": "100"},
		"remarks":                      "remark",
	}
}

func specialFields(m map[string]any) map[string]any {
	m["merchantDisputeId"] = "MD1"
	m["customerIdAssignedByMerchant"] = "C1"
	m["merchantNotRefundRecord"] = []any{map[string]any{"attachmentType": "MERCHANT_NOT_REFUND_RECORDS", "content": "QUJD", "contentType": "pdf"}}
	return m
}

func TestInitiateEscalationFieldRules(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	pub := mustPub(t, TestKeys.AlipayPlusProviderPublicPEM)
	pay := s.CreateAlipayPlusPayment(AlipayPlusPayment{Amount: Amount{"USD", 10000}}).PaymentRequestID
	apple := s.CreateAlipayPlusPayment(AlipayPlusPayment{Merchant: "APPLE"}).PaymentRequestID
	google := s.CreateAlipayPlusPayment(AlipayPlusPayment{Merchant: "Google"}).PaymentRequestID
	att := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	n := 0
	tests := []struct {
		name string
		pay  string
		edit func(m map[string]any)
		code string
	}{
		{"missing disputeRequestId", pay, func(m map[string]any) { delete(m, "disputeRequestId") }, "PARAM_ILLEGAL"},
		{"disputeRequestId 65 chars", pay, func(m map[string]any) { m["disputeRequestId"] = strings.Repeat("a", 65) }, "PARAM_ILLEGAL"},
		{"disputeRequestId not a string", pay, func(m map[string]any) { m["disputeRequestId"] = 12 }, "PARAM_ILLEGAL"},
		{"missing paymentRequestId", pay, func(m map[string]any) { delete(m, "paymentRequestId") }, "PARAM_ILLEGAL"},
		{"paymentRequestId 65 chars", pay, func(m map[string]any) { m["paymentRequestId"] = strings.Repeat("1", 65) }, "PARAM_ILLEGAL"},
		{"missing reason code", pay, func(m map[string]any) { delete(m, "disputeReasonCode") }, "PARAM_ILLEGAL"},
		{"unknown reason code", pay, func(m map[string]any) { m["disputeReasonCode"] = "7804" }, "PARAM_ILLEGAL"},
		{"missing description", pay, func(m map[string]any) { delete(m, "disputeReasonCodeDescription") }, "PARAM_ILLEGAL"},
		{"description of another code", pay, func(m map[string]any) { m["disputeReasonCodeDescription"] = "REFUND_NOT_PROCESSED" }, "PARAM_ILLEGAL"},
		{"unknown description", pay, func(m map[string]any) { m["disputeReasonCodeDescription"] = "OTHER" }, "PARAM_ILLEGAL"},
		{"7802 AMOUNT_DIFFER", pay, func(m map[string]any) {
			m["disputeReasonCode"], m["disputeReasonCodeDescription"] = "7802", "AMOUNT_DIFFER"
		}, "SUCCESS"},
		{"7803 USER_DENIED", pay, func(m map[string]any) {
			m["disputeReasonCode"], m["disputeReasonCodeDescription"] = "7803", "USER_DENIED_PARTICIPANTING_IN_A_TRANSACTION"
		}, "SUCCESS"},
		{"missing amount", pay, func(m map[string]any) { delete(m, "escalationAmount") }, "PARAM_ILLEGAL"},
		{"currency 2 chars", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "US", "value": "1"} }, "PARAM_ILLEGAL"},
		{"currency 4 chars", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USDD", "value": "1"} }, "PARAM_ILLEGAL"},
		{"currency missing", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"value": "1"} }, "PARAM_ILLEGAL"},
		{"value missing", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USD"} }, "PARAM_ILLEGAL"},
		{"value 0", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USD", "value": "0"} }, "PARAM_ILLEGAL"},
		{"value negative", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USD", "value": "-5"} }, "PARAM_ILLEGAL"},
		{"value decimal", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USD", "value": "1.50"} }, "PARAM_ILLEGAL"},
		{"value plus sign", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USD", "value": "+5"} }, "PARAM_ILLEGAL"},
		{"value a JSON number", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USD", "value": 5} }, "PARAM_ILLEGAL"},
		{"remarks empty", pay, func(m map[string]any) { m["remarks"] = "" }, "PARAM_ILLEGAL"},
		{"remarks null", pay, func(m map[string]any) { m["remarks"] = nil }, "SUCCESS"},
		{"remarks 1025", pay, func(m map[string]any) { m["remarks"] = strings.Repeat("r", 1025) }, "PARAM_ILLEGAL"},
		{"remarks 1024", pay, func(m map[string]any) { m["remarks"] = strings.Repeat("r", 1024) }, "SUCCESS"},
		{"merchantDisputeId empty", pay, func(m map[string]any) { m["merchantDisputeId"] = "" }, "PARAM_ILLEGAL"},
		{"merchantDisputeId 33", pay, func(m map[string]any) { m["merchantDisputeId"] = strings.Repeat("m", 33) }, "PARAM_ILLEGAL"},
		{"customerId 33", pay, func(m map[string]any) { m["customerIdAssignedByMerchant"] = strings.Repeat("c", 33) }, "PARAM_ILLEGAL"},
		{"occur time bad", pay, func(m map[string]any) { m["disputeOccurTime"] = "yesterday" }, "PARAM_ILLEGAL"},
		{"occur time empty", pay, func(m map[string]any) { m["disputeOccurTime"] = "" }, "PARAM_ILLEGAL"},
		{"occur time ok", pay, func(m map[string]any) { m["disputeOccurTime"] = "2026-11-20T12:01:01+08:00" }, "SUCCESS"},
		{"attachment without type", pay, func(m map[string]any) { m["supportingDocumentation"] = []any{att("file", "f.pdf")} }, "PARAM_ILLEGAL"},
		{"attachment bad type", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "SELFIE", "file", "f")}
		}, "PARAM_ILLEGAL"},
		{"attachment file and content", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "content", "QUJD", "contentType", "pdf")}
		}, "PARAM_ILLEGAL"},
		{"attachment neither file nor content", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "attachmentName", "x")}
		}, "PARAM_ILLEGAL"},
		{"content without contentType", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "QUJD")}
		}, "PARAM_ILLEGAL"},
		{"contentType not in enum", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "QUJD", "contentType", "exe")}
		}, "PARAM_ILLEGAL"},
		{"contentType 9 chars", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "QUJD", "contentType", "pdfpdfpdf")}
		}, "PARAM_ILLEGAL"},
		{"content not base64", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "@@@", "contentType", "pdf")}
		}, "PARAM_ILLEGAL"},
		{"content 2048004 chars", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", strings.Repeat("A", 2048004), "contentType", "pdf")}
		}, "PARAM_ILLEGAL"},
		{"content 2048000 chars", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", strings.Repeat("A", 2048000), "contentType", "png")}
		}, "SUCCESS"},
		{"file 1025 chars", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", strings.Repeat("f", 1025))}
		}, "PARAM_ILLEGAL"},
		{"attachmentName 129 chars", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "attachmentName", strings.Repeat("n", 129))}
		}, "PARAM_ILLEGAL"},
		{"attachmentName empty", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "attachmentName", "")}
		}, "PARAM_ILLEGAL"},
		{"file attachment", pay, func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "PROOF_OF_DELIVERY", "file", "https://x/f.pdf", "attachmentName", "pod")}
		}, "SUCCESS"},
		{"bad merchantNotRefundRecord", pay, func(m map[string]any) {
			m["merchantNotRefundRecord"] = []any{att("attachmentType", "OTHER_MATERIAL")}
		}, "PARAM_ILLEGAL"},
		{"unknown payment", "NOPE", nil, "ORDER_NOT_EXIST"},
		{"other currency", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "EUR", "value": "1"} }, "CURRENCY_NOT_SUPPORT"},
		{"amount above available", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USD", "value": "10001"} }, "ESCALATION_AMOUNT_EXCEED_LIMIT"},
		{"amount equal to available", pay, func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "USD", "value": "10000"} }, "SUCCESS"},
		{"special without merchantDisputeId", apple, func(m map[string]any) { specialFields(m); delete(m, "merchantDisputeId") }, "SPECIAL_MERCHANT_REQUIRES_MERCHANT_DISPUTE_ID"},
		{"special without customer id", apple, func(m map[string]any) { specialFields(m); delete(m, "customerIdAssignedByMerchant") }, "SPECIAL_MERCHANT_REQUIRES_MERCHANT_CUSTOMER_ID"},
		{"special without not-refund record", apple, func(m map[string]any) { specialFields(m); delete(m, "merchantNotRefundRecord") }, "SPECIAL_MERCHANT_REQUIRES_MERCHANT_NOT_REFUND_RECORD"},
		{"special with empty not-refund record", google, func(m map[string]any) { specialFields(m); m["merchantNotRefundRecord"] = []any{} }, "SPECIAL_MERCHANT_REQUIRES_MERCHANT_NOT_REFUND_RECORD"},
		{"special null merchantDisputeId", google, func(m map[string]any) { specialFields(m); m["merchantDisputeId"] = nil }, "SPECIAL_MERCHANT_REQUIRES_MERCHANT_DISPUTE_ID"},
		{"special complete", apple, func(m map[string]any) { specialFields(m) }, "SUCCESS"},
		{"special complete (case-insensitive merchant)", google, func(m map[string]any) { specialFields(m) }, "SUCCESS"},
	}
	for _, tt := range tests {
		n++
		body := escalation("req-"+jsonInt(n), tt.pay)
		if tt.edit != nil {
			tt.edit(body)
		}
		got := postAlipay(t, ts, escalatePath, apMerchant(t), pub, body)
		if got.Result.ResultCode != tt.code {
			t.Errorf("%s: %+v, want %s", tt.name, got.Result, tt.code)
			continue
		}
		if tt.code == "SUCCESS" {
			if got.Result.ResultStatus != "S" || got.raw["disputeId"] == "" {
				t.Errorf("%s: %s", tt.name, got.body)
			}
			// Free the payment again for the next row.
			if _, ok := s.EndEscalation(got.raw["disputeId"].(string), EscalationCanceled); !ok {
				t.Fatalf("%s: cannot cancel", tt.name)
			}
		} else if got.Result.ResultStatus != "F" {
			t.Errorf("%s: resultStatus %s", tt.name, got.Result.ResultStatus)
		}
	}
}

func TestEscalationCountRules(t *testing.T) {
	s, ts, c := newTestServer(t, Config{Disputes: -1})
	pub := mustPub(t, TestKeys.AlipayPlusProviderPublicPEM)
	pay := s.CreateAlipayPlusPayment(AlipayPlusPayment{}).PaymentRequestID
	n := 0
	send := func(want string) string {
		t.Helper()
		n++
		call := apMerchant(t)
		call.requestTime = c.t
		got := postAlipay(t, ts, escalatePath, call, pub, escalation("cnt-"+jsonInt(n), pay))
		if got.Result.ResultCode != want {
			t.Fatalf("escalation %d: %+v, want %s", n, got.Result, want)
		}
		id, _ := got.raw["disputeId"].(string)
		return id
	}
	first := send("SUCCESS")
	send("EXCEEDS_ESCALATION_REQUEST_LIMIT") // one ongoing
	s.EndEscalation(first, EscalationCanceled)
	second := send("SUCCESS") // canceled ones do not count
	s.EndEscalation(second, EscalationReplied)
	c.t = c.t.Add(NextEscalationWindow - time.Hour)
	third := send("SUCCESS") // within 25 days of the reply
	send("EXCEEDS_ESCALATION_REQUEST_LIMIT")
	s.EndEscalation(third, EscalationClosed)
	send("EXCEEDS_ESCALATION_REQUEST_LIMIT") // two non-canceled
	if got := len(s.EffectsFor(ProviderAlipayPlus, "", "")); got != 3 {
		t.Fatalf("%d effects, want 3", got)
	}
	if es := s.Escalations(pay); len(es) != 3 || es[0].Status != EscalationCanceled || es[2].Status != EscalationClosed {
		t.Fatalf("escalations %+v", es)
	}
}

func TestEscalationTimeWindows(t *testing.T) {
	s, ts, c := newTestServer(t, Config{Disputes: -1})
	pub := mustPub(t, TestKeys.AlipayPlusProviderPublicPEM)
	old := s.CreateAlipayPlusPayment(AlipayPlusPayment{PaymentTime: fixedNow.Add(-FirstEscalationWindow - time.Minute)}).PaymentRequestID
	edge := s.CreateAlipayPlusPayment(AlipayPlusPayment{PaymentTime: fixedNow.Add(-FirstEscalationWindow + time.Minute)}).PaymentRequestID
	late := s.CreateAlipayPlusPayment(AlipayPlusPayment{}).PaymentRequestID
	n := 0
	send := func(pay, want string) string {
		t.Helper()
		n++
		call := apMerchant(t)
		call.requestTime = c.t
		got := postAlipay(t, ts, escalatePath, call, pub, escalation("win-"+jsonInt(n), pay))
		if got.Result.ResultCode != want {
			t.Fatalf("%s: %+v, want %s", pay, got.Result, want)
		}
		id, _ := got.raw["disputeId"].(string)
		return id
	}
	send(old, "PROCESS_FAIL")
	send(edge, "SUCCESS")
	first := send(late, "SUCCESS")
	s.EndEscalation(first, EscalationReplied)
	c.t = c.t.Add(NextEscalationWindow + time.Minute)
	send(late, "PROCESS_FAIL")
}

func TestEscalationIdempotency(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	pub := mustPub(t, TestKeys.AlipayPlusProviderPublicPEM)
	pay := s.CreateAlipayPlusPayment(AlipayPlusPayment{}).PaymentRequestID
	other := s.CreateAlipayPlusPayment(AlipayPlusPayment{}).PaymentRequestID
	a := postAlipay(t, ts, escalatePath, apMerchant(t), pub, escalation("idem-1", pay))
	b := postAlipay(t, ts, escalatePath, apMerchant(t), pub, escalation("idem-1", pay))
	if a.Result.ResultCode != "SUCCESS" || string(a.body) != string(b.body) {
		t.Fatalf("replay differs:\n%s\n%s", a.body, b.body)
	}
	// Even with other fields changed, the same id and payment replays.
	changed := escalation("idem-1", pay)
	changed["remarks"] = "changed"
	if c := postAlipay(t, ts, escalatePath, apMerchant(t), pub, changed); string(c.body) != string(a.body) {
		t.Fatalf("changed body not replayed: %s", c.body)
	}
	if c := postAlipay(t, ts, escalatePath, apMerchant(t), pub, escalation("idem-1", other)); c.Result.ResultCode != "REPEAT_REQ_INCONSISTENT" || c.Result.ResultStatus != "F" {
		t.Fatalf("other payment: %+v", c.Result)
	}
	effects := s.EffectsFor(ProviderAlipayPlus, "idem-1", "")
	if len(effects) != 1 || effects[0].DisputeID != a.raw["disputeId"] || effects[0].Detail["paymentRequestId"] != pay {
		t.Fatalf("effects %+v", effects)
	}
	// A refused request is not stored: corrected, the same id succeeds.
	bad := escalation("idem-2", other)
	bad["escalationAmount"] = map[string]any{"currency": "USD", "value": "999999"}
	if c := postAlipay(t, ts, escalatePath, apMerchant(t), pub, bad); c.Result.ResultCode != "ESCALATION_AMOUNT_EXCEED_LIMIT" {
		t.Fatalf("bad: %+v", c.Result)
	}
	if c := postAlipay(t, ts, escalatePath, apMerchant(t), pub, escalation("idem-2", other)); c.Result.ResultCode != "SUCCESS" {
		t.Fatalf("corrected: %+v", c.Result)
	}
}

func TestAlipayPlusSignatureRefusals(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	pub := mustPub(t, TestKeys.AlipayPlusProviderPublicPEM)
	pay := s.CreateAlipayPlusPayment(AlipayPlusPayment{}).PaymentRequestID
	tests := []struct {
		name string
		mod  func(*alipayCall)
		code string
	}{
		{"alipay key on alipayplus", func(c *alipayCall) { c.key = mustPriv(t, TestKeys.AlipayMerchantPrivatePEM) }, "INVALID_SIGNATURE"},
		{"changed body", func(c *alipayCall) {
			c.tamper = func(b []byte) []byte { return []byte(strings.Replace(string(b), `"100"`, `"101"`, 1)) }
		}, "INVALID_SIGNATURE"},
		{"stale", func(c *alipayCall) { c.requestTime = fixedNow.Add(-10 * time.Minute) }, "INVALID_SIGNATURE"},
		{"alipay client id", func(c *alipayCall) { c.clientID = TestKeys.AlipayClientID }, "INVALID_CLIENT"},
	}
	for _, tt := range tests {
		c := apMerchant(t)
		tt.mod(&c)
		got := postAlipay(t, ts, escalatePath, c, pub, escalation("sig", pay))
		if got.Result.ResultCode != tt.code {
			t.Errorf("%s: %+v", tt.name, got.Result)
		}
	}
	if len(s.Effects()) != 0 {
		t.Fatalf("applied: %+v", s.Effects())
	}
}
