package handlers

import (
	"errors"
	"fmt"
	"time"
)

// CodeInvalidCommand is the result code of a command that is malformed.
const CodeInvalidCommand = "INVALID_COMMAND"

// InvalidError says which field of a command breaks which rule. Its code is
// always INVALID_COMMAND.
type InvalidError struct {
	Field string // e.g. "params.escalationAmount.value"
	Rule  string // e.g. "must be a positive integer string"
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return e.Rule
	}
	return e.Field + ": " + e.Rule
}

// Invalid returns an *InvalidError.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Rule: fmt.Sprintf(format, args...)}
}

// RuleError is a provider business rule checked locally: the command is
// rejected with the code the provider would answer, and nothing is sent.
type RuleError struct {
	Code    string // e.g. "EXCEEDS_ESCALATION_REQUEST_LIMIT"
	Message string
}

func (e *RuleError) Error() string { return e.Code + ": " + e.Message }

// ProviderError is a provider's refusal or failure answer.
type ProviderError struct {
	Code       string // the provider's result code, or "HTTP_<status>"
	Message    string
	HTTPStatus int    // 0 when the transport failed before a status
	Body       []byte // the provider's response body, if any
}

func (e *ProviderError) Error() string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("provider answered %s (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
	}
	return fmt.Sprintf("provider answered %s: %s", e.Code, e.Message)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as final: the command fails and is not retried.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as retryable no sooner than delay.
func RetryAfter(err error, delay time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, delay: delay}
}

// RetryDelay returns the delay of an error marked RetryAfter.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.delay, true
	}
	return 0, false
}

// Code returns the provider or rule code carried by err, if any.
func Code(err error) string {
	var pe *ProviderError
	var re *RuleError
	var ie *InvalidError
	switch {
	case errors.As(err, &re):
		return re.Code
	case errors.As(err, &ie):
		return CodeInvalidCommand
	case errors.As(err, &pe):
		return pe.Code
	}
	return ""
}
