// Package params reads provider command params strictly: a JSON object
// whose members must all be known fields, string and text rules, and the
// upload content given inline as base64 or as a reference to an object in
// the evidence bucket. Error messages name each field by its full path, so
// the handlers built on it (disputeapi, ingenico) word their rejections
// identically.
package params

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/disputesync/disputesync/handlers"
)

// Object is a decoded JSON object whose members are all known fields.
type Object struct {
	prefix  string // field path of the object, e.g. "params"
	members map[string]json.RawMessage
}

// Decode decodes raw as a JSON object at path prefix, rejecting any
// member not in allowed. An absent or null object is an empty one.
func Decode(raw json.RawMessage, prefix string, allowed ...string) (*Object, error) {
	o := &Object{prefix: prefix, members: map[string]json.RawMessage{}}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return o, nil
	}
	if trimmed[0] != '{' || json.Unmarshal(trimmed, &o.members) != nil {
		return nil, handlers.Invalid(prefix, "must be a JSON object")
	}
	names := make([]string, 0, len(o.members))
	for name := range o.members {
		names = append(names, name)
	}
	// Sorted, so that the error for several unknown fields is stable.
	sort.Strings(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			return nil, handlers.Invalid(o.Field(name), "is not a known field")
		}
	}
	return o, nil
}

// Field returns the full path of a member, e.g. "params.content".
func (o *Object) Field(name string) string { return o.prefix + "." + name }

// Has reports whether a member is present and not null.
func (o *Object) Has(name string) bool {
	raw, ok := o.members[name]
	return ok && string(bytes.TrimSpace(raw)) != "null"
}

// Raw returns a member's undecoded JSON, nil if absent.
func (o *Object) Raw(name string) json.RawMessage { return o.members[name] }

// Str returns a string member. Absent or null is "" with no error unless
// required; an empty string is never accepted, because the providers'
// documents want optional fields left out rather than sent as "".
func (o *Object) Str(name string, required bool) (string, error) {
	if !o.Has(name) {
		if required {
			return "", handlers.Invalid(o.Field(name), "is required")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(o.members[name], &s); err != nil {
		return "", handlers.Invalid(o.Field(name), "must be a JSON string")
	}
	if s == "" {
		return "", handlers.Invalid(o.Field(name), "must not be empty")
	}
	return s, nil
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
