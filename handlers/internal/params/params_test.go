package params

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
)

func TestDecodeAndStr(t *testing.T) {
	tests := []struct {
		name, raw string
		wantErr   string // "" for success
		wantName  string // value of "name" when it decodes
	}{
		{"absent", ``, "", ""},
		{"null", `null`, "", ""},
		{"not an object", `[1]`, "params: must be a JSON object", ""},
		{"unknown fields, first in order", `{"zz":1,"aa":2}`, "params.zz: is not a known field", ""},
		{"string", `{"name":"x"}`, "", "x"},
		{"null member", `{"name":null}`, "", ""},
		{"empty string", `{"name":""}`, `params.name: must not be "" (leave an optional field out, or null)`, ""},
		{"number", `{"name":1}`, "params.name: must be a JSON string", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Decode(json.RawMessage(tc.raw), "params", "", "name")
			var got string
			if err == nil {
				got, err = o.String("name", false, 0)
			}
			if msg := errString(err); msg != tc.wantErr {
				t.Fatalf("error %q, want %q", msg, tc.wantErr)
			}
			if got != tc.wantName {
				t.Fatalf("name %q, want %q", got, tc.wantName)
			}
		})
	}
	o, _ := Decode(nil, "params", "", "name")
	if _, err := o.String("name", true, 0); errString(err) != "params.name: is required" {
		t.Fatalf("required: %v", err)
	}
}

func TestCheckText(t *testing.T) {
	tests := []struct{ s, want string }{
		{"héllo", ""},
		{"toolong", "f: must be at most 5 characters (has 7)"},
		{"a\nb", "f: must not contain control characters"},
	}
	for _, tc := range tests {
		if got := errString(CheckText("f", tc.s, 5)); got != tc.want {
			t.Errorf("CheckText(%q) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestDecodeDigest(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	tests := []struct {
		d  string
		ok bool
	}{
		{"SHA-256=" + base64.URLEncoding.EncodeToString(sum[:]), true},
		{"SHA-256=" + base64.RawURLEncoding.EncodeToString(sum[:]), true},
		{"SHA-1=" + base64.URLEncoding.EncodeToString(sum[:]), false},
		{"SHA-256=" + base64.URLEncoding.EncodeToString(sum[:16]), false},
		{"SHA-256=***", false},
	}
	for _, tc := range tests {
		got, err := DecodeDigest(tc.d)
		if (err == nil) != tc.ok {
			t.Errorf("DecodeDigest(%q) error %v, want ok=%v", tc.d, err, tc.ok)
		}
		if tc.ok && string(got) != string(sum[:]) {
			t.Errorf("DecodeDigest(%q) = %x, want %x", tc.d, got, sum)
		}
	}
}

type fakeEvidence map[string]any // name -> []byte or error

func (f fakeEvidence) Get(_ context.Context, ref handlers.ContentRef) ([]byte, error) {
	switch v := f[ref.Name].(type) {
	case []byte:
		return v, nil
	case error:
		return nil, v
	}
	return nil, jetstream.ErrObjectNotFound
}

func TestAttachmentLoad(t *testing.T) {
	data := []byte("%PDF evidence")
	sum := sha256.Sum256(data)
	digest := "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:])
	b64 := base64.StdEncoding.EncodeToString(data)
	ev := fakeEvidence{
		"doc":   data,
		"empty": []byte{},
		"down":  errors.New("connection refused"),
	}
	tests := []struct {
		name, params  string
		ev            handlers.Evidence
		wantErr       string
		wantPermanent bool
	}{
		{"inline", `{"content":"` + b64 + `"}`, nil, "", false},
		{"reference", `{"contentRef":{"name":"doc","digest":"` + digest + `","size":13}}`, ev, "", false},
		{"no store", `{"contentRef":{"name":"doc"}}`, nil, "params.contentRef: evidence references are not available: no evidence store configured", true},
		{"missing", `{"contentRef":{"name":"gone"}}`, ev, `params.contentRef: evidence object "gone" cannot be read: nats: object not found`, true},
		{"wrong size", `{"contentRef":{"name":"doc","size":12}}`, ev, `params.contentRef: evidence object "doc" has 13 bytes, the reference says 12`, true},
		{"wrong digest", `{"contentRef":{"name":"empty","digest":"` + digest + `"}}`, ev, `params.contentRef: evidence object "empty" does not match its digest`, true},
		{"empty", `{"contentRef":{"name":"empty"}}`, ev, `params.contentRef: evidence object "empty" is empty`, true},
		{"store down", `{"contentRef":{"name":"down"}}`, ev, `reading evidence object "down": connection refused`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Decode(json.RawMessage(tc.params), "params", "", "content", "contentRef")
			if err != nil {
				t.Fatal(err)
			}
			a, err := ParseAttachment(p)
			if err != nil {
				t.Fatal(err)
			}
			gotData, gotB64, err := a.Load(context.Background(), tc.ev)
			onlyB64, err2 := a.Base64(context.Background(), tc.ev)
			for _, e := range []error{err, err2} {
				if errString(e) != tc.wantErr {
					t.Fatalf("error %q, want %q", errString(e), tc.wantErr)
				}
				if e != nil && handlers.IsPermanent(e) != tc.wantPermanent {
					t.Fatalf("permanent %v, want %v", handlers.IsPermanent(e), tc.wantPermanent)
				}
			}
			if tc.wantErr == "" && (string(gotData) != string(data) || gotB64 != b64 || onlyB64 != b64) {
				t.Fatalf("got %q %q %q, want %q %q", gotData, gotB64, onlyB64, data, b64)
			}
		})
	}
}

func TestParseAttachmentRejects(t *testing.T) {
	tests := []struct{ params, want string }{
		{`{}`, "params.content: is required (or params.contentRef)"},
		{`{"content":"QQ==","contentRef":{"name":"a"}}`, "params.content: must not be given together with params.contentRef"},
		{`{"content":"not base64!"}`, "params.content: must be standard base64"},
		{`{"content":"` + strings.Repeat("QUFB", MaxContentChars/4+1) + `"}`, "params.content: must be at most 2048000 base64 characters (has 2048004)"},
		{`{"contentRef":{"name":"a","size":-1}}`, "params.contentRef.size: must be a non-negative integer"},
		{`{"contentRef":{"name":"a","digest":"md5"}}`, "params.contentRef.digest: must be SHA-256=<base64url of 32 bytes>"},
		{`{"contentRef":{"name":"a","other":1}}`, "params.contentRef.other: is not a known field"},
	}
	for _, tc := range tests {
		p, err := Decode(json.RawMessage(tc.params), "params", "", "content", "contentRef")
		if err == nil {
			_, err = ParseAttachment(p)
		}
		if errString(err) != tc.want {
			t.Errorf("%s: error %q, want %q", tc.params, errString(err), tc.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestParseObjectStrictness(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw, want string
	}{
		{`{"a":"1","a":"2"}`, "params.a: appears twice"},
		{`{"a":"1","b":"2"}`, "params.b: is not a field of X"},
		{`{"a":"1"} {}`, "params: has data after the object"},
		{`["a"]`, "params: must be a JSON object"},
		{`"a"`, "params: must be a JSON object"},
		{`{"a":}`, "params.a: is not valid JSON"},
	}
	for _, tc := range cases {
		_, err := ParseParams("X", []byte(tc.raw), "a")
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.raw, err, tc.want)
		}
	}
	for _, ok := range []string{``, `null`, ` {} `, `{"a":null}`} {
		if _, err := ParseParams("X", []byte(ok), "a"); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

func TestEncodeKeepsUTF8AndHTMLCharacters(t *testing.T) {
	t.Parallel()
	b, err := Encode(map[string]string{"r": "<ü&退>"})
	if err != nil || string(b) != `{"r":"<ü&退>"}` {
		t.Fatalf("%s %v", b, err)
	}
}

func TestObjectAccessors(t *testing.T) {
	t.Parallel()
	o, err := ParseParams("X", json.RawMessage(`{"s":"héllo","e":"B","o":{"a":"1"},"arr":[{"a":"2"}],"empty":[],"n":1}`),
		"s", "e", "o", "arr", "empty", "n", "absent")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, err error, want string) {
		t.Helper()
		if got := errString(err); got != want {
			t.Errorf("%s: error %q, want %q", name, got, want)
		}
	}
	_, err = o.String("s", true, 4)
	check("string too long", err, "params.s: must be at most 4 characters")
	if s, err := o.String("s", true, 5); s != "héllo" || err != nil {
		t.Errorf("string at its limit: %q %v", s, err)
	}
	_, err = o.Enum("e", true, "A", "C")
	check("enum", err, "params.e: must be one of A, C")
	if s, err := o.Enum("e", true, "A", "B"); s != "B" || err != nil {
		t.Errorf("enum: %q %v", s, err)
	}
	_, err = o.Enum("absent", true, "A")
	check("enum required", err, "params.absent: is required")
	inner, err := o.Object("o", "Inner", true, "a")
	if err != nil || inner.Field("a") != "params.o.a" {
		t.Fatalf("object: %v", err)
	}
	_, err = o.Object("o", "Inner", true, "b")
	check("object unknown field", err, "params.o.a: is not a field of Inner")
	_, err = o.Object("absent", "Inner", true)
	check("object required", err, "params.absent: is required")
	if got, err := o.Object("absent", "Inner", false); got != nil || err != nil {
		t.Errorf("optional object: %v %v", got, err)
	}
	items, err := o.Array("arr", true)
	if err != nil || len(items) != 1 || o.Item("arr", 0) != "params.arr[0]" {
		t.Fatalf("array: %v %v", items, err)
	}
	_, err = o.Array("empty", false)
	check("empty array", err, "params.empty: "+RuleEmptyArray)
	_, err = o.Array("s", false)
	check("not an array", err, "params.s: "+RuleArray)
	_, err = o.Array("absent", true)
	check("array required", err, "params.absent: is required")
	if got, err := o.Array("absent", false); got != nil || err != nil {
		t.Errorf("optional array: %v %v", got, err)
	}
	check("base64", CheckBase64("f", "not base64!"), "f: "+RuleBase64)
	check("base64 ok", CheckBase64("f", "QQ=="), "")
}

func TestEvidencePlacementHelpers(t *testing.T) {
	t.Parallel()
	p := map[string]any{"a": "given"}
	SetDefault(p, "a", "default")
	SetDefault(p, "b", "default")
	if p["a"] != "given" || p["b"] != "default" {
		t.Fatalf("SetDefault: %v", p)
	}
	for name, want := range map[string]string{"x.PDF": "pdf", "dir.v1/y": "", "z.tar.gz": "gz", "noext": ""} {
		if got := Ext(name); got != want {
			t.Errorf("Ext(%q) = %q, want %q", name, got, want)
		}
	}
}
