package ingenico

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

// Test credentials; the secret is checked for in logs and errors.
const (
	testMerchant = "9991"
	testKeyID    = "test0key0id"
	testSecret   = "t3st-S3CRET-never-logged-0123456789"
)

// stringToSign is an independent implementation of the documented v1HMAC
// string to sign (issue 6 acceptance 2), written from the text and not
// from internal/gcs: method, Content-Type, Date, each X-GCS-* header as
// lower-cased "name:value" sorted by name with folded white space, then
// the escaped path plus "?" and the unescaped query, each line ending in
// "\n". requestURI is the request target exactly as it was on the wire.
func stringToSign(method, requestURI string, h http.Header) string {
	lines := []string{method, h.Get("Content-Type"), h.Get("Date")}
	var gcs []string
	for name, values := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-gcs-") {
			continue
		}
		v := strings.Join(values, ",")
		v = regexp.MustCompile(`\r?\n[ \t]*`).ReplaceAllString(v, " ")
		gcs = append(gcs, lower+":"+strings.TrimSpace(v))
	}
	sort.Strings(gcs)
	lines = append(lines, gcs...)
	path, query, hasQuery := strings.Cut(requestURI, "?")
	if hasQuery && query != "" {
		q, err := url.QueryUnescape(query)
		if err != nil {
			q = query
		}
		path += "?" + q
	}
	lines = append(lines, path)
	return strings.Join(lines, "\n") + "\n"
}

func hmacBase64(secret []byte, s string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// wantAuthorization is what a correct client sends for r.
func wantAuthorization(r *http.Request, keyID string, secret []byte) string {
	return "GCS v1HMAC:" + keyID + ":" + hmacBase64(secret, stringToSign(r.Method, r.RequestURI, r.Header))
}

func errorBody(id, category, msg string, status int) []byte {
	b, _ := json.Marshal(map[string]any{
		"errorId": "0123456789abcdef",
		"errors": []map[string]any{{
			"code": "310400200", "id": id, "category": category, "message": msg, "httpStatusCode": status,
		}},
	})
	return b
}

// logBuffer collects log output for the secret checks.
type logBuffer = testsupport.LogBuffer

func newTestClient(t *testing.T, baseURL string, mod func(*Config)) (*Client, *logBuffer) {
	log, logs := testsupport.DebugLogger()
	return testsupport.NewClient(t, Config{
		BaseURL: baseURL, MerchantID: testMerchant, APIKeyID: testKeyID, SecretAPIKey: []byte(testSecret),
		Timeout: time.Minute, Logger: log,
	}, mod, New), logs
}

func handler(t *testing.T, c *Client, action string) handlers.Handler {
	mux := handlers.NewMux()
	c.Register(mux)
	return handlerstest.Handler(t, mux, Provider, action)
}

func command(disputeID, params string) *handlers.Command {
	cmd := &handlers.Command{DisputeRequestID: "req-1", DisputeID: disputeID}
	if params != "" {
		cmd.Params = json.RawMessage(params)
	}
	return cmd
}

// kind names the outcome class an Apply error stands for.
var kind = handlerstest.Kind
