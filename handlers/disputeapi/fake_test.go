package disputeapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

const testToken = "t0ken-SECRET-never-logged-42"

type fakeDoc struct {
	ID, FileName, ContentType, SHA256 string
	Content                           []byte
}

type fakeDispute struct {
	Closed, Defended bool
	Docs             []fakeDoc
}

type seenRequest struct {
	Path   string
	Header http.Header
	Body   []byte
}

// fakePSP implements the documented behaviour of the dispute API actions
// (docs/contract.md section 5, the "already done" answers of the
// recovery rules): it has no idempotency key, so a repeated call is a
// second effect. dropAfterApply applies a request and then cuts the
// connection: the "applied, answer lost" fault. failBefore answers "500"
// without applying.
type fakePSP struct {
	mu             sync.Mutex
	token          string
	disputes       map[string]*fakeDispute
	effects        int
	seen           []seenRequest
	dropAfterApply int
	failBefore     int
	nextDoc        int
}

func newFakePSP(t *testing.T, token string, ids ...string) (*fakePSP, *httptest.Server) {
	t.Helper()
	f := &fakePSP{token: token, disputes: map[string]*fakeDispute{}}
	for _, id := range ids {
		f.disputes[id] = &fakeDispute{}
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func env(code, msg string, data any) []byte {
	b, _ := json.Marshal(map[string]any{"code": code, "msg": msg, "data": data})
	return b
}

func (f *fakePSP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, seenRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	w.Header().Set("Content-Type", "application/json")
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write(env("401", "UNAUTHORIZED", nil))
		return
	}
	if f.failBefore > 0 {
		f.failBefore--
		w.Write(env("500", "SYSTEM_BUSY", nil))
		return
	}
	answer := f.apply(r.URL.Path, body)
	if f.dropAfterApply > 0 && r.URL.Path != pathRequiredDocuments {
		f.dropAfterApply--
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	w.Write(answer)
}

func (f *fakePSP) apply(path string, raw []byte) []byte {
	var req map[string]string // every scalar is a JSON string
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&req); err != nil {
		return env("400", "PARAM_ERROR", nil)
	}
	d, ok := f.disputes[req["disputes_id"]]
	if !ok {
		return env("400", "DISPUTE_NOT_FOUND", nil)
	}
	switch path {
	case pathRequiredDocuments:
		docs := []map[string]string{}
		for _, doc := range d.Docs {
			docs = append(docs, map[string]string{"document_id": doc.ID, "file_name": doc.FileName, "content_type": doc.ContentType, "sha256": doc.SHA256})
		}
		return env("200", "SUCCESS", map[string]any{"required": []string{"invoice", "delivery_proof"}, "documents": docs})
	case pathAbandon:
		if d.Closed {
			return env("400", MsgDisputeAlreadyClosed, nil)
		}
		d.Closed = true
	case pathDefend:
		switch {
		case d.Closed:
			return env("400", MsgDisputeAlreadyClosed, nil)
		case d.Defended:
			return env("400", MsgDisputeAlreadyDefended, nil)
		case req["comment"] == "":
			return env("400", "PARAM_ERROR", nil)
		}
		d.Defended = true
	case pathUpload:
		content, err := base64.StdEncoding.DecodeString(req["content"])
		if err != nil || req["file_name"] == "" || req["content_type"] == "" || len(req) != 4 {
			return env("400", "PARAM_ERROR", nil)
		}
		if d.Closed {
			return env("400", MsgDisputeAlreadyClosed, nil)
		}
		f.nextDoc++
		sum := sha256.Sum256(content)
		doc := fakeDoc{ID: fmt.Sprintf("doc-%d", f.nextDoc), FileName: req["file_name"], ContentType: req["content_type"],
			SHA256: hex.EncodeToString(sum[:]), Content: content}
		d.Docs = append(d.Docs, doc)
		f.effects++
		return env("200", "SUCCESS", map[string]string{"document_id": doc.ID})
	case pathRemove:
		i := -1
		for j, doc := range d.Docs {
			if doc.ID == req["document_id"] {
				i = j
			}
		}
		if i < 0 {
			return env("400", MsgDocumentNotFound, nil)
		}
		d.Docs = append(d.Docs[:i], d.Docs[i+1:]...)
	default:
		return env("400", "UNKNOWN_API", nil)
	}
	f.effects++
	return env("200", "SUCCESS", nil)
}

func (f *fakePSP) effectCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.effects
}

func (f *fakePSP) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// logBuffer collects log output for the secret checks.
type logBuffer = testsupport.LogBuffer

func newTestClient(t *testing.T, baseURL string, mod func(*Config)) (*Client, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := Config{
		BaseURL: baseURL, Token: []byte(testToken), Timeout: 2 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
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

func handler(t *testing.T, mux *handlers.Mux, action string) handlers.Handler {
	t.Helper()
	h, ok := mux.Handler(Provider, action)
	if !ok {
		t.Fatalf("no handler for %s", action)
	}
	return h
}

func clientHandler(t *testing.T, c *Client, action string) handlers.Handler {
	t.Helper()
	mux := handlers.NewMux()
	c.Register(mux)
	return handler(t, mux, action)
}

func command(reqID, disputeID, params string) *handlers.Command {
	cmd := &handlers.Command{DisputeRequestID: reqID, DisputeID: disputeID}
	if params != "" {
		cmd.Params = json.RawMessage(params)
	}
	return cmd
}

// kind names the outcome class an Apply error stands for.
var kind = handlerstest.Kind
