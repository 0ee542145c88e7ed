package sandbox

import (
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/disputesync/disputesync/internal/alipaysig"
)

// MaxClockSkew is how far a Request-Time or Date may be from the sandbox clock.
const MaxClockSkew = 5 * time.Minute

// Result is the Alipay-style result object.
type Result struct {
	ResultCode    string `json:"resultCode"`
	ResultStatus  string `json:"resultStatus"`
	ResultMessage string `json:"resultMessage"`
}

// Alipay and Alipay+ result codes used by the sandbox (Alipay+'s initiateEscalation, Alipay's acceptDispute).
var resultMessages = map[string]struct{ status, message string }{
	"SUCCESS":                          {"S", "success"},
	"PARAM_ILLEGAL":                    {"F", "Illegal parameters. For example, non-numeric input, invalid date."},
	"REPEAT_REQUEST":                   {"F", "Repeated request."},
	"TIME_EXCEEDS_LIMIT":               {"F", "Your defense is overdue and you cannot accept or defend the dispute."},
	"UNKNOWN_EXCEPTION":                {"U", "An API calling is failed, which is caused by unknown reasons."},
	"REQUEST_TRAFFIC_EXCEED_LIMIT":     {"U", "The request traffic exceeds the limit."},
	"INVALID_SIGNATURE":                {"F", "The signature is invalid."},
	"INVALID_CLIENT":                   {"F", "The client is invalid."},
	"NO_INTERFACE_DEF":                 {"F", "API is not defined."},
	"KEY_NOT_FOUND":                    {"F", "The key is not found."},
	"ACCESS_DENIED":                    {"F", "The access is denied."},
	"CURRENCY_NOT_SUPPORT":             {"F", "Illegal parameters exist. For example, a non-numeric input, or an invalid date."},
	"ESCALATION_AMOUNT_EXCEED_LIMIT":   {"F", "The escalation amount exceeds the maximum available dispute amount."},
	"EXCEEDS_ESCALATION_REQUEST_LIMIT": {"F", "The number limit of the escalation request for the transaction is exceeded."},
	"ORDER_NOT_EXIST":                  {"F", "The order doesn't exist."},
	"PROCESS_FAIL":                     {"F", "A general business failure occurred. Don't retry."},
	"REPEAT_REQ_INCONSISTENT":          {"F", "The request is inconsistent with a previous request of the same disputeRequestId."},
	"SPECIAL_MERCHANT_REQUIRES_MERCHANT_DISPUTE_ID":        {"F", "merchantDisputeId is required of Special Merchants."},
	"SPECIAL_MERCHANT_REQUIRES_MERCHANT_CUSTOMER_ID":       {"F", "customerIdAssignedByMerchant is required of Special Merchants."},
	"SPECIAL_MERCHANT_REQUIRES_MERCHANT_NOT_REFUND_RECORD": {"F", "merchantNotRefundRecord is required of Special Merchants."},
}

// result returns the result object of a code.
func result(code string) Result {
	m, ok := resultMessages[code]
	if !ok {
		m = resultMessages["UNKNOWN_EXCEPTION"]
	}
	return Result{ResultCode: code, ResultStatus: m.status, ResultMessage: m.message}
}

// alipayScheme is one Alipay-style provider's keys.
type alipayScheme struct {
	provider string
	clientID string
	pub      *rsa.PublicKey  // verifies requests
	priv     *rsa.PrivateKey // signs answers
}

func (s *Server) scheme(provider string) alipayScheme {
	if provider == ProviderAlipayPlus {
		return alipayScheme{provider, s.keys.AlipayPlusClientID, s.alipayPlusPub, s.alipayPlusPriv}
	}
	return alipayScheme{provider, s.keys.AlipayClientID, s.alipayPub, s.alipayPriv}
}

// verify checks the request headers; it returns the refusal code, or "".
func (s *Server) verify(sc alipayScheme, r *http.Request, body []byte) string {
	clientID := r.Header.Get("Client-Id")
	if clientID == "" || clientID != sc.clientID {
		return "INVALID_CLIENT"
	}
	if sc.pub == nil {
		return "KEY_NOT_FOUND"
	}
	rt := r.Header.Get("Request-Time")
	t, ok := parseRequestTime(rt)
	if !ok {
		return "INVALID_SIGNATURE"
	}
	if d := s.now().Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return "INVALID_SIGNATURE" // stale or future: a replayed signature
	}
	if err := alipaysig.Verify(sc.pub, r.Method, r.URL.Path, clientID, rt, body, r.Header.Get("Signature")); err != nil {
		return "INVALID_SIGNATURE"
	}
	return ""
}

// parseRequestTime reads ISO 8601 (RFC 3339) or epoch milliseconds.
func parseRequestTime(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms), true
	}
	return time.Time{}, false
}

// signed marshals payload and signs it as the provider answers.
func (s *Server) signed(sc alipayScheme, r *http.Request, payload any) answer {
	body, err := json.Marshal(payload)
	if err != nil {
		body, _ = json.Marshal(map[string]Result{"result": result("UNKNOWN_EXCEPTION")})
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=UTF-8")
	rt := s.now().Format(alipaysig.TimeLayout)
	h.Set("Client-Id", sc.clientID)
	h.Set("Response-Time", rt)
	if sc.priv != nil {
		sig, err := alipaysig.Sign(sc.priv, "POST", r.URL.Path, sc.clientID, rt, body)
		if err == nil {
			h.Set("Signature", sig)
		}
	}
	return answer{status: http.StatusOK, header: h, body: body}
}

// resultOnly answers {"result": ...} for a code, signed.
func (s *Server) resultOnly(sc alipayScheme, r *http.Request, code string) answer {
	return s.signed(sc, r, struct {
		Result Result `json:"result"`
	}{result(code)})
}

// alipayFault is the fault answer of an Alipay-style provider.
func (s *Server) alipayFault(provider string) func(*http.Request, faultKind) answer {
	return func(r *http.Request, kind faultKind) answer {
		code := "UNKNOWN_EXCEPTION"
		if kind == faultThrottle {
			code = "REQUEST_TRAFFIC_EXCEED_LIMIT"
		}
		return s.resultOnly(s.scheme(provider), r, code)
	}
}

// alipayEndpoint wraps an Alipay-style handler with signature verification.
func (s *Server) alipayEndpoint(provider, name string, h func(sc alipayScheme, r *http.Request, body []byte) answer) endpoint {
	return endpoint{
		provider: provider, name: name,
		handle: func(r *http.Request, body []byte) answer {
			sc := s.scheme(provider)
			if code := s.verify(sc, r, body); code != "" {
				return s.resultOnly(sc, r, code)
			}
			return h(sc, r, body)
		},
		fault: s.alipayFault(provider),
	}
}
