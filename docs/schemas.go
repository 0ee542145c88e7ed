// Package docs holds disputesync's machine-readable contract (docs/contract.md
// section 2): asyncapi.yaml, which describes every subject, message and
// header, and the JSON Schemas (draft 2020-12) of the messages in schemas/,
// embedded here so that tests can validate the messages the code really
// produces against them. A document that other teams generate clients from
// must not drift from the code; validating real messages is how that is
// kept true.
//
// Schema names are the file names without ".json": "command.<provider>.<action>",
// "result", "event", and "headers.command", "headers.event", "headers.result",
// "headers.deadletter" for the NATS headers (a header map is validated as a
// JSON object of strings).
package docs

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/disputesync/disputesync/worker"
)

//go:embed schemas/*.json
var schemaFiles embed.FS

// baseURL names the embedded files for the compiler; nothing is fetched.
const baseURL = "file:///disputesync/docs/schemas/"

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error

	countMu sync.Mutex
	counts  = map[string]int{}
)

// compile loads and compiles every embedded schema once. Formats
// (date-time) are asserted, not just annotated, because the contract says
// times are RFC 3339.
func compile() (map[string]*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		files, err := fs.Glob(schemaFiles, "schemas/*.json")
		if err != nil {
			compileErr = fmt.Errorf("docs: list schemas: %w", err)
			return
		}
		names := make([]string, 0, len(files))
		for _, f := range files {
			b, err := schemaFiles.ReadFile(f)
			if err != nil {
				compileErr = fmt.Errorf("docs: read %s: %w", f, err)
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				compileErr = fmt.Errorf("docs: parse %s: %w", f, err)
				return
			}
			name := strings.TrimSuffix(path.Base(f), ".json")
			if err := c.AddResource(baseURL+name+".json", doc); err != nil {
				compileErr = fmt.Errorf("docs: add %s: %w", f, err)
				return
			}
			names = append(names, name)
		}
		out := make(map[string]*jsonschema.Schema, len(names))
		for _, name := range names {
			s, err := c.Compile(baseURL + name + ".json")
			if err != nil {
				compileErr = fmt.Errorf("docs: compile %s: %w", name, err)
				return
			}
			out[name] = s
		}
		compiled = out
	})
	return compiled, compileErr
}

// Names lists the schema names, sorted.
func Names() []string {
	m, err := compile()
	if err != nil {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

// CommandSchema is the schema name of an action's command.
func CommandSchema(provider, action string) string { return "command." + provider + "." + action }

// ErrUnknownSchema is returned for a schema name that has no file.
var ErrUnknownSchema = errors.New("docs: no such schema")

// Validate checks one JSON message against a schema. data must be UTF-8
// (RFC 8259; the worker refuses anything else) holding exactly one JSON
// value. A *jsonschema.ValidationError in the chain says which keyword
// failed where.
func Validate(schema string, data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("docs: %s: not valid UTF-8", schema)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("docs: %s: not JSON: %w", schema, err)
	}
	return validateValue(schema, v)
}

// ValidateHeaders checks NATS headers (nats.Header converts to the argument
// type) against a "headers.*" schema. A header with several values is
// checked by its first, the one nats.Header.Get returns.
func ValidateHeaders(schema string, h map[string][]string) error {
	obj := make(map[string]any, len(h))
	for k, vs := range h {
		if len(vs) > 0 {
			obj[k] = vs[0]
		}
	}
	return validateValue(schema, obj)
}

func validateValue(schema string, v any) error {
	m, err := compile()
	if err != nil {
		return err
	}
	s, ok := m[schema]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSchema, schema)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("docs: message does not match schema %s: %w", schema, err)
	}
	countMu.Lock()
	counts[schema]++
	countMu.Unlock()
	return nil
}

// Validated returns how many messages passed each schema in this process,
// so integration tests can report (and assert) how many real messages they
// checked.
func Validated() map[string]int {
	countMu.Lock()
	defer countMu.Unlock()
	return maps.Clone(counts)
}

// ValidateMessage checks a message read from (or about to be published on)
// one of the deployment's subjects: it picks the body and header schemas
// from the subject, and checks what no schema can, that the subject and
// headers agree with the body (event source and type, result provider and
// action, Nats-Msg-Id, Dispute-Id, Dispute-Request-Id, and a command's
// Nats-Msg-Id against its body). The body of a dead
// letter is the original command's bytes, which may be anything, so only
// its headers are checked.
func ValidateMessage(prefix, subject string, header map[string][]string, data []byte) error {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return fmt.Errorf("docs: subject %q is not under prefix %q", subject, prefix)
	}
	kind, rest, _ := strings.Cut(rest, ".")
	first, second, ok := strings.Cut(rest, ".")
	if !ok || first == "" || second == "" {
		return fmt.Errorf("docs: subject %q is not %s.%s.<a>.<b>", subject, prefix, kind)
	}
	get := func(k string) string {
		if vs := header[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	switch kind {
	case "events":
		if err := ValidateHeaders("headers.event", header); err != nil {
			return err
		}
		if err := Validate("event", data); err != nil {
			return err
		}
		var ev struct{ ID, Source, Type, Subject string }
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("docs: event: %w", err)
		}
		switch {
		case ev.Source != first || ev.Type != second:
			return fmt.Errorf("docs: event %s/%s published on subject %q", ev.Source, ev.Type, subject)
		case get("Nats-Msg-Id") != ev.ID:
			return fmt.Errorf("docs: event Nats-Msg-Id %q is not its id %q", get("Nats-Msg-Id"), ev.ID)
		case get("Dispute-Id") != ev.Subject:
			return fmt.Errorf("docs: event Dispute-Id %q is not its subject %q", get("Dispute-Id"), ev.Subject)
		}
		return nil
	case "results":
		if err := ValidateHeaders("headers.result", header); err != nil {
			return err
		}
		if err := Validate("result", data); err != nil {
			return err
		}
		var res struct{ DisputeRequestID, Provider, Action string }
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("docs: result: %w", err)
		}
		switch {
		case res.Provider+"."+res.Action != rest:
			return fmt.Errorf("docs: result of %s.%s published on subject %q", res.Provider, res.Action, subject)
		case get("Dispute-Request-Id") != res.DisputeRequestID:
			return fmt.Errorf("docs: result Dispute-Request-Id %q is not its disputeRequestId %q", get("Dispute-Request-Id"), res.DisputeRequestID)
		}
		return nil
	case "dlq":
		if err := ValidateHeaders("headers.deadletter", header); err != nil {
			return err
		}
		if orig := get("Dlq-Original-Subject"); !strings.HasPrefix(orig, prefix+".actions.") {
			return fmt.Errorf("docs: dead letter's Dlq-Original-Subject %q is not an actions subject", orig)
		}
		return nil
	case "actions":
		if err := ValidateHeaders("headers.command", header); err != nil {
			return err
		}
		if err := Validate(CommandSchema(first, second), data); err != nil {
			return err
		}
		var cmd struct{ DisputeRequestID string }
		if err := json.Unmarshal(data, &cmd); err != nil {
			return fmt.Errorf("docs: command: %w", err)
		}
		if id := get("Nats-Msg-Id"); id != "" && id != worker.CommandMsgID(cmd.DisputeRequestID, data) {
			return fmt.Errorf("docs: command Nats-Msg-Id %q is not %q, its disputeRequestId and the start of its body's SHA-256", id, worker.CommandMsgID(cmd.DisputeRequestID, data))
		}
		return nil
	}
	return fmt.Errorf("docs: subject %q is not events, actions, results or dlq", subject)
}
