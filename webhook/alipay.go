package webhook

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/internal/alipaysig"
)

// Alipay-style headers.
const (
	HeaderClientID     = "Client-Id"
	HeaderRequestTime  = "Request-Time"
	HeaderResponseTime = "Response-Time"
	HeaderSignature    = "Signature"
)

// Alipay notifyDispute types named by docs/contract.md section 6; others are kept as
// opaque strings.
const (
	AlipayDisputeCreated   = "DISPUTE_CREATED"
	AlipayDisputeJudged    = "DISPUTE_JUDGED"
	AlipayDisputeCancelled = "DISPUTE_CANCELLED"
	AlipayDefenseSupplied  = "DEFENSE_SUPPLIED"
	AlipayDefenseDueAlert  = "DEFENSE_DUE_ALERT"
)

// Alipay+ refundType values of an escalation answer; others are kept as
// opaque strings.
const (
	RefundAccept        = "ACCEPT_REFUND"
	RefundAcceptPartial = "ACCEPT_PARTIAL_REFUND"
	RefundRefuse        = "REFUSE_REFUND"
)

// alipayID is the seeds' maximum id length.
const alipayID = 64

// verifyAlipay checks an Alipay-style request signature over the request's
// own path, with the configured Client-Id.
func verifyAlipay(clientID string, pub *rsa.PublicKey, r *http.Request, body []byte) error {
	got := r.Header.Get(HeaderClientID)
	if got == "" {
		return errors.New("no Client-Id header")
	}
	if got != clientID {
		return errors.New("unknown Client-Id")
	}
	rt := r.Header.Get(HeaderRequestTime)
	if rt == "" {
		return errors.New("no Request-Time header")
	}
	return alipaysig.Verify(pub, r.Method, r.URL.Path, clientID, rt, body, r.Header.Get(HeaderSignature))
}

// alipayResult is the result object of every Alipay-style answer.
type alipayResult struct {
	ResultCode    string `json:"resultCode"`
	ResultStatus  string `json:"resultStatus"`
	ResultMessage string `json:"resultMessage"`
}

// alipayAnswer maps an outcome to its HTTP status and result: SUCCESS/S, or
// a code the provider treats as "not received" (U for our own failure) so
// that it retries.
func alipayAnswer(o outcome, msg string) (int, alipayResult) {
	switch o {
	case outUnauthenticated:
		return http.StatusUnauthorized, alipayResult{"INVALID_SIGNATURE", "F", "The signature is invalid."}
	case outInvalid:
		return http.StatusBadRequest, alipayResult{"PARAM_ILLEGAL", "F", truncate("Illegal parameters: "+msg, 256)}
	case outTooLarge:
		return http.StatusRequestEntityTooLarge, alipayResult{"PARAM_ILLEGAL", "F", "Illegal parameters: body too large"}
	case outError:
		return http.StatusInternalServerError, alipayResult{"UNKNOWN_EXCEPTION", "U", "Temporarily unable to process the notification; please retry."}
	}
	return http.StatusOK, alipayResult{"SUCCESS", "S", "success"}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func alipayEndpoint(s *Server) provider {
	return provider{
		name: ProviderAlipay,
		verify: func(r *http.Request, body []byte) error {
			return verifyAlipay(s.cfg.AlipayClientID, s.cfg.AlipayPublicKey, r, body)
		},
		parse: parseAlipayNotify,
		answer: func(w http.ResponseWriter, _ *http.Request, o outcome, msg string) {
			status, res := alipayAnswer(o, msg)
			writeJSON(w, nil, status, map[string]alipayResult{"result": res})
		},
	}
}

func parseAlipayNotify(body []byte) (*notice, error) {
	var n struct {
		DisputeID               *string `json:"disputeId"`
		PaymentRequestID        *string `json:"paymentRequestId"`
		DisputeNotificationType *string `json:"disputeNotificationType"`
		DefenseDueTime          *string `json:"defenseDueTime"`
		DisputeAmount           *amount `json:"disputeAmount"`
	}
	if err := decodeStrict(body, &n); err != nil {
		return nil, err
	}
	for _, err := range []error{
		requireString("disputeId", n.DisputeID, alipayID),
		requireString("disputeNotificationType", n.DisputeNotificationType, alipayID),
		optionalString("paymentRequestId", n.PaymentRequestID, alipayID),
		optionalTime("defenseDueTime", n.DefenseDueTime),
		optionalAmount("disputeAmount", n.DisputeAmount),
	} {
		if err != nil {
			return nil, err
		}
	}
	id, err := canonicalHash(body)
	if err != nil {
		return nil, err
	}
	return &notice{typ: *n.DisputeNotificationType, disputeID: *n.DisputeID, identity: id, raw: json.RawMessage(body)}, nil
}

func alipayPlusEndpoint(s *Server) provider {
	return provider{
		name: ProviderAlipayPlus,
		verify: func(r *http.Request, body []byte) error {
			return verifyAlipay(s.cfg.AlipayPlusClientID, s.cfg.AlipayPlusPublicKey, r, body)
		},
		parse:  s.parseEscalationResponse,
		answer: s.answerAlipayPlus,
	}
}

// answerAlipayPlus answers with the result object, signed with the MPP's
// private key (doc.go), whatever the outcome.
func (s *Server) answerAlipayPlus(w http.ResponseWriter, r *http.Request, o outcome, msg string) {
	status, res := alipayAnswer(o, msg)
	body, _ := json.Marshal(map[string]alipayResult{"result": res})
	rt := s.now().Format(alipaysig.TimeLayout)
	h := http.Header{}
	h.Set(HeaderClientID, s.cfg.AlipayPlusClientID)
	h.Set(HeaderResponseTime, rt)
	sig, err := alipaysig.Sign(s.cfg.AlipayPlusPrivateKey, r.Method, r.URL.Path, s.cfg.AlipayPlusClientID, rt, body)
	if err != nil {
		// Unsigned, Alipay+ will not believe the answer and will retry.
		s.log.Error("cannot sign the responseEscalation answer", "err", err)
	} else {
		h.Set(HeaderSignature, sig)
	}
	writeRaw(w, h, status, body)
}

func (s *Server) parseEscalationResponse(body []byte) (*notice, error) {
	var n struct {
		DisputeRequestID *string `json:"disputeRequestId"`
		DisputeID        *string `json:"disputeId"`
		RefundType       *string `json:"refundType"`
		RefundAmount     *amount `json:"refundAmount"`
		Remarks          *string `json:"remarks"`
	}
	if err := decodeStrict(body, &n); err != nil {
		return nil, err
	}
	for _, err := range []error{
		requireString("disputeRequestId", n.DisputeRequestID, alipayID),
		requireString("disputeId", n.DisputeID, alipayID),
		requireString("refundType", n.RefundType, alipayID),
		optionalAmount("refundAmount", n.RefundAmount),
		optionalString("remarks", n.Remarks, 1024),
	} {
		if err != nil {
			return nil, err
		}
	}
	id, err := canonicalHash(body)
	if err != nil {
		return nil, err
	}
	disputeRequestID := *n.DisputeRequestID
	return &notice{
		typ: NotificationTypeResponseEscalation, disputeID: *n.DisputeID, identity: id, raw: json.RawMessage(body),
		before: func(ctx context.Context) error { return s.closeEscalation(ctx, disputeRequestID) },
	}, nil
}

// closeEscalation ends the escalation's ongoing state for the local rules.
func (s *Server) closeEscalation(ctx context.Context, disputeRequestID string) error {
	if s.cfg.Ledger == nil {
		return nil
	}
	err := s.cfg.Ledger.Close(ctx, "", disputeRequestID, s.now())
	if errors.Is(err, alipayplus.ErrUnknownEscalation) {
		s.log.Info("escalation answered that disputesync did not start", "disputeRequestId", disputeRequestID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("close escalation %s: %w", disputeRequestID, err)
	}
	return nil
}
