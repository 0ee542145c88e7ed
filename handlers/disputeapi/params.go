package disputeapi

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

// object is a decoded JSON object whose members are all known fields.
type object struct {
	prefix  string // field path of the object, e.g. "params"
	members map[string]json.RawMessage
}

// decodeObject decodes raw as a JSON object at path prefix, rejecting any
// member not in allowed. An absent or null object is an empty one.
func decodeObject(raw json.RawMessage, prefix string, allowed ...string) (*object, error) {
	o := &object{prefix: prefix, members: map[string]json.RawMessage{}}
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
	sort.Strings(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			return nil, handlers.Invalid(o.field(name), "is not a known field")
		}
	}
	return o, nil
}

func (o *object) field(name string) string { return o.prefix + "." + name }

// has reports whether a member is present and not null.
func (o *object) has(name string) bool {
	raw, ok := o.members[name]
	return ok && string(bytes.TrimSpace(raw)) != "null"
}

// str returns a string member. Absent or null is "" with no error unless
// required; an empty string is never accepted, because the providers'
// documents want optional fields left out rather than sent as "".
func (o *object) str(name string, required bool) (string, error) {
	if !o.has(name) {
		if required {
			return "", handlers.Invalid(o.field(name), "is required")
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(o.members[name], &s); err != nil {
		return "", handlers.Invalid(o.field(name), "must be a JSON string")
	}
	if s == "" {
		return "", handlers.Invalid(o.field(name), "must not be empty")
	}
	return s, nil
}

// checkText applies the length and character rules shared by identifiers
// and names: at most maxRunes characters and no control characters (which
// would break headers and logs).
func checkText(field, s string, maxRunes int) error {
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return handlers.Invalid(field, "must be at most %d characters (has %d)", maxRunes, n)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return handlers.Invalid(field, "must not contain control characters")
	}
	return nil
}
