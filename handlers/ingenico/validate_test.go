package ingenico

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
)

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
	return handlerstest.Handler(t, mux, Provider, action)
}

// TestPlaceEvidence: --attach fills fileName and the MIME type of the
// extension unless the operator gave them.
func TestPlaceEvidence(t *testing.T) {
	t.Parallel()
	mux := handlers.NewMux()
	Validators(mux)
	placer := mustHandler(t, mux, handlers.ActionUploadFile).(handlers.EvidencePlacer)
	tests := []struct{ file, given, wantType string }{
		{"a.PDF", "", "application/pdf"},
		{"b.jpeg", "", "image/jpeg"},
		{"c.jpg", "", "image/jpeg"},
		{"d.png", "", "image/png"},
		{"e.gif", "", "image/gif"},
		{"f.tiff", "", "application/octet-stream"},
		{"g.pdf", "text/plain", "text/plain"},
	}
	for _, tt := range tests {
		p := map[string]any{}
		if tt.given != "" {
			p["fileType"] = tt.given
		}
		placer.PlaceEvidence(p, handlers.ContentRef{Name: "ev/" + tt.file}, tt.file)
		if p["fileType"] != tt.wantType || p["fileName"] != tt.file || p["contentRef"].(handlers.ContentRef).Name != "ev/"+tt.file {
			t.Errorf("%s: params %v, want fileType %s", tt.file, p, tt.wantType)
		}
	}
}
