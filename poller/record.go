package poller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Amount is a money amount; Value is the decimal string exactly as the
// provider gave it (docs/contract.md section 2), never a float.
type Amount struct {
	Currency string `json:"currency"`
	Value    string `json:"value"`
}

// Record is the normalized dispute: the data fields of docs/contract.md section 2
// (listType and raw are carried beside it, not inside, because the same
// dispute comes from both list types and its state must not depend on which).
// The fields after CreatedAt are additions: they are provider state that
// matters to a subscriber (a second chargeback raises DisputeTimes) and that
// decides which scans must revisit the dispute (the appeal period).
//
// Times are kept as the provider's RFC 3339 strings, so that a record
// round-trips byte for byte and its fingerprint does not depend on parsing.
type Record struct {
	DisputeID     string `json:"disputeId"`
	PaymentID     string `json:"paymentId"`
	OrderID       string `json:"orderId"`
	Status        string `json:"status"`
	AppealStatus  string `json:"appealStatus"`
	CloseStatus   string `json:"closeStatus"`
	Reason        string `json:"reason"`
	Amount        Amount `json:"amount"`
	ReplyDeadline string `json:"replyDeadline,omitempty"`
	CreatedAt     string `json:"createdAt"`

	DisputeType      string `json:"disputeType,omitempty"`
	DisputeTimes     string `json:"disputeTimes,omitempty"`
	AppealPeriodFrom string `json:"appealPeriodFrom,omitempty"`
	AppealPeriodTo   string `json:"appealPeriodTo,omitempty"`
}

// Statuses (list API) and close status values this package acts on. Any other
// value is kept as an opaque string.
const (
	StatusPending  = "pending"
	StatusClose    = "close"
	StatusNoAction = "noaction"
	CloseClosed    = "closed"
)

// Closed reports whether the provider closed the dispute (disputes_status).
func (r Record) Closed() bool { return r.CloseStatus == CloseClosed }

// Pending reports whether the dispute waits for the merchant (list API `status`).
func (r Record) Pending() bool { return r.Status == StatusPending }

// Created is the creation time (disputes_date); ParseRecord checked it.
func (r Record) Created() time.Time {
	t, _ := time.Parse(time.RFC3339, r.CreatedAt)
	return t
}

// Deadline is the reply deadline, if the record has one.
func (r Record) Deadline() (time.Time, bool) {
	if r.ReplyDeadline == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, r.ReplyDeadline)
	return t, err == nil
}

// InPeriod reports whether now lies inside the appeal period and the dispute
// is not closed: the sandbox's (and our) reading of the "disputes-period"
// list. The poller only uses it as a prediction of what that list returns;
// a dispute that drops out of it is looked up directly (see doc.go).
func (r Record) InPeriod(now time.Time) bool {
	if r.Closed() || r.AppealPeriodFrom == "" || r.AppealPeriodTo == "" {
		return false
	}
	from, err1 := time.Parse(time.RFC3339, r.AppealPeriodFrom)
	to, err2 := time.Parse(time.RFC3339, r.AppealPeriodTo)
	return err1 == nil && err2 == nil && !now.Before(from) && !now.After(to)
}

// FieldError is a record or envelope field the list API sent in a form the
// contract does not allow.
type FieldError struct {
	Field string // JSON path, e.g. "disputes.disputes_date"
	Msg   string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Msg }

var (
	decimal = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	count   = regexp.MustCompile(`^[0-9]{1,9}$`)
)

// ParseRecord parses one element of the list API's data.lists strictly: every
// scalar must be a JSON string (or absent / null where optional), times must
// be RFC 3339, the amount a decimal string. Unknown enum values are kept as
// they are. Errors are *FieldError naming the field.
func ParseRecord(raw json.RawMessage) (Record, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return Record{}, &FieldError{Field: "(record)", Msg: "not a JSON object"}
	}
	dr, ok := top["disputes"]
	var d map[string]json.RawMessage
	if !ok || isNull(dr) || json.Unmarshal(dr, &d) != nil || d == nil {
		return Record{}, &FieldError{Field: "disputes", Msg: "missing or not an object"}
	}
	p := fieldParser{}
	rec := Record{
		DisputeID:        p.str(d, "disputes.", "disputes_id", true),
		PaymentID:        p.str(top, "", "payment_id", false),
		OrderID:          p.str(top, "", "order_id", false),
		Status:           p.str(top, "", "status", true),
		AppealStatus:     p.str(d, "disputes.", "disputes_appeal_status", false),
		CloseStatus:      p.str(d, "disputes.", "disputes_status", false),
		Reason:           p.str(d, "disputes.", "disputes_reason", false),
		ReplyDeadline:    p.time(d, "disputes.", "disputes_reply_deadline", false),
		CreatedAt:        p.time(d, "disputes.", "disputes_date", true),
		DisputeType:      p.str(d, "disputes.", "disputes_type", false),
		DisputeTimes:     p.str(d, "disputes.", "disputes_times", false),
		AppealPeriodFrom: p.time(d, "disputes.", "disputes_period_from", false),
		AppealPeriodTo:   p.time(d, "disputes.", "disputes_period_to", false),
	}
	rec.Amount.Value = p.str(d, "disputes.", "disputes_amount", false)
	rec.Amount.Currency = p.str(d, "disputes.", "disputes_currency", false)
	if p.err == nil && rec.Amount.Value != "" && !decimal.MatchString(rec.Amount.Value) {
		p.err = &FieldError{Field: "disputes.disputes_amount", Msg: fmt.Sprintf("%q is not a decimal string", rec.Amount.Value)}
	}
	if p.err == nil && rec.DisputeTimes != "" && !count.MatchString(rec.DisputeTimes) {
		p.err = &FieldError{Field: "disputes.disputes_times", Msg: fmt.Sprintf("%q is not a count", rec.DisputeTimes)}
	}
	if p.err != nil {
		return Record{}, p.err
	}
	return rec, nil
}

type fieldParser struct{ err error }

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// str reads a string field. Optional fields may be absent or null; a
// required one must be a non-empty string.
func (p *fieldParser) str(m map[string]json.RawMessage, path, name string, required bool) string {
	if p.err != nil {
		return ""
	}
	v, ok := m[name]
	if !ok || isNull(v) {
		if required {
			p.err = &FieldError{Field: path + name, Msg: "required"}
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		p.err = &FieldError{Field: path + name, Msg: "must be a JSON string, got " + truncate(string(v), 40)}
		return ""
	}
	if required && s == "" {
		p.err = &FieldError{Field: path + name, Msg: "required, got an empty string"}
	}
	return s
}

// time reads an RFC 3339 time string (e.g. 2026-04-02T16:28:09+08:00).
// An empty optional time is treated as absent.
func (p *fieldParser) time(m map[string]json.RawMessage, path, name string, required bool) string {
	s := p.str(m, path, name, required)
	if p.err != nil || s == "" {
		return s
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		p.err = &FieldError{Field: path + name, Msg: fmt.Sprintf("%q is not an RFC 3339 time", s)}
		return ""
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
