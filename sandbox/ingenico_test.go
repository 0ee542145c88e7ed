package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/gcs"
)

// ingCall is one Ingenico request; zero fields take the test keys.
type ingCall struct {
	method, path string
	body         any
	keyID        string
	secret       string
	date         time.Time
	idemKey      string
	// after changes the request after signing.
	after func(*http.Request)
}

type ingReply struct {
	status int
	header http.Header
	body   []byte
	obj    map[string]any
}

func ingDo(t *testing.T, ts *httptest.Server, c ingCall) ingReply {
	t.Helper()
	var rdr io.Reader
	if c.body != nil {
		b, _ := json.Marshal(c.body)
		rdr = bytes.NewReader(b)
	}
	if c.method == "" {
		c.method = "POST"
	}
	req, _ := http.NewRequest(c.method, ts.URL+c.path, rdr)
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.date.IsZero() {
		c.date = fixedNow
	}
	req.Header.Set("Date", c.date.UTC().Format(http.TimeFormat))
	if c.idemKey != "" {
		req.Header.Set("X-GCS-Idempotence-Key", c.idemKey)
	}
	if c.keyID == "" {
		c.keyID = TestKeys.IngenicoAPIKeyID
	}
	if c.secret == "" {
		c.secret = TestKeys.IngenicoSecretAPIKey
	}
	gcs.Sign(req, c.keyID, []byte(c.secret))
	if c.after != nil {
		c.after(req)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := ingReply{status: resp.StatusCode, header: resp.Header, body: b}
	if err := json.Unmarshal(b, &out.obj); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return out
}

// errorID returns errors[0].id of an error body, checking its shape.
func errorID(t *testing.T, r ingReply) string {
	t.Helper()
	var e struct {
		ErrorID string     `json:"errorId"`
		Errors  []APIError `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.ErrorID == "" || len(e.Errors) != 1 || e.Errors[0].HTTPStatusCode != r.status || e.Errors[0].Category == "" || e.Errors[0].Code == "" {
		t.Fatalf("error body of HTTP %d: %s", r.status, r.body)
	}
	return e.Errors[0].ID
}

func disputePath(id string, action string) string {
	p := "/v1/" + TestKeys.IngenicoMerchantID + "/disputes/" + id
	if action != "" {
		p += "/" + action
	}
	return p
}

func TestIngenicoLifecycle(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	a := s.CreateIngenicoDispute(IngenicoDispute{}).ID
	b := s.CreateIngenicoDispute(IngenicoDispute{}).ID
	content := base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 proof"))
	file := map[string]string{"fileName": "proof.pdf", "fileType": "application/pdf", "content": content}
	tests := []struct {
		name       string
		c          ingCall
		status     int
		errID      string
		wantStatus string // dispute status in a 200 answer
	}{
		{"get draft", ingCall{method: "GET", path: disputePath(a, "")}, 200, "", IngenicoDraft},
		{"upload", ingCall{path: disputePath(a, "files"), body: file}, 200, "", ""},
		{"upload missing fileName", ingCall{path: disputePath(a, "files"), body: map[string]string{"fileType": "application/pdf", "content": content}}, 400, "PARAMETER_NOT_FOUND_IN_REQUEST", ""},
		{"upload missing content", ingCall{path: disputePath(a, "files"), body: map[string]string{"fileName": "x", "fileType": "application/pdf"}}, 400, "PARAMETER_NOT_FOUND_IN_REQUEST", ""},
		{"upload not base64", ingCall{path: disputePath(a, "files"), body: map[string]string{"fileName": "x", "fileType": "application/pdf", "content": "%%"}}, 400, "REQUEST_PARAMETER_INVALID", ""},
		{"submit", ingCall{path: disputePath(a, "submit")}, 200, "", IngenicoCreated},
		{"submit again", ingCall{path: disputePath(a, "submit")}, 400, "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION", ""},
		{"upload after submit", ingCall{path: disputePath(a, "files"), body: file}, 200, "", ""},
		{"cancel created", ingCall{path: disputePath(a, "cancel")}, 200, "", IngenicoCancelled},
		{"cancel again", ingCall{path: disputePath(a, "cancel")}, 400, "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION", ""},
		{"submit cancelled", ingCall{path: disputePath(a, "submit")}, 400, "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION", ""},
		{"upload cancelled", ingCall{path: disputePath(a, "files"), body: file}, 400, "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION", ""},
		{"cancel draft", ingCall{path: disputePath(b, "cancel")}, 200, "", IngenicoCancelled},
		{"unknown dispute", ingCall{path: disputePath("999999", "submit")}, 404, "UNKNOWN_DISPUTE_ID", ""},
		{"other merchant", ingCall{path: "/v1/1234/disputes/" + a + "/submit"}, 403, "ACCESS_TO_MERCHANT_NOT_ALLOWED", ""},
	}
	for _, tt := range tests {
		got := ingDo(t, ts, tt.c)
		if got.status != tt.status {
			t.Errorf("%s: HTTP %d %s, want %d", tt.name, got.status, got.body, tt.status)
			continue
		}
		if tt.errID != "" {
			if id := errorID(t, got); id != tt.errID {
				t.Errorf("%s: error %s, want %s", tt.name, id, tt.errID)
			}
			if tt.errID == "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION" && !bytes.Contains(got.body, []byte(`"code":"310400200","id":"DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION","category":"DISPUTE_SERVICE_ERROR","message":"Action not allowed for current state","httpStatusCode":400`)) {
				t.Errorf("%s: body differs from Ingenico's documented error: %s", tt.name, got.body)
			}
		}
		if tt.wantStatus != "" && got.obj["status"] != tt.wantStatus {
			t.Errorf("%s: status %v, want %s", tt.name, got.obj["status"], tt.wantStatus)
		}
	}
	d, _ := s.IngenicoDisputeByID(a)
	if len(d.Files) != 2 || d.Files[0].FileName != "proof.pdf" || d.Files[0].FileSize != 14 {
		t.Fatalf("files %+v", d.Files)
	}
	got := ingDo(t, ts, ingCall{method: "GET", path: disputePath(a, "")})
	out := got.obj["disputeOutput"].(map[string]any)
	files := out["files"].([]any)
	if len(files) != 2 || files[0].(map[string]any)["fileSize"] != "14" || out["amountOfMoney"].(map[string]any)["amount"] != 1234.0 {
		t.Fatalf("object %s", got.body)
	}
	if so := got.obj["statusOutput"].(map[string]any); so["isCancellable"] != false || so["statusCategory"] != "UNSUCCESSFUL" {
		t.Fatalf("statusOutput %v", so)
	}
	var ops []string
	for _, e := range s.EffectsFor(ProviderIngenico, "", "") {
		ops = append(ops, e.DisputeID+":"+e.Operation)
	}
	want := []string{a + ":files", a + ":submit", a + ":files", a + ":cancel", b + ":cancel"}
	if len(ops) != len(want) {
		t.Fatalf("effects %v, want %v", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Fatalf("effects %v, want %v", ops, want)
		}
	}
}

func TestIngenicoAuthentication(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	id := s.CreateIngenicoDispute(IngenicoDispute{}).ID
	path := disputePath(id, "submit")
	tests := []struct {
		name   string
		c      ingCall
		status int
	}{
		{"wrong secret", ingCall{path: path, secret: "not-the-secret"}, 401},
		{"unknown key id", ingCall{path: path, keyID: "someone"}, 401},
		{"stale date", ingCall{path: path, date: fixedNow.Add(-6 * time.Minute)}, 401},
		{"future date", ingCall{path: path, date: fixedNow.Add(6 * time.Minute)}, 401},
		{"no authorization", ingCall{path: path, after: func(r *http.Request) { r.Header.Del("Authorization") }}, 401},
		{"no date", ingCall{path: path, after: func(r *http.Request) { r.Header.Del("Date") }}, 401},
		{"idempotence key changed after signing", ingCall{path: path, idemKey: "k1", after: func(r *http.Request) { r.Header.Set("X-GCS-Idempotence-Key", "k2") }}, 401},
		{"path changed after signing", ingCall{path: disputePath(id, "cancel"), after: func(r *http.Request) { r.URL.Path = path }}, 401},
		{"within skew", ingCall{path: path, date: fixedNow.Add(-4 * time.Minute)}, 200},
	}
	for _, tt := range tests {
		got := ingDo(t, ts, tt.c)
		if got.status != tt.status {
			t.Errorf("%s: HTTP %d %s", tt.name, got.status, got.body)
			continue
		}
		if tt.status == 401 {
			if eid := errorID(t, got); eid != "MISSING_OR_INVALID_AUTHORIZATION" {
				t.Errorf("%s: %s", tt.name, eid)
			}
			if len(s.Effects()) != 0 {
				t.Fatalf("%s: applied", tt.name)
			}
		}
	}
}

func TestIngenicoIdempotenceKey(t *testing.T) {
	s, ts, c := newTestServer(t, Config{Disputes: -1})
	id := s.CreateIngenicoDispute(IngenicoDispute{}).ID
	first := ingDo(t, ts, ingCall{path: disputePath(id, "submit"), idemKey: "req-1"})
	if first.status != 200 || first.header.Get("X-GCS-Idempotence-Request-Timestamp") != "" {
		t.Fatalf("first: %d %v", first.status, first.header)
	}
	c.t = fixedNow.Add(time.Minute)
	again := ingDo(t, ts, ingCall{path: disputePath(id, "submit"), idemKey: "req-1", date: c.t})
	if again.status != 200 || string(again.body) != string(first.body) ||
		again.header.Get("X-GCS-Idempotence-Request-Timestamp") != "1795428000000" {
		t.Fatalf("replay: %d %s %v", again.status, again.body, again.header)
	}
	// Without the key the state machine answers.
	if other := ingDo(t, ts, ingCall{path: disputePath(id, "submit"), idemKey: "req-2", date: c.t}); other.status != 400 {
		t.Fatalf("new key: %d", other.status)
	}
	// A refusal is stored too: the same key gets the same 400.
	if rep := ingDo(t, ts, ingCall{path: disputePath(id, "submit"), idemKey: "req-2", date: c.t}); rep.status != 400 || rep.header.Get("X-GCS-Idempotence-Request-Timestamp") == "" {
		t.Fatalf("stored refusal: %d %v", rep.status, rep.header)
	}
	// File uploads: one file however often the key is sent.
	content := base64.StdEncoding.EncodeToString([]byte("x"))
	for range 3 {
		r := ingDo(t, ts, ingCall{path: disputePath(id, "files"), idemKey: "up-1", date: c.t, body: map[string]string{"fileName": "a.pdf", "fileType": "application/pdf", "content": content}})
		if r.status != 200 {
			t.Fatalf("upload: %d", r.status)
		}
	}
	if d, _ := s.IngenicoDisputeByID(id); len(d.Files) != 1 {
		t.Fatalf("%d files", len(d.Files))
	}
	effects := s.EffectsFor(ProviderIngenico, "req-1", "")
	if len(effects) != 1 || effects[0].IdempotencyKey != "req-1" || effects[0].Operation != "submit" {
		t.Fatalf("effects %+v", effects)
	}
	if n := len(s.Effects()); n != 2 {
		t.Fatalf("%d effects, want 2", n)
	}
}
