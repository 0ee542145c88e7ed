package disputeapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/providerhttp"
)

// Envelope codes of the dispute API.
const (
	CodeSuccess     = "200"
	CodeCallerError = "400"
	CodeServerError = "500"
)

const (
	// DefaultRetryAfter is the delay after an HTTP 429 without Retry-After.
	DefaultRetryAfter = 5 * time.Second
	maxRetryAfter     = 10 * time.Minute
)

// envelope is every answer of the dispute API.
type envelope struct {
	Code string          `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// UnmarshalJSON accepts code as a JSON string (as documented) or number.
func (e *envelope) UnmarshalJSON(b []byte) error {
	var raw struct {
		Code json.RawMessage `json:"code"`
		Msg  string          `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var code string
	if err := json.Unmarshal(raw.Code, &code); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw.Code, &n); err != nil {
			return err
		}
		code = n.String()
	}
	*e = envelope{Code: code, Msg: raw.Msg, Data: raw.Data}
	return nil
}

// outcome is a classified answer.
type outcome struct {
	status int
	env    envelope
	body   []byte
	err    error // nil on success; permanent, RetryAfter or plain
}

func (o outcome) label() string {
	switch {
	case o.err == nil:
		return "ok"
	case handlers.IsPermanent(o.err):
		return "refused"
	}
	return "retryable"
}

// refusedWith reports whether the outcome is the provider's caller-error
// answer with the given msg, the "already done" proofs of recovery.
func (o outcome) refusedWith(msg string) bool {
	return o.err != nil && o.env.Code == CodeCallerError && o.env.Msg == msg
}

// response is the handlers.Response of a successful outcome.
func (o outcome) response() *handlers.Response {
	return &handlers.Response{Code: o.env.Code, Message: o.env.Msg, Body: json.RawMessage(o.body)}
}

// classify is the one table from an answer to an outcome; the package doc
// lists it.
func classify(r *providerhttp.Response) outcome {
	o := outcome{status: r.Status, body: r.Body}
	httpCode := "HTTP_" + strconv.Itoa(r.Status)
	parsed := json.Unmarshal(r.Body, &o.env) == nil && o.env.Code != ""
	pe := &handlers.ProviderError{Code: httpCode, Message: http.StatusText(r.Status), HTTPStatus: r.Status, Body: r.Body}
	if parsed {
		pe.Code, pe.Message = o.env.Code, o.env.Msg
	}
	is2xx := r.Status >= 200 && r.Status < 300
	switch {
	case r.Status == http.StatusTooManyRequests:
		o.err = handlers.RetryAfter(pe, retryAfter(r.Header, time.Now()))
	case r.Status >= 500:
		o.err = pe
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		pe.Code = httpCode // a credentials problem, whatever the envelope says
		o.err = handlers.Permanent(pe)
	case parsed && o.env.Code == CodeSuccess && is2xx:
		return o
	case parsed && o.env.Code == CodeCallerError:
		o.err = handlers.Permanent(pe)
	case parsed && o.env.Code == CodeServerError:
		o.err = pe
	case r.Status >= 400:
		pe.Code = httpCode
		o.err = handlers.Permanent(pe)
	default:
		// An unreadable answer or an undocumented code: the outcome is unknown.
		if !parsed {
			pe.Message = "unreadable answer"
		}
		o.err = pe
	}
	return o
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	return providerhttp.RetryAfter(h, now, DefaultRetryAfter, maxRetryAfter)
}
