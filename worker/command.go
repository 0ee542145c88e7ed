package worker

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/disputesync/disputesync/handlers"
)

// MaxCommandBytes caps a command before it is decoded. Evidence larger than
// this travels through the object store (handlers.ContentRef).
const MaxCommandBytes = 8 << 20

// CommandMsgID is the Nats-Msg-Id of a command (docs/contract.md section
// 2): its disputeRequestId, a colon, and the first 16 hex digits of the
// SHA-256 of the body as published. An identical re-publish has the same id,
// so JetStream drops it within its duplicate window; a reuse of the id for
// another body has another one, so it reaches the worker and is rejected.
func CommandMsgID(disputeRequestID string, body []byte) string {
	sum := sha256.Sum256(body)
	return disputeRequestID + ":" + hex.EncodeToString(sum[:8])
}

// DecodeCommand decodes and checks the envelope of an action command
// (docs/contract.md section 2). It is strict: the bytes must be valid UTF-8 holding
// one JSON object, with no duplicate keys at any level (so every reader sees
// the same command), no unknown top-level fields and no trailing data.
// Errors are *handlers.InvalidError. The returned id is whatever
// disputeRequestId could be read, even when the command is invalid, so the
// rejection can carry it.
func DecodeCommand(raw []byte) (cmd *handlers.Command, id string, err error) {
	id = bestEffortID(raw)
	if len(raw) == 0 {
		return nil, id, handlers.Invalid("", "command is empty")
	}
	if len(raw) > MaxCommandBytes {
		return nil, id, handlers.Invalid("", "command is %d bytes, more than the %d allowed (send attachments through the evidence object store)", len(raw), MaxCommandBytes)
	}
	if !utf8.Valid(raw) {
		return nil, id, handlers.Invalid("", "command is not valid UTF-8")
	}
	if err := checkJSON(raw); err != nil {
		return nil, id, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c handlers.Command
	if err := dec.Decode(&c); err != nil {
		return nil, id, handlers.Invalid(fieldOf(err), "%s", describeJSONError(err))
	}
	if err := checkEnvelope(&c); err != nil {
		return nil, id, err
	}
	return &c, c.DisputeRequestID, nil
}

func checkEnvelope(c *handlers.Command) error {
	if err := CheckRequestID(c.DisputeRequestID); err != nil {
		return err
	}
	if len(c.DisputeID) > 64 {
		return handlers.Invalid("disputeId", "must be at most 64 characters")
	}
	if c.DisputeID != "" && !printableASCII(c.DisputeID) {
		return handlers.Invalid("disputeId", "must be printable ASCII without spaces")
	}
	if len(c.RequestedBy) > 256 {
		return handlers.Invalid("requestedBy", "must be at most 256 characters")
	}
	if len(c.Merchant) > 64 {
		return handlers.Invalid("merchant", "must be at most 64 characters")
	}
	if len(c.Params) > 0 {
		trimmed := bytes.TrimSpace(c.Params)
		if !bytes.Equal(trimmed, []byte("null")) && (len(trimmed) == 0 || trimmed[0] != '{') {
			return handlers.Invalid("params", "must be a JSON object")
		}
		if bytes.Equal(trimmed, []byte("null")) {
			c.Params = nil
		}
	}
	return nil
}

// CheckRequestID applies docs/contract.md section 2's rule to a disputeRequestId:
// 1 to 64 characters. It also becomes a Redis key and a NATS header, so
// only printable ASCII without spaces is accepted.
func CheckRequestID(id string) error {
	switch {
	case id == "":
		return handlers.Invalid("disputeRequestId", "is required (1 to 64 characters)")
	case len(id) > 64:
		return handlers.Invalid("disputeRequestId", "must be at most 64 characters, got %d", len(id))
	case !printableASCII(id):
		return handlers.Invalid("disputeRequestId", "must be printable ASCII without spaces or control characters")
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// checkJSON walks the token stream once: one object, no duplicate keys at
// any depth, nothing after it.
func checkJSON(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return handlers.Invalid("", "command is not JSON: %s", describeJSONError(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return handlers.Invalid("", "command must be a JSON object")
	}
	if err := walkObject(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return handlers.Invalid("", "command has data after its JSON object")
	}
	return nil
}

// envelopeFields are the top-level fields of a command, matched exactly:
// encoding/json alone would take "disputeID" for "disputeId".
var envelopeFields = map[string]bool{"disputeRequestId": true, "disputeId": true, "params": true, "requestedBy": true, "merchant": true}

func walkObject(dec *json.Decoder, path string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return handlers.Invalid(path, "command is not valid JSON: %s", describeJSONError(err))
		}
		key := tok.(string)
		field := key
		if path != "" {
			field = path + "." + key
		}
		if seen[key] {
			return handlers.Invalid(field, "appears twice (duplicate JSON keys are refused so every reader sees the same command)")
		}
		seen[key] = true
		if path == "" && !envelopeFields[key] {
			return handlers.Invalid(field, "is not a field of an action command (allowed: disputeRequestId, disputeId, params, requestedBy, merchant)")
		}
		if err := walkValue(dec, field); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return handlers.Invalid(path, "command is not valid JSON: %s", describeJSONError(err))
	}
	return nil
}

func walkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return handlers.Invalid(path, "command is not valid JSON: %s", describeJSONError(err))
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return walkObject(dec, path)
	case '[':
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return handlers.Invalid(path, "command is not valid JSON: %s", describeJSONError(err))
		}
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("must be a JSON %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	}
	if msg := err.Error(); len(msg) > 13 && msg[:13] == "json: unknown" {
		return "is not a field of an action command (allowed: disputeRequestId, disputeId, params, requestedBy, merchant)"
	}
	return err.Error()
}

func jsonKind(k string) string {
	if k == "struct" || k == "map" {
		return "object"
	}
	return k
}

func fieldOf(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	if msg := err.Error(); len(msg) > 20 && msg[:20] == "json: unknown field " {
		f := msg[20:]
		if len(f) >= 2 && f[0] == '"' {
			return f[1 : len(f)-1]
		}
		return f
	}
	return ""
}

// bestEffortID reads disputeRequestId out of bytes that may not be a valid
// command, so that its rejection can still name it.
func bestEffortID(raw []byte) string {
	var probe struct {
		ID any `json:"disputeRequestId"`
	}
	// Only the first JSON value: trailing data must not hide the id.
	if len(raw) > MaxCommandBytes || json.NewDecoder(bytes.NewReader(raw)).Decode(&probe) != nil {
		return ""
	}
	s, ok := probe.ID.(string)
	if !ok || CheckRequestID(s) != nil {
		return ""
	}
	return s
}

// Fingerprint identifies what a command asks for: the same provider,
// action, dispute, merchant and params (compared as canonical JSON, so key
// order and spacing do not matter) give the same fingerprint.
func Fingerprint(provider, action string, c *handlers.Command) (string, error) {
	var params any
	if len(c.Params) > 0 {
		dec := json.NewDecoder(bytes.NewReader(c.Params))
		dec.UseNumber()
		if err := dec.Decode(&params); err != nil {
			return "", fmt.Errorf("worker: fingerprint params: %w", err)
		}
	}
	// json.Marshal sorts map keys and UseNumber keeps numbers as written,
	// so this is a canonical form.
	canon, err := json.Marshal(params)
	if err != nil {
		return "", fmt.Errorf("worker: fingerprint params: %w", err)
	}
	h := sha256.New()
	for _, part := range []string{provider, action, c.DisputeID, c.Merchant} {
		fmt.Fprintf(h, "%d:%s|", len(part), part)
	}
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil)), nil
}
