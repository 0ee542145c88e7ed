package ingenico

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
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

type seenRequest struct {
	Method, RequestURI string
	Header             http.Header
	Body               []byte
	SignatureOK        bool
}

type fakeFile struct {
	ID, FileName, FileType string
	Content                []byte
}

type fakeDispute struct {
	Status string
	Files  []fakeFile
}

type answer struct {
	status int
	body   []byte
}

// fakeIngenico implements the documented behaviour of the Dispute REST
// service: v1HMAC authentication, X-GCS-Idempotence-Key replay of the first
// answer, submit (DRAFT to CREATED), cancel and file upload, and the error
// response shape. dropAfterApply makes it apply a request and then cut the
// connection without answering, the "applied, answer lost" fault.
type fakeIngenico struct {
	mu             sync.Mutex
	disputes       map[string]*fakeDispute
	byKey          map[string]answer
	effects        int
	seen           []seenRequest
	dropAfterApply int
	nextFile       int
}

func newFakeIngenico(t *testing.T, disputes map[string]string) (*fakeIngenico, *httptest.Server) {
	t.Helper()
	f := &fakeIngenico{disputes: map[string]*fakeDispute{}, byKey: map[string]answer{}}
	for id, status := range disputes {
		f.disputes[id] = &fakeDispute{Status: status}
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
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

func (f *fakeIngenico) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ok := r.Header.Get("Authorization") == wantAuthorization(r, testKeyID, []byte(testSecret))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, seenRequest{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body, SignatureOK: ok})
	reply := func(a answer) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		w.Write(a.body)
	}
	if !ok {
		reply(answer{401, errorBody("MISSING_OR_INVALID_AUTHORIZATION", "CONNECT_PLATFORM_ERROR", "bad signature", 401)})
		return
	}
	if _, err := time.Parse(http.TimeFormat, r.Header.Get("Date")); err != nil {
		reply(answer{400, errorBody("INVALID_DATE", "CONNECT_PLATFORM_ERROR", "bad Date", 400)})
		return
	}
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(segs) != 5 || segs[0] != "v1" || segs[1] != testMerchant || segs[2] != "disputes" {
		reply(answer{404, errorBody("UNKNOWN_RESOURCE", "CONNECT_PLATFORM_ERROR", "not found", 404)})
		return
	}
	id, _ := url.PathUnescape(segs[3])
	key := r.Header.Get("X-GCS-Idempotence-Key")
	if r.Method == http.MethodPost {
		if key == "" {
			reply(answer{400, errorBody("MISSING_IDEMPOTENCE_KEY", "CONNECT_PLATFORM_ERROR", "no key", 400)})
			return
		}
		if a, seen := f.byKey[key]; seen {
			w.Header().Set("X-GCS-Idempotence-Request-Timestamp", "1")
			reply(a)
			return
		}
	}
	a := f.apply(r.Method, id, segs[4], body)
	if r.Method == http.MethodPost {
		f.byKey[key] = a
	}
	if f.dropAfterApply > 0 {
		f.dropAfterApply--
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	reply(a)
}

func (f *fakeIngenico) apply(method, id, op string, body []byte) answer {
	d, found := f.disputes[id]
	if !found {
		return answer{404, errorBody("DISPUTE_NOT_FOUND", "DISPUTE_SERVICE_ERROR", "no such dispute", 404)}
	}
	notAllowed := answer{400, errorBody("DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION", "DISPUTE_SERVICE_ERROR", "Action not allowed for current state", 400)}
	switch {
	case method == http.MethodPost && op == "submit":
		if d.Status != "DRAFT" {
			return notAllowed
		}
		d.Status = "CREATED"
	case method == http.MethodPost && op == "cancel":
		if d.Status == "CANCELLED" {
			return notAllowed
		}
		d.Status = "CANCELLED"
	case method == http.MethodPost && op == "files":
		var u struct{ FileName, FileType, Content string }
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&u); err != nil {
			return answer{400, errorBody("INVALID_REQUEST", "CONNECT_PLATFORM_ERROR", "bad body", 400)}
		}
		content, err := base64.StdEncoding.DecodeString(u.Content)
		if err != nil || u.FileName == "" || u.FileType == "" {
			return answer{400, errorBody("INVALID_FILE", "CONNECT_PLATFORM_ERROR", "bad file", 400)}
		}
		f.nextFile++
		fid := fmt.Sprintf("file-%d", f.nextFile)
		d.Files = append(d.Files, fakeFile{ID: fid, FileName: u.FileName, FileType: u.FileType, Content: content})
		f.effects++
		b, _ := json.Marshal(map[string]string{"id": fid})
		return answer{201, b}
	default:
		return answer{404, errorBody("UNKNOWN_RESOURCE", "CONNECT_PLATFORM_ERROR", "not found", 404)}
	}
	f.effects++
	b, _ := json.Marshal(map[string]any{"id": id, "paymentId": "000000852800000014110000100001", "status": d.Status})
	return answer{200, b}
}

func (f *fakeIngenico) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakeIngenico) effectCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.effects
}

// logBuffer collects log output for the secret checks.
type logBuffer = testsupport.LogBuffer

func newTestClient(t *testing.T, baseURL string, mod func(*Config)) (*Client, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := Config{
		BaseURL: baseURL, MerchantID: testMerchant, APIKeyID: testKeyID, SecretAPIKey: []byte(testSecret),
		Timeout: 2 * time.Second,
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, logs
}

func handler(t *testing.T, c *Client, action string) handlers.Handler {
	t.Helper()
	mux := handlers.NewMux()
	c.Register(mux)
	h, ok := mux.Handler(Provider, action)
	if !ok {
		t.Fatalf("no handler for %s", action)
	}
	return h
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
