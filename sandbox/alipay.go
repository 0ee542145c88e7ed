package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Alipay dispute statuses in the sandbox.
const (
	AlipayStatusWaitDefense     = "WAIT_DEFENSE"
	AlipayStatusAccepted        = "ACCEPTED"
	AlipayStatusDefenseSupplied = "DEFENSE_SUPPLIED"
)

// Alipay request limits (Alipay's acceptDispute and supplyDefenseDocument APIs).
const (
	alipayMaxDisputeID = 64
	alipayMaxEvidence  = 1000000
)

// Amount in the smallest currency unit.
type Amount struct {
	Currency string `json:"currency"`
	Value    int64  `json:"value"`
}

// AlipayDispute is a dispute at Alipay (AMS).
type AlipayDispute struct {
	DisputeID        string    `json:"disputeId"`
	PaymentRequestID string    `json:"paymentRequestId"`
	Status           string    `json:"status"`
	Amount           Amount    `json:"amount"`
	CreatedAt        time.Time `json:"createdAt"`
	DefenseDueTime   time.Time `json:"defenseDueTime"`
	ResolutionTime   time.Time `json:"resolutionTime,omitzero"`
	// Evidence holds the supplied documents' formats and sizes.
	Evidence []string `json:"evidence,omitempty"`
}

// CreateAlipayDispute stores an Alipay dispute, filling the id (when empty),
// status WAIT_DEFENSE, a defense due time 7 days ahead, a payment id and an
// amount of USD 10.00.
func (s *Server) CreateAlipayDispute(d AlipayDispute) AlipayDispute {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nextID()
	now := s.now()
	if d.DisputeID == "" {
		d.DisputeID = fmt.Sprintf("2026%024d", n)
	}
	if d.PaymentRequestID == "" {
		d.PaymentRequestID = fmt.Sprintf("PAY2026%021d", n)
	}
	if d.Status == "" {
		d.Status = AlipayStatusWaitDefense
	}
	if d.Amount == (Amount{}) {
		d.Amount = Amount{Currency: "USD", Value: 1000}
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	if d.DefenseDueTime.IsZero() {
		d.DefenseDueTime = now.Add(7 * 24 * time.Hour)
	}
	cp := d
	s.alipayDisputes[d.DisputeID] = &cp
	return d
}

// AlipayDisputeByID returns an Alipay dispute.
func (s *Server) AlipayDisputeByID(id string) (AlipayDispute, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.alipayDisputes[id]
	if !ok {
		return AlipayDispute{}, false
	}
	return *d, true
}

func (s *Server) alipayRoutes() {
	s.mux.Handle("POST /ams/api/v1/payments/acceptDispute", s.serve(s.alipayEndpoint(ProviderAlipay, "acceptDispute", s.acceptDispute)))
	s.mux.Handle("POST /ams/api/v1/payments/supplyDefenseDocument", s.serve(s.alipayEndpoint(ProviderAlipay, "supplyDefenseDocument", s.supplyDefenseDocument)))
}

// alipayTarget finds the dispute of a request and checks that it can still
// be accepted or defended; it returns the refusal code or "". The caller
// holds s.mu.
func (s *Server) alipayTarget(id *string) (*AlipayDispute, string) {
	if id == nil || *id == "" || len(*id) > alipayMaxDisputeID {
		return nil, "PARAM_ILLEGAL"
	}
	d, ok := s.alipayDisputes[*id]
	if !ok {
		return nil, "PARAM_ILLEGAL"
	}
	if d.Status == AlipayStatusAccepted || d.Status == AlipayStatusDefenseSupplied {
		return nil, "REPEAT_REQUEST"
	}
	if s.now().After(d.DefenseDueTime) {
		return nil, "TIME_EXCEEDS_LIMIT"
	}
	return d, ""
}

func (s *Server) acceptDispute(sc alipayScheme, r *http.Request, body []byte) answer {
	var req struct {
		DisputeID *string `json:"disputeId"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return s.resultOnly(sc, r, "PARAM_ILLEGAL")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, code := s.alipayTarget(req.DisputeID)
	if code != "" {
		return s.resultOnly(sc, r, code)
	}
	now := s.now()
	d.Status = AlipayStatusAccepted
	d.ResolutionTime = now
	s.recordEffect(r, Effect{Provider: ProviderAlipay, Operation: "acceptDispute", DisputeID: d.DisputeID})
	return s.signed(sc, r, struct {
		Result                Result `json:"result"`
		DisputeID             string `json:"disputeId"`
		DisputeResolutionTime string `json:"disputeResolutionTime"`
	}{result("SUCCESS"), d.DisputeID, now.Format(time.RFC3339)})
}

var evidenceFormats = map[string]bool{"PDF": true, "JPG": true, "JPEG": true, "PNG": true}

func (s *Server) supplyDefenseDocument(sc alipayScheme, r *http.Request, body []byte) answer {
	var req struct {
		DisputeID      *string `json:"disputeId"`
		Evidence       *string `json:"disputeEvidence"`
		EvidenceFormat *string `json:"disputeEvidenceFormat"`
	}
	if err := json.Unmarshal(body, &req); err != nil ||
		req.Evidence == nil || *req.Evidence == "" || len(*req.Evidence) > alipayMaxEvidence ||
		(req.EvidenceFormat != nil && !evidenceFormats[strings.ToUpper(*req.EvidenceFormat)]) {
		return s.resultOnly(sc, r, "PARAM_ILLEGAL")
	}
	raw, err := base64.StdEncoding.DecodeString(*req.Evidence)
	if err != nil || len(raw) == 0 {
		return s.resultOnly(sc, r, "PARAM_ILLEGAL")
	}
	format := "PDF"
	if req.EvidenceFormat != nil {
		format = strings.ToUpper(*req.EvidenceFormat)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, code := s.alipayTarget(req.DisputeID)
	if code != "" {
		return s.resultOnly(sc, r, code)
	}
	d.Status = AlipayStatusDefenseSupplied
	d.Evidence = append(d.Evidence, fmt.Sprintf("%s:%d", format, len(raw)))
	s.recordEffect(r, Effect{Provider: ProviderAlipay, Operation: "supplyDefenseDocument", DisputeID: d.DisputeID,
		Detail: map[string]string{"format": format, "bytes": fmt.Sprint(len(raw))}})
	return s.signed(sc, r, struct {
		Result    Result `json:"result"`
		DisputeID string `json:"disputeId"`
	}{result("SUCCESS"), d.DisputeID})
}
