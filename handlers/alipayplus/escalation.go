package alipayplus

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/params"
)

// MaxContentChars is the limit on an attachment's Base64 content.
const MaxContentChars = 2048000

// ReasonDescriptions maps each disputeReasonCode to the
// disputeReasonCodeDescription values that belong to it (initiateEscalation API).
var ReasonDescriptions = map[string][]string{
	"7801": {"MERCHANDIZE_OR_SERVICE_NOT_RECEIVED", "NOT_AS_DESCRIBED"},
	"7802": {"REFUND_NOT_PROCESSED", "AMOUNT_DIFFER", "DUPLICATE_PROCESSED", "PAIDED_BY_OTHER_MEANS"},
	"7803": {"USER_DENIED_PARTICIPANTING_IN_A_TRANSACTION"},
}

var (
	reasonCodes        = []string{"7801", "7802", "7803"}
	reasonDescriptions = slices.Concat(ReasonDescriptions["7801"], ReasonDescriptions["7802"], ReasonDescriptions["7803"])
	attachmentTypes    = []string{
		"ARTICLES_OF_ASSOCIATION", "ENTERPRISES_ANNUAL_INSPECTION_REPORT", "PROOF_OF_ADDRESS", "OTHER_MATERIAL",
		"REGISTRATION_CERTIFICATE", "TRANSACTION_RECEIPT", "PROOF_OF_DELIVERY", "MERCHANT_INFORMATION",
		"END_USER_INFORMATION", "OTHER_DOCUMENTATION", "MERCHANT_NOT_REFUND_RECORDS", "SUPPORTING_DOCUMENTATION",
	}
	contentTypes = []string{"pdf", "doc", "docx", "xls", "xlsx", "bmp", "jpg", "jpeg", "png", "gif"}

	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	naturalRE  = regexp.MustCompile(`^[1-9][0-9]*$`)
)

// Rules worded for the amount fields.
const (
	RuleNatural  = "must be a natural number string (1..)"
	RuleCurrency = "must be a 3-letter ISO 4217 code such as EUR"
	RuleDateTime = "must be an ISO 8601 date-time such as 2019-11-27T12:01:01+08:00"
)

// escalationRequest is the initiateEscalation body, in the API's order.
// Optional fields are omitted when empty, never sent as "".
type escalationRequest struct {
	DisputeRequestID             string       `json:"disputeRequestId"`
	PaymentRequestID             string       `json:"paymentRequestId"`
	DisputeOccurTime             string       `json:"disputeOccurTime,omitempty"`
	DisputeReasonCode            string       `json:"disputeReasonCode"`
	DisputeReasonCodeDescription string       `json:"disputeReasonCodeDescription"`
	EscalationAmount             amount       `json:"escalationAmount"`
	MerchantDisputeID            string       `json:"merchantDisputeId,omitempty"`
	CustomerIDAssignedByMerchant string       `json:"customerIdAssignedByMerchant,omitempty"`
	MerchantNotRefundRecord      []attachment `json:"merchantNotRefundRecord,omitempty"`
	SupportingDocumentation      []attachment `json:"supportingDocumentation,omitempty"`
	Remarks                      string       `json:"remarks,omitempty"`
}

type amount struct {
	Currency string `json:"currency"`
	Value    string `json:"value"`
}

type attachment struct {
	AttachmentType string `json:"attachmentType"`
	File           string `json:"file,omitempty"`
	AttachmentName string `json:"attachmentName,omitempty"`
	Content        string `json:"content,omitempty"`
	ContentType    string `json:"contentType,omitempty"`

	ref   *handlers.ContentRef // content to read from the evidence bucket
	field string               // path of the reference, for errors
}

var escalationFields = []string{
	"disputeRequestId", "paymentRequestId", "disputeOccurTime", "disputeReasonCode", "disputeReasonCodeDescription",
	"escalationAmount", "merchantDisputeId", "customerIdAssignedByMerchant", "merchantNotRefundRecord",
	"supportingDocumentation", "remarks",
}

// parseEscalation validates a command and builds its request. Field errors
// are *handlers.InvalidError; broken provider rules are *handlers.RuleError.
func parseEscalation(cmd *handlers.Command, special []string) (*escalationRequest, error) {
	p, err := params.ParseParams("initiateEscalation", cmd.Params, escalationFields...)
	if err != nil {
		return nil, err
	}
	r := &escalationRequest{DisputeRequestID: cmd.DisputeRequestID}
	if r.DisputeRequestID == "" {
		return nil, handlers.Invalid("disputeRequestId", params.RuleRequired)
	}
	if len([]rune(r.DisputeRequestID)) > 64 {
		return nil, handlers.Invalid("disputeRequestId", "must be at most 64 characters")
	}
	if id, err := p.String("disputeRequestId", false, 64); err != nil {
		return nil, err
	} else if id != "" && id != r.DisputeRequestID {
		return nil, handlers.Invalid(p.Field("disputeRequestId"), "must equal the command's disputeRequestId")
	}
	if r.PaymentRequestID, err = p.String("paymentRequestId", true, 64); err != nil {
		return nil, err
	}
	if r.DisputeOccurTime, err = p.String("disputeOccurTime", false, 64); err != nil {
		return nil, err
	}
	if r.DisputeOccurTime != "" {
		if _, err := time.Parse(time.RFC3339, r.DisputeOccurTime); err != nil {
			return nil, handlers.Invalid(p.Field("disputeOccurTime"), RuleDateTime)
		}
	}
	if r.DisputeReasonCode, err = p.Enum("disputeReasonCode", true, reasonCodes...); err != nil {
		return nil, err
	}
	if r.DisputeReasonCodeDescription, err = p.Enum("disputeReasonCodeDescription", true, reasonDescriptions...); err != nil {
		return nil, err
	}
	amt, err := p.Object("escalationAmount", "Amount", true, "currency", "value")
	if err != nil {
		return nil, err
	}
	if r.EscalationAmount.Currency, err = amt.String("currency", true, 3); err != nil {
		return nil, err
	}
	if !currencyRE.MatchString(r.EscalationAmount.Currency) {
		return nil, handlers.Invalid(amt.Field("currency"), RuleCurrency)
	}
	if r.EscalationAmount.Value, err = amt.String("value", true, 0); err != nil {
		return nil, err
	}
	if !naturalRE.MatchString(r.EscalationAmount.Value) {
		return nil, handlers.Invalid(amt.Field("value"), RuleNatural)
	}
	if r.MerchantDisputeID, err = p.String("merchantDisputeId", false, 32); err != nil {
		return nil, err
	}
	if r.CustomerIDAssignedByMerchant, err = p.String("customerIdAssignedByMerchant", false, 32); err != nil {
		return nil, err
	}
	if r.MerchantNotRefundRecord, err = parseAttachments(p, "merchantNotRefundRecord"); err != nil {
		return nil, err
	}
	if r.SupportingDocumentation, err = parseAttachments(p, "supportingDocumentation"); err != nil {
		return nil, err
	}
	if r.Remarks, err = p.String("remarks", false, 1024); err != nil {
		return nil, err
	}

	// The provider's rules that need no I/O, answered with its own codes.
	if !slices.Contains(ReasonDescriptions[r.DisputeReasonCode], r.DisputeReasonCodeDescription) {
		return nil, &handlers.RuleError{Code: CodeParamIllegal, Message: fmt.Sprintf(
			"disputeReasonCodeDescription %s is not a description of disputeReasonCode %s (valid: %s)",
			r.DisputeReasonCodeDescription, r.DisputeReasonCode, strings.Join(ReasonDescriptions[r.DisputeReasonCode], ", "))}
	}
	if isSpecial(cmd.Merchant, special) {
		switch {
		case r.MerchantDisputeID == "":
			return nil, &handlers.RuleError{Code: CodeSpecialMerchantDisputeID, Message: "merchantDisputeId is required of Special Merchants (merchant " + cmd.Merchant + ")"}
		case r.CustomerIDAssignedByMerchant == "":
			return nil, &handlers.RuleError{Code: CodeSpecialMerchantCustomerID, Message: "customerIdAssignedByMerchant is required of Special Merchants (merchant " + cmd.Merchant + ")"}
		case len(r.MerchantNotRefundRecord) == 0:
			return nil, &handlers.RuleError{Code: CodeSpecialMerchantNotRefund, Message: "merchantNotRefundRecord is required of Special Merchants (merchant " + cmd.Merchant + ")"}
		}
	}
	return r, nil
}

func isSpecial(merchant string, special []string) bool {
	if merchant == "" {
		return false
	}
	for _, m := range special {
		if strings.EqualFold(strings.TrimSpace(merchant), m) {
			return true
		}
	}
	return false
}

func parseAttachments(p *params.Object, name string) ([]attachment, error) {
	items, err := p.Array(name, false)
	if err != nil || items == nil {
		return nil, err
	}
	out := make([]attachment, 0, len(items))
	for i, raw := range items {
		a, err := parseAttachment(p.Item(name, i), raw)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, nil
}

func parseAttachment(path string, raw json.RawMessage) (*attachment, error) {
	o, err := params.ParseObject(path, "Attachment", raw,
		"attachmentType", "file", "attachmentName", "content", "contentRef", "contentType")
	if err != nil {
		return nil, err
	}
	a := &attachment{}
	if a.AttachmentType, err = o.Enum("attachmentType", true, attachmentTypes...); err != nil {
		return nil, err
	}
	if a.File, err = o.String("file", false, 1024); err != nil {
		return nil, err
	}
	if a.AttachmentName, err = o.String("attachmentName", false, 128); err != nil {
		return nil, err
	}
	if a.Content, err = o.String("content", false, MaxContentChars); err != nil {
		return nil, err
	}
	if a.Content != "" {
		if err := params.CheckBase64(o.Field("content"), a.Content); err != nil {
			return nil, err
		}
	}
	if refRaw, ok := o.Raw("contentRef"); ok {
		if a.Content != "" {
			return nil, handlers.Invalid(o.Field("contentRef"), "must not be given together with content")
		}
		a.field = o.Field("contentRef")
		if a.ref, err = alipayclient.ParseRef(a.field, refRaw, MaxContentChars); err != nil {
			return nil, err
		}
	}
	if a.ContentType, err = o.Enum("contentType", false, contentTypes...); err != nil {
		return nil, err
	}
	hasContent := a.Content != "" || a.ref != nil
	switch {
	case a.File != "" && hasContent:
		return nil, handlers.Invalid(o.Field("file"), "must not be given together with content (file xor content)")
	case a.File == "" && !hasContent:
		return nil, handlers.Invalid(o.Field("content"), "is required when file is not given (file xor content)")
	case hasContent && a.ContentType == "":
		return nil, handlers.Invalid(o.Field("contentType"), "is required when content is given")
	}
	return a, nil
}

// initiateEscalation is initiate_escalation.
type initiateEscalation struct {
	c       *Client // nil: validation only
	special []string
}

// PlaceEvidence implements handlers.EvidencePlacer: the file becomes one
// more supportingDocumentation attachment, named after the file, its
// contentType the file's extension.
func (*initiateEscalation) PlaceEvidence(p map[string]any, ref handlers.ContentRef, fileName string) {
	docs, _ := p["supportingDocumentation"].([]any)
	p["supportingDocumentation"] = append(docs, map[string]any{
		"attachmentType": "SUPPORTING_DOCUMENTATION", "attachmentName": fileName, "contentType": params.Ext(fileName), "contentRef": ref,
	})
}

func (h *initiateEscalation) Validate(cmd *handlers.Command) error {
	_, err := parseEscalation(cmd, h.special)
	return err
}

// LockKey serialises escalations of one payment across replicas: the
// one-ongoing rule is checked against the ledger, so two escalations of the
// same payment must not be checked and sent at the same time.
func (h *initiateEscalation) LockKey(cmd *handlers.Command) string {
	var p struct {
		PaymentRequestID any `json:"paymentRequestId"`
	}
	if json.Unmarshal(cmd.Params, &p) != nil {
		return ""
	}
	if id, ok := p.PaymentRequestID.(string); ok && id != "" {
		return "payment:" + id
	}
	return ""
}

func (h *initiateEscalation) Apply(ctx context.Context, call *handlers.Call) (*handlers.Response, error) {
	if h.c == nil {
		return nil, errValidateOnly
	}
	req, err := parseEscalation(call.Command, h.special)
	if err != nil {
		return nil, err
	}
	resp, err := h.c.escalate(ctx, call, req)
	h.c.logOutcome(ctx, call, req.PaymentRequestID, resp, err)
	return resp, err
}

func (c *Client) escalate(ctx context.Context, call *handlers.Call, req *escalationRequest) (*handlers.Response, error) {
	if c.cfg.Ledger != nil {
		existing, err := c.cfg.Ledger.Escalations(ctx, req.PaymentRequestID)
		if err != nil {
			// Without the ledger the local rules cannot be checked: retry
			// later rather than call blind.
			return nil, fmt.Errorf("alipayplus: reading escalations of the payment: %w", err)
		}
		if err := checkEscalations(existing, req.DisputeRequestID, c.now()); err != nil {
			return nil, err
		}
	}
	for _, list := range [][]attachment{req.MerchantNotRefundRecord, req.SupportingDocumentation} {
		for i := range list {
			if list[i].ref == nil {
				continue
			}
			content, err := alipayclient.LoadRef(ctx, c.cfg.Evidence, list[i].field, list[i].ref, MaxContentChars)
			if err != nil {
				return nil, err
			}
			list[i].Content = content
		}
	}
	body, err := params.Encode(req)
	if err != nil {
		return nil, handlers.Permanent(fmt.Errorf("alipayplus: encoding request: %w", err))
	}
	ans, err := c.api.Post(ctx, alipayclient.Request{
		Operation:        "initiateEscalation",
		Path:             PathInitiateEscalation,
		Body:             body,
		DisputeRequestID: req.DisputeRequestID,
	})
	if err != nil {
		return nil, err
	}
	// Alipay+ processes a disputeRequestId once, so every answer, even to a
	// recovery, means what it says; no REPEAT_REQUEST special case.
	resp, err := alipayclient.Classify(Provider, "initiateEscalation", Codes, ans, false)
	if err != nil {
		return nil, err
	}
	if c.cfg.Ledger != nil {
		var out struct {
			DisputeID string `json:"disputeId"`
		}
		_ = json.Unmarshal(ans.Body, &out)
		e := Escalation{PaymentRequestID: req.PaymentRequestID, DisputeRequestID: req.DisputeRequestID, DisputeID: out.DisputeID, StartedAt: c.now()}
		if err := c.cfg.Ledger.Record(ctx, e); err != nil {
			// Retrying is safe (the provider answers the same
			// disputeRequestId with the same result) and keeps the local
			// limits truthful.
			return nil, fmt.Errorf("alipayplus: escalation succeeded but recording it failed, will resend: %w", err)
		}
	}
	return resp, nil
}

// SecondEscalationWindow is how long after the first escalation is replied
// to or closed a second one may be initiated.
const SecondEscalationWindow = 25 * 24 * time.Hour

// checkEscalations applies initiateEscalation's limits to the escalations already
// started for a payment, leaving out self (a retry of the same command).
func checkEscalations(existing []Escalation, self string, now time.Time) error {
	var active []Escalation
	for _, e := range existing {
		if e.DisputeRequestID == self {
			// This command's own escalation already reached the provider:
			// resending it is safe and must not be refused by its own record.
			return nil
		}
		if !e.Canceled {
			active = append(active, e)
		}
	}
	if len(active) >= 2 {
		return &handlers.RuleError{Code: CodeExceedsEscalationLimit, Message: fmt.Sprintf(
			"the payment already has %d escalations (at most 2 per transaction, excluding canceled ones)", len(active))}
	}
	for _, e := range active {
		if e.ClosedAt.IsZero() {
			return &handlers.RuleError{Code: CodeExceedsEscalationLimit, Message: fmt.Sprintf(
				"escalation %s of the payment is still ongoing (only 1 may be ongoing)", e.DisputeRequestID)}
		}
	}
	if len(active) == 1 && now.Sub(active[0].ClosedAt) > SecondEscalationWindow {
		return &handlers.RuleError{Code: CodeProcessFail, Message: fmt.Sprintf(
			"a second escalation must be initiated within 25 days after the first is replied to or closed (closed %s)",
			active[0].ClosedAt.UTC().Format(time.RFC3339))}
	}
	return nil
}
