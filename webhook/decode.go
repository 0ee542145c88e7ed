package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"
)

// decodeStrict decodes exactly one JSON object. Unknown fields are allowed
// (providers add fields); a scalar of the wrong type is an error.
func decodeStrict(body []byte, v any) error {
	if !utf8.Valid(body) {
		return errors.New("body is not UTF-8")
	}
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return errors.New("body is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %s: must be a JSON %s", te.Field, te.Type)
		}
		return errors.New("body is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// requireString checks a required string field: present, not "", bounded.
func requireString(name string, v *string, maxLen int) error {
	if v == nil || *v == "" {
		return fmt.Errorf("field %s: required", name)
	}
	if len(*v) > maxLen {
		return fmt.Errorf("field %s: longer than %d characters", name, maxLen)
	}
	return nil
}

// optionalString checks an optional field: absent or null, else a
// non-empty bounded string (Alipay: never "").
func optionalString(name string, v *string, maxLen int) error {
	if v == nil {
		return nil
	}
	return requireString(name, v, maxLen)
}

// optionalTime checks an optional ISO 8601 date-time.
func optionalTime(name string, v *string) error {
	if err := optionalString(name, v, 64); err != nil || v == nil {
		return err
	}
	if _, err := time.Parse(time.RFC3339, *v); err != nil {
		return fmt.Errorf("field %s: must be an ISO 8601 date-time such as 2019-11-27T12:01:01+08:00", name)
	}
	return nil
}

// amount is {"currency","value"} with string scalars.
type amount struct {
	Currency *string `json:"currency"`
	Value    *string `json:"value"`
}

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	valueRE    = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

// optionalAmount checks an optional amount.
func optionalAmount(name string, a *amount) error {
	if a == nil {
		return nil
	}
	if a.Currency == nil || !currencyRE.MatchString(*a.Currency) {
		return fmt.Errorf("field %s.currency: must be a 3-letter ISO 4217 code", name)
	}
	if a.Value == nil || !valueRE.MatchString(*a.Value) {
		return fmt.Errorf("field %s.value: must be a number string", name)
	}
	return nil
}

// writeJSON writes an answer with extra headers.
func writeJSON(w http.ResponseWriter, h http.Header, status int, v any) {
	body, _ := json.Marshal(v)
	writeRaw(w, h, status, body)
}

func writeRaw(w http.ResponseWriter, h http.Header, status int, body []byte) {
	for k, vs := range h {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
