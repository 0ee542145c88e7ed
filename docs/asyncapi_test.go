package docs

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/worker"
)

// loadAsyncAPI reads asyncapi.yaml as plain maps.
func loadAsyncAPI(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	return doc
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// resolve follows a local "#/a/b" reference.
func resolve(t *testing.T, doc map[string]any, ref string) map[string]any {
	t.Helper()
	node := any(doc)
	for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		node = obj(node)[p]
	}
	if obj(node) == nil {
		t.Fatalf("reference %s resolves to nothing", ref)
	}
	return obj(node)
}

// schemaOf returns the schema name a message part ($ref ./schemas/X.json) names.
func schemaOf(part any) string {
	ref, _ := obj(obj(part)["schema"])["$ref"].(string)
	return strings.TrimSuffix(strings.TrimPrefix(ref, "./schemas/"), ".json")
}

// TestAsyncAPIMatchesTheContract checks what the parser cannot: that the
// document has a channel for every action and event type with the
// contract's address, that each message points at the right schema file,
// that every schema file is used, and that every message example is valid.
func TestAsyncAPIMatchesTheContract(t *testing.T) {
	t.Parallel()
	doc := loadAsyncAPI(t)
	if v := doc["asyncapi"]; v != "3.0.0" {
		t.Fatalf("asyncapi: %v", v)
	}
	channels := obj(doc["channels"])
	messageOf := func(channel, msg string) map[string]any {
		ch := obj(channels[channel])
		if ch == nil {
			t.Errorf("no channel %s", channel)
			return nil
		}
		ref, _ := obj(obj(ch["messages"])[msg])["$ref"].(string)
		return resolve(t, doc, ref)
	}
	address := func(channel string) string { s, _ := obj(channels[channel])["address"].(string); return s }
	for _, p := range handlers.Providers() {
		for _, a := range handlers.Actions(p) {
			key := p + "." + a
			for kind, msg := range map[string]string{"actions": "command", "results": "result", "dlq": "deadLetter"} {
				if got, want := address(kind+"."+key), "{prefix}."+kind+"."+key; got != want {
					t.Errorf("channel %s.%s: address %q, want %q", kind, key, got, want)
				}
				m := messageOf(kind+"."+key, msg)
				want := map[string]string{"actions": CommandSchema(p, a), "results": "result", "dlq": ""}[kind]
				if m != nil && want != "" && schemaOf(m["payload"]) != want {
					t.Errorf("channel %s.%s: payload schema %q, want %q", kind, key, schemaOf(m["payload"]), want)
				}
			}
		}
	}
	for _, typ := range []string{"dispute.opened", "dispute.updated", "dispute.closed", "dispute.deadline_approaching", "dispute.notified"} {
		ch := "events." + strings.TrimPrefix(typ, "dispute.")
		if got, want := address(ch), "{prefix}.events.{source}."+typ; got != want {
			t.Errorf("channel %s: address %q, want %q", ch, got, want)
		}
		if m := messageOf(ch, "disputeEvent"); m != nil && schemaOf(m["payload"]) != "event" {
			t.Errorf("channel %s: payload schema %q", ch, schemaOf(m["payload"]))
		}
	}
	for name, ch := range channels {
		params := obj(obj(ch)["parameters"])
		for _, p := range regexp.MustCompile(`\{([a-z]+)\}`).FindAllStringSubmatch(address(name), -1) {
			if params[p[1]] == nil {
				t.Errorf("channel %s: address parameter %s is not declared", name, p[1])
			}
		}
	}

	// Every schema file referenced, every reference a file, every example valid.
	raw, _ := os.ReadFile("asyncapi.yaml")
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\./schemas/([a-z0-9_.]+)\.json`).FindAllStringSubmatch(string(raw), -1) {
		used[m[1]] = true
		if !slices.Contains(Names(), m[1]) {
			t.Errorf("asyncapi.yaml refers to schemas/%s.json, which does not exist", m[1])
		}
	}
	for _, n := range Names() {
		if !used[n] {
			t.Errorf("schemas/%s.json is not used by asyncapi.yaml", n)
		}
	}
	examples := 0
	for id, m := range obj(obj(doc["components"])["messages"]) {
		msg := obj(m)
		payloadSchema, headerSchema := schemaOf(msg["payload"]), schemaOf(msg["headers"])
		if headerSchema == "" {
			t.Errorf("message %s has no headers schema", id)
		}
		list, _ := msg["examples"].([]any)
		if len(list) == 0 {
			t.Errorf("message %s has no examples", id)
		}
		for _, ex := range list {
			examples++
			if payloadSchema != "" {
				b, _ := json.Marshal(obj(ex)["payload"])
				if err := Validate(payloadSchema, b); err != nil {
					t.Errorf("message %s example %v: %v", id, obj(ex)["name"], err)
				}
			}
			h := map[string][]string{}
			for k, v := range obj(obj(ex)["headers"]) {
				s, _ := v.(string)
				h[k] = []string{s}
			}
			if err := ValidateHeaders(headerSchema, h); err != nil {
				t.Errorf("message %s example %v headers: %v", id, obj(ex)["name"], err)
			}
			// A command example's Nats-Msg-Id hashes its payload as compact
			// JSON with sorted keys (how Go writes a map), the bytes a
			// publisher of that example would send.
			if headerSchema == "headers.command" {
				b, _ := json.Marshal(obj(ex)["payload"])
				reqID, _ := obj(obj(ex)["payload"])["disputeRequestId"].(string)
				if got, want := h["Nats-Msg-Id"][0], worker.CommandMsgID(reqID, b); got != want {
					t.Errorf("message %s example %v: Nats-Msg-Id %s, want %s", id, obj(ex)["name"], got, want)
				}
			}
		}
	}
	if examples < 13 {
		t.Errorf("only %d message examples", examples)
	}
}
