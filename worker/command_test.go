package worker

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/disputesync/disputesync/handlers"
)

// Malformed commands and the exact error each gets (field: rule).
func TestDecodeCommandRejects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 65)
	cases := []struct {
		name, in, wantErr, wantID string
	}{
		{"empty", ``, "command is empty", ""},
		{"not json", `hello`, "command is not JSON: syntax error at byte 1: invalid character 'h' looking for beginning of value", ""},
		{"array", `[1,2]`, "command must be a JSON object", ""},
		{"string", `"x"`, "command must be a JSON object", ""},
		{"number", `42`, "command must be a JSON object", ""},
		{"null", `null`, "command must be a JSON object", ""},
		{"truncated", `{"disputeRequestId":"a"`, "command is not valid JSON: truncated JSON", ""},
		{"truncated string", `{"disputeRequestId":"a`, "disputeRequestId: command is not valid JSON: truncated JSON", ""},
		{"trailing data", `{"disputeRequestId":"a"} {}`, "command has data after its JSON object", "a"},
		{"trailing garbage", `{"disputeRequestId":"a"}x`, "command has data after its JSON object", "a"},
		{"invalid utf8", "{\"disputeRequestId\":\"a\xff\"}", "command is not valid UTF-8", ""},
		{"missing id", `{"disputeId":"D"}`, "disputeRequestId: is required (1 to 64 characters)", ""},
		{"empty id", `{"disputeRequestId":""}`, "disputeRequestId: is required (1 to 64 characters)", ""},
		{"id too long", `{"disputeRequestId":"` + long + `"}`, "disputeRequestId: must be at most 64 characters, got 65", ""},
		{"id with space", `{"disputeRequestId":"a b"}`, "disputeRequestId: must be printable ASCII without spaces or control characters", ""},
		{"id with tab", `{"disputeRequestId":"a\tb"}`, "disputeRequestId: must be printable ASCII without spaces or control characters", ""},
		{"id with newline", `{"disputeRequestId":"a\nb"}`, "disputeRequestId: must be printable ASCII without spaces or control characters", ""},
		{"id non-ascii", `{"disputeRequestId":"réf-1"}`, "disputeRequestId: must be printable ASCII without spaces or control characters", ""},
		{"id a number", `{"disputeRequestId":17}`, "disputeRequestId: must be a JSON string, got number", ""},
		{"id null", `{"disputeRequestId":null}`, "disputeRequestId: is required (1 to 64 characters)", ""},
		{"id an object", `{"disputeRequestId":{"a":1}}`, "disputeRequestId: must be a JSON string, got object", ""},
		{"duplicate id", `{"disputeRequestId":"a","disputeRequestId":"b"}`, "disputeRequestId: appears twice (duplicate JSON keys are refused so every reader sees the same command)", "b"},
		{"duplicate nested", `{"disputeRequestId":"a","params":{"x":"1","x":"2"}}`, "params.x: appears twice (duplicate JSON keys are refused so every reader sees the same command)", "a"},
		{"duplicate in array", `{"disputeRequestId":"a","params":{"l":[{"k":1,"k":2}]}}`, "params.l[0].k: appears twice (duplicate JSON keys are refused so every reader sees the same command)", "a"},
		{"unknown field", `{"disputeRequestId":"a","disputeID":"D"}`, "disputeID: is not a field of an action command (allowed: disputeRequestId, disputeId, params, requestedBy, merchant)", "a"},
		{"dispute id too long", `{"disputeRequestId":"a","disputeId":"` + long + `"}`, "disputeId: must be at most 64 characters", "a"},
		{"dispute id with space", `{"disputeRequestId":"a","disputeId":"D 1"}`, "disputeId: must be printable ASCII without spaces", "a"},
		{"dispute id a number", `{"disputeRequestId":"a","disputeId":12}`, "disputeId: must be a JSON string, got number", "a"},
		{"params array", `{"disputeRequestId":"a","params":[1]}`, "params: must be a JSON object", "a"},
		{"params string", `{"disputeRequestId":"a","params":"x"}`, "params: must be a JSON object", "a"},
		{"params number", `{"disputeRequestId":"a","params":1}`, "params: must be a JSON object", "a"},
		{"requestedBy number", `{"disputeRequestId":"a","requestedBy":1}`, "requestedBy: must be a JSON string, got number", "a"},
		{"requestedBy too long", `{"disputeRequestId":"a","requestedBy":"` + strings.Repeat("x", 257) + `"}`, "requestedBy: must be at most 256 characters", "a"},
		{"merchant too long", `{"disputeRequestId":"a","merchant":"` + long + long + `"}`, "merchant: must be at most 64 characters", "a"},
		{"too large", `{"disputeRequestId":"a","params":{"x":"` + strings.Repeat("x", MaxCommandBytes) + `"}}`, "command is 8388650 bytes, more than the 8388608 allowed (send attachments through the evidence object store)", ""},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, id, err := DecodeCommand([]byte(c.in))
			if err == nil {
				t.Fatalf("accepted: %+v", cmd)
			}
			var inv *handlers.InvalidError
			if !asInvalid(err, &inv) {
				t.Fatalf("error %T %v is not an InvalidError", err, err)
			}
			if err.Error() != c.wantErr {
				t.Fatalf("error\n got %q\nwant %q", err.Error(), c.wantErr)
			}
			if id != c.wantID {
				t.Fatalf("readable id %q, want %q", id, c.wantID)
			}
		})
	}
}

func asInvalid(err error, target **handlers.InvalidError) bool {
	e, ok := err.(*handlers.InvalidError)
	*target = e
	return ok
}

func TestDecodeCommandAccepts(t *testing.T) {
	t.Parallel()
	cmd, id, err := DecodeCommand([]byte(`{"disputeRequestId":"ops-1","disputeId":"D1","params":{"a":{"b":["1"]}},"requestedBy":"me","merchant":"APPLE"}`))
	if err != nil || id != "ops-1" || cmd.DisputeID != "D1" || cmd.Merchant != "APPLE" || string(cmd.Params) != `{"a":{"b":["1"]}}` {
		t.Fatalf("%+v %q %v", cmd, id, err)
	}
	cmd, _, err = DecodeCommand([]byte(`{"disputeRequestId":"ops-2","params":null}`))
	if err != nil || cmd.Params != nil {
		t.Fatalf("null params: %+v %v", cmd, err)
	}
}

func TestFingerprintIgnoresFormattingNotContent(t *testing.T) {
	t.Parallel()
	fp := func(provider, action, dispute, params string) string {
		f, err := Fingerprint(provider, action, &handlers.Command{DisputeID: dispute, Params: []byte(params)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	base := fp("alipay", "accept_dispute", "D1", `{"a":"1","b":{"c":"2"}}`)
	if same := fp("alipay", "accept_dispute", "D1", `{ "b" : {"c":"2"}, "a":"1" }`); same != base {
		t.Fatal("key order or spacing changed the fingerprint")
	}
	for _, other := range []string{
		fp("alipay", "supply_defense_document", "D1", `{"a":"1","b":{"c":"2"}}`),
		fp("alipayplus", "accept_dispute", "D1", `{"a":"1","b":{"c":"2"}}`),
		fp("alipay", "accept_dispute", "D2", `{"a":"1","b":{"c":"2"}}`),
		fp("alipay", "accept_dispute", "D1", `{"a":"1","b":{"c":"3"}}`),
		fp("alipay", "accept_dispute", "D1", `{"a":1,"b":{"c":"2"}}`),
		fp("alipay", "accept_dispute", "D1", ``),
	} {
		if other == base {
			t.Fatal("a different command has the same fingerprint")
		}
	}
}

// FuzzDecodeCommand: no input panics, and whatever is accepted is
// consistent (valid id, object params, a stable fingerprint).
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{
		`{"disputeRequestId":"a","disputeId":"D","params":{"x":["1",{"y":null}]}}`,
		`{"disputeRequestId":"a","disputeRequestId":"b"}`,
		`[]`, `{`, `{"params":{}}`, "{\"disputeRequestId\":\"\xff\"}", `{"disputeRequestId":"a"} x`,
		`{"disputeRequestId":"a","params":{"escalationAmount":{"currency":"USD","value":"100"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cmd, id, err := DecodeCommand(raw)
		if err != nil {
			if id != "" && CheckRequestID(id) != nil {
				t.Fatalf("readable id %q is not a valid id", id)
			}
			return
		}
		if CheckRequestID(cmd.DisputeRequestID) != nil || id != cmd.DisputeRequestID || !utf8.Valid(raw) {
			t.Fatalf("accepted an invalid command: %q", raw)
		}
		a, err1 := Fingerprint("p", "a", cmd)
		b, err2 := Fingerprint("p", "a", cmd)
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("fingerprint unstable: %v %v", err1, err2)
		}
	})
}
