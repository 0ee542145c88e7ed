package disputeapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
)

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
