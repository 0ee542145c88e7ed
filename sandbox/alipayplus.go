package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Escalation rules of Alipay+'s initiateEscalation API.
const (
	MaxEscalations        = 2                    // per payment, excluding canceled
	FirstEscalationWindow = 360 * 24 * time.Hour // after the payment
	NextEscalationWindow  = 25 * 24 * time.Hour  // after the first escalation was replied to or closed
)

// Escalation statuses.
const (
	EscalationOngoing  = "ONGOING"
	EscalationReplied  = "REPLIED"
	EscalationClosed   = "CLOSED"
	EscalationCanceled = "CANCELED"
)

// AlipayPlusPayment is a payment escalations can be initiated against.
type AlipayPlusPayment struct {
	PaymentRequestID string    `json:"paymentRequestId"`
	Amount           Amount    `json:"amount"`
	PaymentTime      time.Time `json:"paymentTime"`
	Merchant         string    `json:"merchant"` // e.g. "APPLE", "GOOGLE" for Special Merchants
	// AvailableDisputeAmount is the maximum escalation value (default Amount.Value).
	AvailableDisputeAmount int64 `json:"availableDisputeAmount"`
}

// AlipayPlusEscalation is an escalation the sandbox accepted.
type AlipayPlusEscalation struct {
	DisputeID        string          `json:"disputeId"`
	DisputeRequestID string          `json:"disputeRequestId"`
	PaymentRequestID string          `json:"paymentRequestId"`
	Status           string          `json:"status"`
	Amount           Amount          `json:"amount"`
	CreatedAt        time.Time       `json:"createdAt"`
	EndedAt          time.Time       `json:"endedAt,omitzero"`
	Request          json.RawMessage `json:"request"`
}

// apStored is the stored answer of a disputeRequestId.
type apStored struct {
	paymentRequestID string
	body             []byte // the answer payload, re-signed on replay
	disputeID        string
}

// CreateAlipayPlusPayment stores a payment, filling the id, USD 100.00, a
// payment time of one day ago, merchant "SHOP" and the available amount.
func (s *Server) CreateAlipayPlusPayment(p AlipayPlusPayment) AlipayPlusPayment {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nextID()
	if p.PaymentRequestID == "" {
		p.PaymentRequestID = fmt.Sprintf("2026%024d", n)
	}
	if p.Amount == (Amount{}) {
		p.Amount = Amount{Currency: "USD", Value: 10000}
	}
	if p.PaymentTime.IsZero() {
		p.PaymentTime = s.now().Add(-24 * time.Hour)
	}
	if p.Merchant == "" {
		p.Merchant = "SHOP"
	}
	if p.AvailableDisputeAmount == 0 {
		p.AvailableDisputeAmount = p.Amount.Value
	}
	cp := p
	s.apPayments[p.PaymentRequestID] = &cp
	return p
}

// Escalations returns the escalations of a payment ("" = all), oldest first.
func (s *Server) Escalations(paymentRequestID string) []AlipayPlusEscalation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []AlipayPlusEscalation
	for _, e := range s.apEscalations {
		if paymentRequestID == "" || e.PaymentRequestID == paymentRequestID {
			out = append(out, *e)
		}
	}
	sortEscalations(out)
	return out
}

func sortEscalations(es []AlipayPlusEscalation) {
	sort.Slice(es, func(i, j int) bool {
		if !es[i].CreatedAt.Equal(es[j].CreatedAt) {
			return es[i].CreatedAt.Before(es[j].CreatedAt)
		}
		return es[i].DisputeID < es[j].DisputeID
	})
}

// EndEscalation moves an ongoing escalation to REPLIED, CLOSED or CANCELED
// (what Alipay+'s responseEscalation or a cancellation does), so that it no
// longer counts as ongoing. It returns false for an unknown id, a status
// that is not one of the three, or an escalation that already ended.
func (s *Server) EndEscalation(disputeID, status string) (AlipayPlusEscalation, bool) {
	switch status {
	case EscalationReplied, EscalationClosed, EscalationCanceled:
	default:
		return AlipayPlusEscalation{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.apEscalations[disputeID]
	if !ok || e.Status != EscalationOngoing {
		return AlipayPlusEscalation{}, false
	}
	e.Status = status
	e.EndedAt = s.now()
	return *e, true
}

func (s *Server) alipayPlusRoutes() {
	s.mux.Handle("POST /aps/api/v1/disputes/initiateEscalation",
		s.serve(s.alipayEndpoint(ProviderAlipayPlus, "initiateEscalation", s.initiateEscalation)))
}

// attachment of an escalation request.
type attachment struct {
	AttachmentType *string `json:"attachmentType"`
	File           *string `json:"file"`
	AttachmentName *string `json:"attachmentName"`
	Content        *string `json:"content"`
	ContentType    *string `json:"contentType"`
}

type escalationRequest struct {
	DisputeRequestID             *string `json:"disputeRequestId"`
	PaymentRequestID             *string `json:"paymentRequestId"`
	DisputeOccurTime             *string `json:"disputeOccurTime"`
	DisputeReasonCode            *string `json:"disputeReasonCode"`
	DisputeReasonCodeDescription *string `json:"disputeReasonCodeDescription"`
	EscalationAmount             *struct {
		Currency *string `json:"currency"`
		Value    *string `json:"value"`
	} `json:"escalationAmount"`
	MerchantDisputeID            *string      `json:"merchantDisputeId"`
	CustomerIDAssignedByMerchant *string      `json:"customerIdAssignedByMerchant"`
	MerchantNotRefundRecord      []attachment `json:"merchantNotRefundRecord"`
	SupportingDocumentation      []attachment `json:"supportingDocumentation"`
	Remarks                      *string      `json:"remarks"`
}

// reasonDescriptions pairs each reason code with its descriptions (initiateEscalation API).
var reasonDescriptions = map[string][]string{
	"7801": {"MERCHANDIZE_OR_SERVICE_NOT_RECEIVED", "NOT_AS_DESCRIBED"},
	"7802": {"REFUND_NOT_PROCESSED", "AMOUNT_DIFFER", "DUPLICATE_PROCESSED", "PAIDED_BY_OTHER_MEANS"},
	"7803": {"USER_DENIED_PARTICIPANTING_IN_A_TRANSACTION"},
}

var attachmentTypes = setOf("ARTICLES_OF_ASSOCIATION", "ENTERPRISES_ANNUAL_INSPECTION_REPORT", "PROOF_OF_ADDRESS",
	"OTHER_MATERIAL", "REGISTRATION_CERTIFICATE", "TRANSACTION_RECEIPT", "PROOF_OF_DELIVERY", "MERCHANT_INFORMATION",
	"END_USER_INFORMATION", "OTHER_DOCUMENTATION", "MERCHANT_NOT_REFUND_RECORDS", "SUPPORTING_DOCUMENTATION")

var contentTypes = setOf("pdf", "doc", "docx", "xls", "xlsx", "bmp", "jpg", "jpeg", "png", "gif")

func setOf(v ...string) map[string]bool {
	m := make(map[string]bool, len(v))
	for _, s := range v {
		m[s] = true
	}
	return m
}

// Field limits of the initiateEscalation API.
const (
	apMaxID          = 64
	apMaxMerchantID  = 32
	apMaxFile        = 1024
	apMaxName        = 128
	apMaxContent     = 2048000
	apMaxContentType = 8
	apMaxRemarks     = 1024
)

// required reports a required string field present, non-empty and short enough.
func required(v *string, maxLen int) bool { return v != nil && *v != "" && len(*v) <= maxLen }

// optional reports an optional field absent/null, or non-empty and short
// enough: "" is refused (Alipay+: never send optional fields as "").
func optional(v *string, maxLen int) bool { return v == nil || (*v != "" && len(*v) <= maxLen) }

// validateEscalation checks field rules; it returns "PARAM_ILLEGAL" or "".
func validateEscalation(req *escalationRequest) string {
	ok := required(req.DisputeRequestID, apMaxID) &&
		required(req.PaymentRequestID, apMaxID) &&
		optional(req.DisputeOccurTime, 64) &&
		required(req.DisputeReasonCode, 4) &&
		required(req.DisputeReasonCodeDescription, 64) &&
		optional(req.MerchantDisputeID, apMaxMerchantID) &&
		optional(req.CustomerIDAssignedByMerchant, apMaxMerchantID) &&
		optional(req.Remarks, apMaxRemarks) &&
		req.EscalationAmount != nil
	if !ok {
		return "PARAM_ILLEGAL"
	}
	if req.DisputeOccurTime != nil {
		if _, err := time.Parse(time.RFC3339, *req.DisputeOccurTime); err != nil {
			return "PARAM_ILLEGAL"
		}
	}
	descs, known := reasonDescriptions[*req.DisputeReasonCode]
	if !known || !contains(descs, *req.DisputeReasonCodeDescription) {
		return "PARAM_ILLEGAL"
	}
	a := req.EscalationAmount
	if !required(a.Currency, 3) || len(*a.Currency) != 3 || strings.ToUpper(*a.Currency) != *a.Currency || !required(a.Value, 32) {
		return "PARAM_ILLEGAL"
	}
	if v, err := strconv.ParseInt(*a.Value, 10, 64); err != nil || v < 1 || strings.TrimLeft(*a.Value, "0123456789") != "" {
		return "PARAM_ILLEGAL"
	}
	for _, list := range [][]attachment{req.MerchantNotRefundRecord, req.SupportingDocumentation} {
		for _, at := range list {
			if !validAttachment(at) {
				return "PARAM_ILLEGAL"
			}
		}
	}
	return ""
}

func validAttachment(a attachment) bool {
	if a.AttachmentType == nil || !attachmentTypes[*a.AttachmentType] {
		return false
	}
	if !optional(a.File, apMaxFile) || !optional(a.AttachmentName, apMaxName) ||
		!optional(a.Content, apMaxContent) || !optional(a.ContentType, apMaxContentType) {
		return false
	}
	if (a.File == nil) == (a.Content == nil) { // exactly one of file and content
		return false
	}
	if a.Content != nil {
		if a.ContentType == nil || !contentTypes[*a.ContentType] {
			return false
		}
		if _, err := base64.StdEncoding.DecodeString(*a.Content); err != nil {
			return false
		}
	} else if a.ContentType != nil && !contentTypes[*a.ContentType] {
		return false
	}
	return true
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *Server) initiateEscalation(sc alipayScheme, r *http.Request, body []byte) answer {
	var req escalationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return s.resultOnly(sc, r, "PARAM_ILLEGAL")
	}
	if code := validateEscalation(&req); code != "" {
		return s.resultOnly(sc, r, code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.apByRequest[*req.DisputeRequestID]; ok {
		if prev.paymentRequestID != *req.PaymentRequestID {
			return s.resultOnly(sc, r, "REPEAT_REQ_INCONSISTENT")
		}
		// Processed once: the same answer again, nothing applied.
		return s.signedRaw(sc, r, prev.body)
	}
	if code := s.escalationRules(&req); code != "" {
		return s.resultOnly(sc, r, code)
	}
	now := s.now()
	value, _ := strconv.ParseInt(*req.EscalationAmount.Value, 10, 64)
	e := &AlipayPlusEscalation{
		DisputeID:        fmt.Sprintf("2026%024d", s.nextID()),
		DisputeRequestID: *req.DisputeRequestID,
		PaymentRequestID: *req.PaymentRequestID,
		Status:           EscalationOngoing,
		Amount:           Amount{Currency: *req.EscalationAmount.Currency, Value: value},
		CreatedAt:        now,
		Request:          json.RawMessage(body),
	}
	s.apEscalations[e.DisputeID] = e
	payload, _ := json.Marshal(struct {
		Result    Result `json:"result"`
		DisputeID string `json:"disputeId"`
	}{result("SUCCESS"), e.DisputeID})
	s.apByRequest[e.DisputeRequestID] = &apStored{paymentRequestID: e.PaymentRequestID, body: payload, disputeID: e.DisputeID}
	s.recordEffect(r, Effect{Provider: ProviderAlipayPlus, Operation: "initiateEscalation", DisputeID: e.DisputeID,
		DisputeRequestID: e.DisputeRequestID,
		Detail: map[string]string{"paymentRequestId": e.PaymentRequestID, "currency": e.Amount.Currency,
			"value": strconv.FormatInt(value, 10), "reasonCode": *req.DisputeReasonCode}})
	return s.signedRaw(sc, r, payload)
}

// escalationRules applies the business rules of initiateEscalation; the caller holds s.mu.
func (s *Server) escalationRules(req *escalationRequest) string {
	p, ok := s.apPayments[*req.PaymentRequestID]
	if !ok {
		return "ORDER_NOT_EXIST"
	}
	if s.special[strings.ToUpper(p.Merchant)] {
		switch {
		case req.MerchantDisputeID == nil:
			return "SPECIAL_MERCHANT_REQUIRES_MERCHANT_DISPUTE_ID"
		case req.CustomerIDAssignedByMerchant == nil:
			return "SPECIAL_MERCHANT_REQUIRES_MERCHANT_CUSTOMER_ID"
		case len(req.MerchantNotRefundRecord) == 0:
			return "SPECIAL_MERCHANT_REQUIRES_MERCHANT_NOT_REFUND_RECORD"
		}
	}
	if *req.EscalationAmount.Currency != p.Amount.Currency {
		return "CURRENCY_NOT_SUPPORT"
	}
	if v, _ := strconv.ParseInt(*req.EscalationAmount.Value, 10, 64); v > p.AvailableDisputeAmount {
		return "ESCALATION_AMOUNT_EXCEED_LIMIT"
	}
	var live []AlipayPlusEscalation // not canceled, oldest first
	for _, e := range s.apEscalations {
		if e.PaymentRequestID == p.PaymentRequestID && e.Status != EscalationCanceled {
			live = append(live, *e)
		}
	}
	sortEscalations(live)
	for _, e := range live {
		if e.Status == EscalationOngoing {
			return "EXCEEDS_ESCALATION_REQUEST_LIMIT"
		}
	}
	if len(live) >= MaxEscalations {
		return "EXCEEDS_ESCALATION_REQUEST_LIMIT"
	}
	now := s.now()
	if len(live) == 0 {
		if now.After(p.PaymentTime.Add(FirstEscalationWindow)) {
			return "PROCESS_FAIL"
		}
		return ""
	}
	// The second escalation: within 25 days after the first ended.
	if now.After(live[0].EndedAt.Add(NextEscalationWindow)) {
		return "PROCESS_FAIL"
	}
	return ""
}

// signedRaw signs an already marshalled payload.
func (s *Server) signedRaw(sc alipayScheme, r *http.Request, payload []byte) answer {
	return s.signed(sc, r, json.RawMessage(payload))
}
