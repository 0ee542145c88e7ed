package alipayplus_test

import (
	"encoding/json"
	"errors"
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
