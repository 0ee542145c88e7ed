package ingenico

import (
	"context"
	"encoding/json"
	"errors"
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
		w.Write([]byte(`{"id":"x","status":"CREATED"}`))
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv.URL, nil)

	const pdf = `"fileName":"a.pdf","fileType":"application/pdf"`
	long := strings.Repeat("A", MaxContentChars+4)
	digest := "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
	tests := []struct {
		name   string
		action string
		cmd    *handlers.Command
		want   string
	}{
		{"no disputeRequestId", "submit_dispute", &handlers.Command{DisputeID: "1"}, "disputeRequestId: is required"},
		{"long disputeRequestId", "submit_dispute", &handlers.Command{DisputeRequestID: strings.Repeat("r", 65), DisputeID: "1"}, "disputeRequestId: must be at most 64 characters (has 65)"},
		{"header injection", "cancel_dispute", &handlers.Command{DisputeRequestID: "a\r\nX-Evil: 1", DisputeID: "1"}, "disputeRequestId: must not contain control characters"},
		{"no disputeId", "submit_dispute", &handlers.Command{DisputeRequestID: "r"}, "disputeId: is required"},
		{"long disputeId", "cancel_dispute", &handlers.Command{DisputeRequestID: "r", DisputeID: strings.Repeat("ä", 65)}, "disputeId: must be at most 64 characters (has 65)"},
		{"dot-dot disputeId", "submit_dispute", &handlers.Command{DisputeRequestID: "r", DisputeID: ".."}, `disputeId: must not be ".."`},
		{"submit with a param", "submit_dispute", command("1", `{"comment":"x"}`), "params.comment: is not a known field"},
		{"params not an object", "cancel_dispute", command("1", `["x"]`), "params: must be a JSON object"},
		{"params a string", "cancel_dispute", command("1", `"x"`), "params: must be a JSON object"},
		{"upload without params", "upload_file", command("1", ""), "params.fileName: is required"},
		{"upload unknown field", "upload_file", command("1", `{`+pdf+`,"content":"QQ==","fileSize":"2"}`), "params.fileSize: is not a known field"},
		{"fileName empty", "upload_file", command("1", `{"fileName":"","fileType":"application/pdf","content":"QQ=="}`), "params.fileName: must not be \"\" (leave an optional field out, or null)"},
		{"fileName a number", "upload_file", command("1", `{"fileName":12,"fileType":"application/pdf","content":"QQ=="}`), "params.fileName: must be a JSON string"},
		{"fileName a path", "upload_file", command("1", `{"fileName":"../a.pdf","fileType":"application/pdf","content":"QQ=="}`), "params.fileName: must be a file name, not a path"},
		{"fileName too long", "upload_file", command("1", `{"fileName":"`+strings.Repeat("n", 256)+`","fileType":"application/pdf","content":"QQ=="}`), "params.fileName: must be at most 255 characters (has 256)"},
		{"fileType missing", "upload_file", command("1", `{"fileName":"a.pdf","content":"QQ=="}`), "params.fileType: is required"},
		{"fileType not MIME", "upload_file", command("1", `{"fileName":"a.pdf","fileType":"pdf","content":"QQ=="}`), "params.fileType: must be a MIME type such as application/pdf"},
		{"fileType with parameters", "upload_file", command("1", `{"fileName":"a.pdf","fileType":"text/plain; charset=utf-8","content":"QQ=="}`), "params.fileType: must be a MIME type such as application/pdf"},
		{"no content", "upload_file", command("1", `{`+pdf+`}`), "params.content: is required (or params.contentRef)"},
		{"content null", "upload_file", command("1", `{`+pdf+`,"content":null}`), "params.content: is required (or params.contentRef)"},
		{"content and contentRef", "upload_file", command("1", `{`+pdf+`,"content":"QQ==","contentRef":{"name":"o"}}`), "params.content: must not be given together with params.contentRef"},
		{"content not base64", "upload_file", command("1", `{`+pdf+`,"content":"not base64!"}`), "params.content: must be standard base64"},
		{"content too long", "upload_file", command("1", `{`+pdf+`,"content":"`+long+`"}`), "params.content: must be at most 2048000 base64 characters (has 2048004)"},
		{"contentRef without name", "upload_file", command("1", `{`+pdf+`,"contentRef":{"digest":"`+digest+`"}}`), "params.contentRef.name: is required"},
		{"contentRef unknown field", "upload_file", command("1", `{`+pdf+`,"contentRef":{"name":"o","bucket":"b"}}`), "params.contentRef.bucket: is not a known field"},
		{"contentRef bad digest", "upload_file", command("1", `{`+pdf+`,"contentRef":{"name":"o","digest":"md5=abc"}}`), "params.contentRef.digest: must be SHA-256=<base64url of 32 bytes>"},
		{"contentRef negative size", "upload_file", command("1", `{`+pdf+`,"contentRef":{"name":"o","size":-1}}`), "params.contentRef.size: must be a non-negative integer"},
		{"contentRef too large", "upload_file", command("1", `{`+pdf+`,"contentRef":{"name":"o","size":1536001}}`), "params.contentRef.size: must be at most 1536000 bytes (2048000 base64 characters)"},
		{"contentRef not an object", "upload_file", command("1", `{`+pdf+`,"contentRef":"o"}`), "params.contentRef: must be a JSON object"},
	}
	validators := handlers.NewMux()
	Validators(validators)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, h := range []handlers.Handler{handler(t, c, tt.action), mustHandler(t, validators, tt.action)} {
				err := h.Validate(tt.cmd)
				var inv *handlers.InvalidError
				if !errors.As(err, &inv) || err.Error() != tt.want {
					t.Fatalf("Validate = %v, want InvalidError %q", err, tt.want)
				}
			}
			_, err := handler(t, c, tt.action).Apply(context.Background(), &handlers.Call{Command: tt.cmd})
			if handlers.Code(err) != handlers.CodeInvalidCommand || err.Error() != tt.want {
				t.Fatalf("Apply = %v, want %q", err, tt.want)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d requests reached the provider for invalid commands", n)
	}
}

func TestValidCommands(t *testing.T) {
	t.Parallel()
	validators := handlers.NewMux()
	Validators(validators)
	tests := []struct{ action, params string }{
		{"submit_dispute", ""},
		{"submit_dispute", "null"},
		{"cancel_dispute", "{}"},
		{"upload_file", `{"fileName":"Beleg ä.pdf","fileType":"application/pdf","content":"JVBERi0xLjQK"}`},
		{"upload_file", `{"fileName":"scan.PNG","fileType":"Image/PNG","contentRef":{"name":"ev/1","digest":"SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=","size":12}}`},
		{"upload_file", `{"fileName":"x.jpg","fileType":"image/jpeg","content":null,"contentRef":{"name":"ev/2"}}`},
	}
	for _, tt := range tests {
		h := mustHandler(t, validators, tt.action)
		if err := h.Validate(command("162", tt.params)); err != nil {
			t.Errorf("%s %s: %v", tt.action, tt.params, err)
		}
		if _, err := h.Apply(context.Background(), &handlers.Call{Command: command("162", tt.params)}); !errors.Is(err, ErrValidateOnly) {
			t.Errorf("validation-only Apply = %v, want ErrValidateOnly", err)
		}
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t, "http://127.0.0.1:1", nil)
	mux := handlers.NewMux()
	c.Register(mux)
	got, _ := json.Marshal(mux.Registered())
	if want := `["ingenico.cancel_dispute","ingenico.submit_dispute","ingenico.upload_file"]`; string(got) != want {
		t.Fatalf("registered %s, want %s", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	good := Config{BaseURL: "https://x.example", MerchantID: "1", APIKeyID: "k", SecretAPIKey: []byte(testSecret)}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"relative URL", func(c *Config) { c.BaseURL = "/v1" }},
		{"ftp URL", func(c *Config) { c.BaseURL = "ftp://x" }},
		{"URL with query", func(c *Config) { c.BaseURL = "https://x.example/?a=b" }},
		{"no merchant", func(c *Config) { c.MerchantID = "" }},
		{"no key id", func(c *Config) { c.APIKeyID = "" }},
		{"key id with colon", func(c *Config) { c.APIKeyID = "a:b" }},
		{"no secret", func(c *Config) { c.SecretAPIKey = nil }},
	}
	if _, err := New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tt := range tests {
		cfg := good
		tt.mod(&cfg)
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
		} else if strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error carries the secret", tt.name)
		}
	}
}

func mustHandler(t *testing.T, mux *handlers.Mux, action string) handlers.Handler {
	t.Helper()
	h, ok := mux.Handler(Provider, action)
	if !ok {
		t.Fatalf("no handler for %s", action)
	}
	return h
}
