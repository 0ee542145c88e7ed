package sandbox

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/alipaysig"
	"github.com/disputesync/disputesync/internal/gcs"
)

// fixedNow is the sandbox clock in tests.
var fixedNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server, *clock) {
	t.Helper()
	c := &clock{t: fixedNow}
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts, c
}

func mustPriv(t *testing.T, pemText string) *rsa.PrivateKey {
	t.Helper()
	k, err := alipaysig.ParsePrivateKey([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPub(t *testing.T, pemText string) *rsa.PublicKey {
	t.Helper()
	k, err := alipaysig.ParsePublicKey([]byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// alipayCall is one signed Alipay-style request.
type alipayCall struct {
	clientID    string
	key         *rsa.PrivateKey
	requestTime time.Time
	// tamper changes the body after signing.
	tamper func([]byte) []byte
	header map[string]string
}

type alipayReply struct {
	status int
	header http.Header
	body   []byte
	Result Result `json:"result"`
	raw    map[string]any
}

// postAlipay signs and sends body, verifies the answer's signature with pub,
// and decodes it.
func postAlipay(t *testing.T, ts *httptest.Server, path string, c alipayCall, pub *rsa.PublicKey, body any) alipayReply {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	rt := c.requestTime.Format(alipaysig.TimeLayout)
	sig, err := alipaysig.Sign(c.key, "POST", path, c.clientID, rt, b)
	if err != nil {
		t.Fatal(err)
	}
	if c.tamper != nil {
		b = c.tamper(b)
	}
	req, _ := http.NewRequest("POST", ts.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("Client-Id", c.clientID)
	req.Header.Set("Request-Time", rt)
	req.Header.Set("Signature", sig)
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	out := alipayReply{status: resp.StatusCode, header: resp.Header, body: rb}
	if err := json.Unmarshal(rb, &out); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, rb)
	}
	_ = json.Unmarshal(rb, &out.raw)
	if pub != nil {
		err := alipaysig.Verify(pub, "POST", path, resp.Header.Get("Client-Id"), resp.Header.Get("Response-Time"), rb, resp.Header.Get("Signature"))
		if err != nil {
			t.Fatalf("answer signature: %v", err)
		}
	}
	return out
}

// postJSON posts body (bytes or a value) with headers and returns status and body.
func postJSON(t *testing.T, ts *httptest.Server, path string, header map[string]string, body any) (int, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest("POST", ts.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, rb
}

var bearer = map[string]string{"Authorization": "Bearer " + TestKeys.DisputeAPIToken}

// dapiEnvelope is the disputeapi answer.
type dapiEnvelope struct {
	Code string          `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

type listData struct {
	Lists      []Record `json:"lists"`
	Page       string   `json:"page"`
	TotalCount string   `json:"total_count"`
	TotalPages string   `json:"total_pages"`
}

func dapiPost(t *testing.T, ts *httptest.Server, path string, body any) dapiEnvelope {
	t.Helper()
	status, b := postJSON(t, ts, path, bearer, body)
	if status != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", path, status, b)
	}
	var env dapiEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s: %v: %s", path, err, b)
	}
	return env
}

func verifyAnswer(pub *rsa.PublicKey, path string, a alipayReply) error {
	return alipaysig.Verify(pub, "POST", path, a.header.Get("Client-Id"), a.header.Get("Response-Time"), a.body, a.header.Get("Signature"))
}

func mustSign(t *testing.T, c alipayCall, path, rt string, body []byte) string {
	t.Helper()
	sig, err := alipaysig.Sign(c.key, "POST", path, c.clientID, rt, body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func signIngenico(r *http.Request) {
	gcs.Sign(r, TestKeys.IngenicoAPIKeyID, []byte(TestKeys.IngenicoSecretAPIKey))
}
