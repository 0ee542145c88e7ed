// Package params reads provider command params strictly: a JSON object
// whose members must all be known fields and appear once, string and text
// rules, and the upload content given inline as base64 or as a reference to
// an object in the evidence bucket. Error messages name each field by its
// full path, so every handler words its rejections identically.
package params

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/disputesync/disputesync/handlers"
)

// Rules, worded once so that every field says the same thing.
const (
	RuleRequired   = "is required"
	RuleString     = "must be a JSON string"
	RuleNotEmpty   = `must not be "" (leave an optional field out, or null)`
	RuleObject     = "must be a JSON object"
	RuleArray      = "must be a JSON array"
	RuleEmptyArray = "must not be an empty array (leave an optional field out, or null)"
	RuleBase64     = "must be standard Base64"
)

// Object is one JSON object of a command's params, read strictly: duplicate
// and unknown keys are refused (a typo or a second value must never be
// dropped silently), and every accessor names the field by its full path.
type Object struct {
	path   string
	fields map[string]json.RawMessage
}

// ParseObject reads raw as a JSON object whose keys must all be in allowed.
// what names the provider structure in the error for an unknown key ("" for
// a plain "is not a known field").
func ParseObject(path, what string, raw json.RawMessage, allowed ...string) (*Object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return nil, handlers.Invalid(path, RuleObject)
	}
	o := &Object{path: path, fields: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, handlers.Invalid(path, "is not valid JSON")
		}
		key := tok.(string) // object keys are always strings
		if _, dup := o.fields[key]; dup {
			return nil, handlers.Invalid(o.Field(key), "appears twice")
		}
		if !slices.Contains(allowed, key) {
			if what == "" {
				return nil, handlers.Invalid(o.Field(key), "is not a known field")
			}
			return nil, handlers.Invalid(o.Field(key), "is not a field of %s", what)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, handlers.Invalid(o.Field(key), "is not valid JSON")
		}
		o.fields[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, handlers.Invalid(path, "is not valid JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, handlers.Invalid(path, "has data after the object")
	}
	return o, nil
}

// ParseParams reads a command's params; absent or null params are an empty
// object.
func ParseParams(what string, raw json.RawMessage, allowed ...string) (*Object, error) {
	return Decode(raw, "params", what, allowed...)
}

// Decode reads raw as the object at path; absent or null is an empty
// object.
func Decode(raw json.RawMessage, path, what string, allowed ...string) (*Object, error) {
	if isNull(raw) {
		return &Object{path: path, fields: map[string]json.RawMessage{}}, nil
	}
	return ParseObject(path, what, raw, allowed...)
}

// Field returns the full path of a field of o.
func (o *Object) Field(name string) string { return o.path + "." + name }

// Has reports whether name is present and not null.
func (o *Object) Has(name string) bool {
	v, ok := o.fields[name]
	return ok && !isNull(v)
}

// Raw returns a field's raw value if present and not null.
func (o *Object) Raw(name string) (json.RawMessage, bool) {
	if !o.Has(name) {
		return nil, false
	}
	return o.fields[name], true
}

// String reads a string field of at most maxLen characters (0: no limit).
// Absent and null are the same; "" is refused, because the providers'
// documents want optional fields left out rather than sent as "".
func (o *Object) String(name string, required bool, maxLen int) (string, error) {
	v, ok := o.Raw(name)
	if !ok {
		if required {
			return "", handlers.Invalid(o.Field(name), RuleRequired)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", handlers.Invalid(o.Field(name), RuleString)
	}
	if s == "" {
		return "", handlers.Invalid(o.Field(name), RuleNotEmpty)
	}
	if maxLen > 0 && utf8.RuneCountInString(s) > maxLen {
		return "", handlers.Invalid(o.Field(name), "must be at most %d characters", maxLen)
	}
	return s, nil
}

// Enum reads a string field whose value must be one of values.
func (o *Object) Enum(name string, required bool, values ...string) (string, error) {
	s, err := o.String(name, required, 0)
	if err != nil || s == "" {
		return s, err
	}
	if !slices.Contains(values, s) {
		return "", handlers.Invalid(o.Field(name), "must be one of %s", strings.Join(values, ", "))
	}
	return s, nil
}

// Object reads a nested object with its own allowed keys.
func (o *Object) Object(name, what string, required bool, allowed ...string) (*Object, error) {
	v, ok := o.Raw(name)
	if !ok {
		if required {
			return nil, handlers.Invalid(o.Field(name), RuleRequired)
		}
		return nil, nil
	}
	return ParseObject(o.Field(name), what, v, allowed...)
}

// Array reads an array field; an empty array is refused like "".
func (o *Object) Array(name string, required bool) ([]json.RawMessage, error) {
	v, ok := o.Raw(name)
	if !ok {
		if required {
			return nil, handlers.Invalid(o.Field(name), RuleRequired)
		}
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, handlers.Invalid(o.Field(name), RuleArray)
	}
	if len(items) == 0 {
		return nil, handlers.Invalid(o.Field(name), RuleEmptyArray)
	}
	return items, nil
}

// Item returns the path of an array element.
func (o *Object) Item(name string, i int) string { return fmt.Sprintf("%s.%s[%d]", o.path, name, i) }

// CheckBase64 refuses s unless it is standard Base64.
func CheckBase64(field, s string) error {
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return handlers.Invalid(field, RuleBase64)
	}
	return nil
}

// CheckText applies the length and character rules shared by identifiers
// and names: at most maxRunes characters and no control characters (which
// would break headers and logs).
func CheckText(field, s string, maxRunes int) error {
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return handlers.Invalid(field, "must be at most %d characters (has %d)", maxRunes, n)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return handlers.Invalid(field, "must not contain control characters")
	}
	return nil
}

// Encode marshals a request body the way it is signed and sent: no HTML
// escaping (the providers read UTF-8 JSON) and no trailing newline.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}
