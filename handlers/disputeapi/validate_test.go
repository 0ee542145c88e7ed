package disputeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/disputesync/disputesync/handlers"
)

// TestValidation lists malformed commands and the exact error of each; none
// of them may reach the provider.
func TestValidation(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte(`{"code":"200","msg":"SUCCESS","data":{"document_id":"d"}}`))
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL, nil)
	live := handlers.NewMux()
	c.Register(live)
	validators := handlers.NewMux()
	Validators(validators)

	const up = `"file_name":"a.pdf","content_type":"pdf"`
	tests := []struct {
		name   string
		action string
		cmd    *handlers.Command
		want   string
	}{
		{"no disputeRequestId", "abandon", command("", "D1", ""), "disputeRequestId: is required"},
		{"long disputeRequestId", "abandon", command(strings.Repeat("r", 65), "D1", ""), "disputeRequestId: must be at most 64 characters (has 65)"},
		{"no disputeId", "abandon", command("r", "", ""), "disputeId: is required"},
		{"long disputeId", "submit_defense", command("r", strings.Repeat("9", 65), `{"comment":"x"}`), "disputeId: must be at most 64 characters (has 65)"},
		{"control character in disputeId", "abandon", command("r", "D\x001", ""), "disputeId: must not contain control characters"},
		{"abandon with a param", "abandon", command("r", "D1", `{"reason":"x"}`), "params.reason: is not a known field"},
		{"params an array", "abandon", command("r", "D1", `[]`), "params: must be a JSON object"},
		{"upload camelCase field", "upload_document", command("r", "D1", `{"fileName":"a.pdf","content_type":"pdf","content":"QQ=="}`), "params.fileName: is not a known field"},
		{"upload no file_name", "upload_document", command("r", "D1", `{"content_type":"pdf","content":"QQ=="}`), "params.file_name: is required"},
		{"upload file_name a path", "upload_document", command("r", "D1", `{"file_name":"C:\\x.pdf","content_type":"pdf","content":"QQ=="}`), "params.file_name: must be a file name, not a path"},
		{"upload file_name too long", "upload_document", command("r", "D1", `{"file_name":"`+strings.Repeat("é", 129)+`","content_type":"pdf","content":"QQ=="}`), "params.file_name: must be at most 128 characters (has 129)"},
		{"upload content_type MIME", "upload_document", command("r", "D1", `{"file_name":"a.pdf","content_type":"application/pdf","content":"QQ=="}`), "params.content_type: must be one of pdf, doc, docx, xls, xlsx, bmp, jpg, jpeg, png, gif"},
		{"upload content_type upper case", "upload_document", command("r", "D1", `{"file_name":"a.pdf","content_type":"PDF","content":"QQ=="}`), "params.content_type: must be one of pdf, doc, docx, xls, xlsx, bmp, jpg, jpeg, png, gif"},
		{"upload content_type number", "upload_document", command("r", "D1", `{"file_name":"a.pdf","content_type":1,"content":"QQ=="}`), "params.content_type: must be a JSON string"},
		{"upload no content", "upload_document", command("r", "D1", `{`+up+`}`), "params.content: is required (or params.contentRef)"},
		{"upload empty content", "upload_document", command("r", "D1", `{`+up+`,"content":""}`), "params.content: must not be \"\" (leave an optional field out, or null)"},
		{"upload content and ref", "upload_document", command("r", "D1", `{`+up+`,"content":"QQ==","contentRef":{"name":"x"}}`), "params.content: must not be given together with params.contentRef"},
		{"upload bad base64", "upload_document", command("r", "D1", `{`+up+`,"content":"QQ="}`), "params.content: must be standard base64"},
		{"upload content too long", "upload_document", command("r", "D1", `{`+up+`,"content":"`+strings.Repeat("QUFB", MaxContentChars/4+1)+`"}`), "params.content: must be at most 2048000 base64 characters (has 2048004)"},
		{"upload ref without name", "upload_document", command("r", "D1", `{`+up+`,"contentRef":{"size":3}}`), "params.contentRef.name: is required"},
		{"upload ref bad digest", "upload_document", command("r", "D1", `{`+up+`,"contentRef":{"name":"x","digest":"SHA-256=short"}}`), "params.contentRef.digest: must be SHA-256=<base64url of 32 bytes>"},
		{"upload ref size a string", "upload_document", command("r", "D1", `{`+up+`,"contentRef":{"name":"x","size":"3"}}`), "params.contentRef.size: must be a non-negative integer"},
		{"remove no document_id", "remove_document", command("r", "D1", `{}`), "params.document_id: is required"},
		{"remove document_id too long", "remove_document", command("r", "D1", `{"document_id":"`+strings.Repeat("d", 129)+`"}`), "params.document_id: must be at most 128 characters (has 129)"},
		{"remove unknown field", "remove_document", command("r", "D1", `{"document_id":"d","disputes_id":"D2"}`), "params.disputes_id: is not a known field"},
		{"defense no comment", "submit_defense", command("r", "D1", ""), "params.comment: is required"},
		{"defense blank comment", "submit_defense", command("r", "D1", `{"comment":" \n "}`), "params.comment: must not be blank"},
		{"defense comment too long", "submit_defense", command("r", "D1", `{"comment":"`+strings.Repeat("c", MaxCommentChars+1)+`"}`), "params.comment: must be at most 2000 characters (has 2001)"},
		{"defense comment control char", "submit_defense", command("r", "D1", `{"comment":"a\u0007b"}`), "params.comment: must not contain control characters other than line breaks and tabs"},
		{"defense comment an object", "submit_defense", command("r", "D1", `{"comment":{"text":"x"}}`), "params.comment: must be a JSON string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mux := range []*handlers.Mux{live, validators} {
				err := handler(t, mux, tt.action).Validate(tt.cmd)
				var inv *handlers.InvalidError
				if !errors.As(err, &inv) || err.Error() != tt.want {
					t.Fatalf("Validate = %v, want InvalidError %q", err, tt.want)
				}
			}
			_, err := handler(t, live, tt.action).Apply(context.Background(), &handlers.Call{Command: tt.cmd, Recover: true})
			if handlers.Code(err) != handlers.CodeInvalidCommand || err.Error() != tt.want {
				t.Fatalf("Apply = %v, want %q", err, tt.want)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d requests reached the provider for invalid commands", n)
	}
}

// TestRequestBodies checks the exact bodies and headers on the wire: the
// provider's field names, every scalar a string, nothing empty sent.
func TestRequestBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action, params string
		token          []byte
		wantPath       string
		wantBody       string
	}{
		{"abandon", "", []byte(testToken), pathAbandon, `{"disputes_id":"D 100/ä"}`},
		{"upload_document", `{"file_name":"Rechnung – März.pdf","content_type":"pdf","content":"JVBERi0xLjQK"}`, nil, pathUpload,
			`{"disputes_id":"D 100/ä","file_name":"Rechnung – März.pdf","content_type":"pdf","content":"JVBERi0xLjQK"}`},
		{"remove_document", `{"document_id":"doc-7"}`, []byte(testToken), pathRemove, `{"disputes_id":"D 100/ä","document_id":"doc-7"}`},
		{"submit_defense", `{"comment":"Delivered on 2 April.\nTracking 1Z<&>"}`, []byte(testToken), pathDefend,
			`{"disputes_id":"D 100/ä","comment":"Delivered on 2 April.\nTracking 1Z\u003c\u0026\u003e"}`},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			t.Parallel()
			var got seenRequest
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = seenRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: b}
				w.Write([]byte(`{"code":"200","msg":"SUCCESS","data":{"document_id":"doc-1"}}`))
			}))
			defer srv.Close()
			c, _ := newTestClient(t, srv.URL+"/", func(cfg *Config) { cfg.Token = tt.token })
			if _, err := clientHandler(t, c, tt.action).Apply(context.Background(), &handlers.Call{Command: command("r1", "D 100/ä", tt.params)}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got.Path != tt.wantPath {
				t.Errorf("path = %q, want %q", got.Path, tt.wantPath)
			}
			var gotBody, wantBody any
			json.Unmarshal(got.Body, &gotBody)
			json.Unmarshal([]byte(tt.wantBody), &wantBody)
			g, _ := json.Marshal(gotBody)
			w, _ := json.Marshal(wantBody)
			if string(g) != string(w) {
				t.Errorf("body = %s, want %s", got.Body, tt.wantBody)
			}
			if id := got.Header.Get("Dispute-Request-Id"); id != "r1" {
				t.Errorf("Dispute-Request-Id = %q", id)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			wantAuth := ""
			if tt.token != nil {
				wantAuth = "Bearer " + testToken
			}
			if a := got.Header.Get("Authorization"); a != wantAuth {
				t.Errorf("Authorization = %q, want %q", a, wantAuth)
			}
		})
	}
}

func TestValidatorsAndRegister(t *testing.T) {
	t.Parallel()
	mux := handlers.NewMux()
	Validators(mux)
	got, _ := json.Marshal(mux.Registered())
	if want := `["disputeapi.abandon","disputeapi.remove_document","disputeapi.submit_defense","disputeapi.upload_document"]`; string(got) != want {
		t.Fatalf("registered %s, want %s", got, want)
	}
	h := handler(t, mux, "abandon")
	if err := h.Validate(command("r", "D1", "")); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := h.Apply(context.Background(), &handlers.Call{Command: command("r", "D1", "")}); !errors.Is(err, ErrValidateOnly) {
		t.Fatalf("Apply = %v, want ErrValidateOnly", err)
	}
	for _, bad := range []Config{{BaseURL: "dispute-api"}, {BaseURL: "https://x/?q=1"}, {BaseURL: "https://x", Token: []byte(testToken + " x")}} {
		_, err := New(bad)
		if err == nil {
			t.Errorf("New(%q) accepted", bad.BaseURL)
		} else if strings.Contains(err.Error(), testToken) {
			t.Errorf("New error carries the token: %v", err)
		}
	}
}
