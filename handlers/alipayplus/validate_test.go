package alipayplus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipayplus"
)

// params builds initiateEscalation params from a valid base, changed by mod.
func params(mod func(m map[string]any)) json.RawMessage {
	m := map[string]any{
		"paymentRequestId":             "pay-1",
		"disputeReasonCode":            "7801",
		"disputeReasonCodeDescription": "NOT_AS_DESCRIBED",
		"escalationAmount":             map[string]any{"currency": "HKD", "value": "100"},
	}
	if mod != nil {
		mod(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func att(kv ...string) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestValidationInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cmd  handlers.Command
		want string
	}{
		{"no disputeRequestId", handlers.Command{Params: params(nil)}, "disputeRequestId: is required"},
		{"disputeRequestId too long", handlers.Command{DisputeRequestID: strings.Repeat("a", 65), Params: params(nil)}, "disputeRequestId: must be at most 64 characters"},
		{"params.disputeRequestId differs", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeRequestId"] = "e2" })}, "params.disputeRequestId: must equal the command's disputeRequestId"},
		{"no params", handlers.Command{DisputeRequestID: "e1"}, "params.paymentRequestId: is required"},
		{"paymentRequestId missing", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { delete(m, "paymentRequestId") })}, "params.paymentRequestId: is required"},
		{"paymentRequestId null", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["paymentRequestId"] = nil })}, "params.paymentRequestId: is required"},
		{"paymentRequestId too long", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["paymentRequestId"] = strings.Repeat("9", 65) })}, "params.paymentRequestId: must be at most 64 characters"},
		{"paymentRequestId a number", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["paymentRequestId"] = 12345 })}, "params.paymentRequestId: must be a JSON string"},
		{"unknown field (typo)", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["remark"] = "x" })}, "params.remark: is not a field of initiateEscalation"},
		{"disputeOccurTime not ISO 8601", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeOccurTime"] = "2019-11-27 12:01:01" })}, "params.disputeOccurTime: must be an ISO 8601 date-time such as 2019-11-27T12:01:01+08:00"},
		{"reason code unknown", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeReasonCode"] = "7804" })}, "params.disputeReasonCode: must be one of 7801, 7802, 7803"},
		{"reason code a number", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeReasonCode"] = 7801 })}, "params.disputeReasonCode: must be a JSON string"},
		{"description unknown", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["disputeReasonCodeDescription"] = "FRAUD" })},
			"params.disputeReasonCodeDescription: must be one of MERCHANDIZE_OR_SERVICE_NOT_RECEIVED, NOT_AS_DESCRIBED, REFUND_NOT_PROCESSED, AMOUNT_DIFFER, DUPLICATE_PROCESSED, PAIDED_BY_OTHER_MEANS, USER_DENIED_PARTICIPANTING_IN_A_TRANSACTION"},
		{"amount missing", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { delete(m, "escalationAmount") })}, "params.escalationAmount: is required"},
		{"amount not an object", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = "100 HKD" })}, "params.escalationAmount: must be a JSON object"},
		{"amount value a number", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": 100} })}, "params.escalationAmount.value: must be a JSON string"},
		{"amount value zero", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "0"} })}, "params.escalationAmount.value: must be a natural number string (1..)"},
		{"amount value decimal", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "1.00"} })}, "params.escalationAmount.value: must be a natural number string (1..)"},
		{"amount value negative", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "-5"} })}, "params.escalationAmount.value: must be a natural number string (1..)"},
		{"amount value leading zero", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "0100"} })}, "params.escalationAmount.value: must be a natural number string (1..)"},
		{"amount value empty", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKD", "value": ""} })}, `params.escalationAmount.value: must not be "" (leave an optional field out, or null)`},
		{"currency too long", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "HKDD", "value": "1"} })}, "params.escalationAmount.currency: must be at most 3 characters"},
		{"currency lower case", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["escalationAmount"] = map[string]any{"currency": "hkd", "value": "1"} })}, "params.escalationAmount.currency: must be a 3-letter ISO 4217 code such as EUR"},
		{"amount unknown field", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["escalationAmount"] = map[string]any{"currency": "HKD", "value": "1", "amount": "1"}
		})}, "params.escalationAmount.amount: is not a field of Amount"},
		{"merchantDisputeId too long", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["merchantDisputeId"] = strings.Repeat("m", 33) })}, "params.merchantDisputeId: must be at most 32 characters"},
		{"customerId empty", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["customerIdAssignedByMerchant"] = "" })}, `params.customerIdAssignedByMerchant: must not be "" (leave an optional field out, or null)`},
		{"remarks too long", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["remarks"] = strings.Repeat("ü", 1025) })}, "params.remarks: must be at most 1024 characters"},
		{"attachments not an array", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["supportingDocumentation"] = att("attachmentType", "OTHER_MATERIAL") })}, "params.supportingDocumentation: must be a JSON array"},
		{"attachments empty", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["supportingDocumentation"] = []any{} })}, "params.supportingDocumentation: must not be an empty array (leave an optional field out, or null)"},
		{"attachment type missing", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) { m["supportingDocumentation"] = []any{att("file", "f")} })}, "params.supportingDocumentation[0].attachmentType: is required"},
		{"attachment type unknown", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f"), att("attachmentType", "SELFIE", "file", "f")}
		})}, "params.supportingDocumentation[1].attachmentType: must be one of ARTICLES_OF_ASSOCIATION, ENTERPRISES_ANNUAL_INSPECTION_REPORT, PROOF_OF_ADDRESS, OTHER_MATERIAL, REGISTRATION_CERTIFICATE, TRANSACTION_RECEIPT, PROOF_OF_DELIVERY, MERCHANT_INFORMATION, END_USER_INFORMATION, OTHER_DOCUMENTATION, MERCHANT_NOT_REFUND_RECORDS, SUPPORTING_DOCUMENTATION"},
		{"attachment file and content", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "content", "QQ==", "contentType", "pdf")}
		})}, "params.supportingDocumentation[0].file: must not be given together with content (file xor content)"},
		{"attachment neither file nor content", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "attachmentName", "a")}
		})}, "params.supportingDocumentation[0].content: is required when file is not given (file xor content)"},
		{"attachment content without type", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "QQ==")}
		})}, "params.supportingDocumentation[0].contentType: is required when content is given"},
		{"attachment content type unknown", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "QQ==", "contentType", "tiff")}
		})}, "params.supportingDocumentation[0].contentType: must be one of pdf, doc, docx, xls, xlsx, bmp, jpg, jpeg, png, gif"},
		{"attachment content not base64", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", "%%%", "contentType", "pdf")}
		})}, "params.supportingDocumentation[0].content: must be standard Base64"},
		{"attachment content too long", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "content", strings.Repeat("A", 2048004), "contentType", "pdf")}
		})}, "params.supportingDocumentation[0].content: must be at most 2048000 characters"},
		{"attachment file too long", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["merchantNotRefundRecord"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", strings.Repeat("f", 1025))}
		})}, "params.merchantNotRefundRecord[0].file: must be at most 1024 characters"},
		{"attachment name too long", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["merchantNotRefundRecord"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "attachmentName", strings.Repeat("n", 129))}
		})}, "params.merchantNotRefundRecord[0].attachmentName: must be at most 128 characters"},
		{"attachment content and contentRef", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			a := att("attachmentType", "OTHER_MATERIAL", "content", "QQ==", "contentType", "pdf")
			a["contentRef"] = map[string]any{"name": "x"}
			m["supportingDocumentation"] = []any{a}
		})}, "params.supportingDocumentation[0].contentRef: must not be given together with content"},
		{"attachment contentRef too large", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			a := att("attachmentType", "OTHER_MATERIAL", "contentType", "pdf")
			a["contentRef"] = map[string]any{"name": "x", "size": 1536001}
			m["supportingDocumentation"] = []any{a}
		})}, "params.supportingDocumentation[0].contentRef.size: must be at most 1536000 bytes (2048000 Base64 characters)"},
		{"attachment unknown field", handlers.Command{DisputeRequestID: "e1", Params: params(func(m map[string]any) {
			m["supportingDocumentation"] = []any{att("attachmentType", "OTHER_MATERIAL", "file", "f", "fileName", "x")}
		})}, "params.supportingDocumentation[0].fileName: is not a field of Attachment"},
	}
	validators := handlers.NewMux()
	alipayplus.Validators(validators)
	b := setup(t, options{})
	for _, tc := range cases {
		for name, mux := range map[string]*handlers.Mux{"client": b.mux, "validators": validators} {
			h, _ := mux.Handler(alipayplus.Provider, "initiate_escalation")
			err := h.Validate(&tc.cmd)
			var inv *handlers.InvalidError
			if !errors.As(err, &inv) || err.Error() != tc.want {
				t.Errorf("%s (%s):\n got %v\nwant %q", tc.name, name, err, tc.want)
			}
		}
		if _, err := b.h.Apply(context.Background(), &handlers.Call{Command: &tc.cmd, Attempt: 1}); err == nil || err.Error() != tc.want {
			t.Errorf("%s: Apply %v, want %q", tc.name, err, tc.want)
		}
	}
	if n := len(b.fake.Requests()); n != 0 {
		t.Fatalf("%d provider calls for invalid commands", n)
	}
}

func TestValidationRules(t *testing.T) {
	t.Parallel()
	special := func(m map[string]any) {
		m["merchantDisputeId"] = "M-1"
		m["customerIdAssignedByMerchant"] = "C-1"
		m["merchantNotRefundRecord"] = []any{att("attachmentType", "MERCHANT_NOT_REFUND_RECORDS", "file", "https://f")}
	}
	without := func(field string) func(m map[string]any) {
		return func(m map[string]any) { special(m); delete(m, field) }
	}
	cases := []struct {
		name     string
		merchant string
		mod      func(m map[string]any)
		code     string // "" for valid
	}{
		{"description of another code", "", func(m map[string]any) { m["disputeReasonCodeDescription"] = "AMOUNT_DIFFER" }, alipayplus.CodeParamIllegal},
		{"7803 with a 7801 description", "", func(m map[string]any) {
			m["disputeReasonCode"] = "7803"
			m["disputeReasonCodeDescription"] = "NOT_AS_DESCRIBED"
		}, alipayplus.CodeParamIllegal},
		{"7803 with its description", "", func(m map[string]any) {
			m["disputeReasonCode"] = "7803"
			m["disputeReasonCodeDescription"] = "USER_DENIED_PARTICIPANTING_IN_A_TRANSACTION"
		}, ""},
		{"7802 with its description", "", func(m map[string]any) {
			m["disputeReasonCode"] = "7802"
			m["disputeReasonCodeDescription"] = "PAIDED_BY_OTHER_MEANS"
		}, ""},
		{"Apple without merchantDisputeId", "APPLE", without("merchantDisputeId"), alipayplus.CodeSpecialMerchantDisputeID},
		{"google (any case) without customer id", "Google", without("customerIdAssignedByMerchant"), alipayplus.CodeSpecialMerchantCustomerID},
		{"apple without not-refund record", "apple", without("merchantNotRefundRecord"), alipayplus.CodeSpecialMerchantNotRefund},
		{"configured special merchant", "acme-store", without("merchantDisputeId"), alipayplus.CodeSpecialMerchantDisputeID},
		{"Apple with everything", "APPLE", special, ""},
		{"ordinary merchant needs nothing", "SHOP-1", nil, ""},
	}
	b := setup(t, options{special: []string{"ACME-STORE"}})
	for _, tc := range cases {
		cmd := &handlers.Command{DisputeRequestID: "e-" + tc.name, Merchant: tc.merchant, Params: params(tc.mod)}
		err := b.h.Validate(cmd)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var re *handlers.RuleError
		if !errors.As(err, &re) || re.Code != tc.code {
			t.Errorf("%s: %v, want RuleError %s", tc.name, err, tc.code)
			continue
		}
		// Apply answers the same, without calling the provider.
		if _, err := b.apply(t, cmd); handlers.Code(err) != tc.code {
			t.Errorf("%s: Apply %v", tc.name, err)
		}
	}
	if n := len(b.fake.Requests()); n != 0 {
		t.Fatalf("%d provider calls for rule-breaking commands", n)
	}
	// The default Special Merchants apply to the CLI's validators too.
	mux := handlers.NewMux()
	alipayplus.Validators(mux)
	h, _ := mux.Handler(alipayplus.Provider, "initiate_escalation")
	if err := h.Validate(&handlers.Command{DisputeRequestID: "e", Merchant: "google", Params: params(nil)}); handlers.Code(err) != alipayplus.CodeSpecialMerchantDisputeID {
		t.Fatalf("validator: %v", err)
	}
}
