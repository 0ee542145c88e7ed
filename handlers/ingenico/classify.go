package ingenico

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/providerhttp"
)

const (
	// DefaultRetryAfter is the delay after an HTTP 429 without Retry-After.
	DefaultRetryAfter = 5 * time.Second
	// maxRetryAfter bounds a provider's Retry-After so a bad header cannot
	// park a command for days.
	maxRetryAfter = 10 * time.Minute
	// CategoryIOError is the error category Ingenico uses for technical
	// errors, which are worth retrying whatever the HTTP status.
	CategoryIOError = "IO_ERROR"
)

// errorResponse is Ingenico's ErrorResponse.
type errorResponse struct {
	ErrorID string     `json:"errorId"`
	Errors  []apiError `json:"errors"`
}

type apiError struct {
	Code           string `json:"code"`
	ID             string `json:"id"`
	Category       string `json:"category"`
	Message        string `json:"message"`
	HTTPStatusCode int    `json:"httpStatusCode"`
}

// outcome is a classified answer.
type outcome struct {
	status int
	code   string
	resp   *handlers.Response // on success
	err    error              // nil on success; permanent, RetryAfter or plain
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

// classify is the one table from an Ingenico answer to an outcome; the
// package doc lists it. upload says the answer must carry a file id.
func classify(r *providerhttp.Response, upload bool) outcome {
	o := outcome{status: r.Status, code: "HTTP_" + strconv.Itoa(r.Status)}
	if r.Status >= 200 && r.Status < 300 {
		var ans struct {
			ID     *string `json:"id"`
			Status string  `json:"status"`
		}
		if err := json.Unmarshal(r.Body, &ans); err != nil {
			o.err = &handlers.ProviderError{Code: o.code, Message: "unreadable success answer", HTTPStatus: r.Status, Body: r.Body}
			return o
		}
		if upload && (ans.ID == nil || *ans.ID == "") {
			o.err = &handlers.ProviderError{Code: o.code, Message: "success answer without a file id", HTTPStatus: r.Status, Body: r.Body}
			return o
		}
		if ans.Status != "" {
			o.code = ans.Status
		}
		msg := ""
		if upload {
			msg = "file id " + *ans.ID
		}
		o.resp = &handlers.Response{Code: o.code, Message: msg, Body: json.RawMessage(r.Body)}
		return o
	}

	var er errorResponse
	pe := &handlers.ProviderError{Code: o.code, Message: http.StatusText(r.Status), HTTPStatus: r.Status, Body: r.Body}
	ioError := false
	if json.Unmarshal(r.Body, &er) == nil && len(er.Errors) > 0 {
		first := er.Errors[0]
		switch {
		case first.ID != "":
			pe.Code = first.ID
		case first.Code != "":
			pe.Code = first.Code
		}
		if first.Message != "" {
			pe.Message = first.Message
		}
		for _, e := range er.Errors {
			ioError = ioError || e.Category == CategoryIOError
		}
	}
	o.code = pe.Code
	switch {
	case r.Status == http.StatusTooManyRequests:
		o.err = handlers.RetryAfter(pe, retryAfter(r.Header, time.Now()))
	case r.Status == http.StatusConflict:
		// The same idempotence key is still being processed: ask again later.
		o.err = pe
	case ioError:
		o.err = pe
	case r.Status >= 400 && r.Status < 500:
		o.err = handlers.Permanent(pe)
	default:
		// 5xx, and statuses Ingenico does not document: the outcome is unknown.
		o.err = pe
	}
	return o
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	return providerhttp.RetryAfter(h, now, DefaultRetryAfter, maxRetryAfter)
}
