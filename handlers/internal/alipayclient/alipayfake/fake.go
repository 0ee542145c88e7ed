// Package alipayfake is an httptest provider for the alipay and alipayplus
// handler tests: it checks each request's signature with the merchant's
// public key, as the provider does, records what arrived, and answers what
// the test scripts, signed with the provider key (or, on request, unsigned
// or forged).
package alipayfake

import (
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/alipaysig"
	"github.com/disputesync/disputesync/sandbox"
)

// Keys are one provider's test credentials, parsed.
type Keys struct {
	ClientID    string
	MerchantKey *rsa.PrivateKey // signs requests
	MerchantPub *rsa.PublicKey  // the provider verifies requests with it
	ProviderKey *rsa.PrivateKey // signs answers
	ProviderPub *rsa.PublicKey  // the client verifies answers with it
}

// AlipayKeys returns sandbox.TestKeys' Alipay credentials.
func AlipayKeys(t testing.TB) Keys {
	k := sandbox.TestKeys
	return parse(t, k.AlipayClientID, k.AlipayMerchantPrivatePEM, k.AlipayMerchantPublicPEM, k.AlipayProviderPrivatePEM, k.AlipayProviderPublicPEM)
}

// AlipayPlusKeys returns sandbox.TestKeys' Alipay+ credentials.
func AlipayPlusKeys(t testing.TB) Keys {
	k := sandbox.TestKeys
	return parse(t, k.AlipayPlusClientID, k.AlipayPlusMerchantPrivatePEM, k.AlipayPlusMerchantPublicPEM, k.AlipayPlusProviderPrivatePEM, k.AlipayPlusProviderPublicPEM)
}

func parse(t testing.TB, id, mPriv, mPub, pPriv, pPub string) Keys {
	t.Helper()
	var k Keys
	var err error
	k.ClientID = id
	if k.MerchantKey, err = alipaysig.ParsePrivateKey([]byte(mPriv)); err != nil {
		t.Fatal(err)
	}
	if k.MerchantPub, err = alipaysig.ParsePublicKey([]byte(mPub)); err != nil {
		t.Fatal(err)
	}
	if k.ProviderKey, err = alipaysig.ParsePrivateKey([]byte(pPriv)); err != nil {
		t.Fatal(err)
	}
	if k.ProviderPub, err = alipaysig.ParsePublicKey([]byte(pPub)); err != nil {
		t.Fatal(err)
	}
	return k
}

// Signing says how an answer is signed.
type Signing int

const (
	SignOK        Signing = iota // with the provider key
	SignNone                     // no Signature header
	SignForged                   // with a key that is not the provider's
	SignOtherBody                // a valid signature over a different body
	SignNoTime                   // signed, but no Response-Time header
)

// Reply is a scripted answer.
type Reply struct {
	HTTPStatus int // default 200
	// Body, when set, is sent as is; otherwise the body is built from the
	// result fields and Fields.
	Body    []byte
	Code    string
	Status  string
	Message string
	Fields  map[string]string
	Signing Signing
	Header  http.Header // extra headers, set after (and over) the defaults
}

// Request is what reached the fake.
type Request struct {
	Path     string
	Header   http.Header
	Body     []byte
	SigValid bool
}

// Fake is a running fake provider.
type Fake struct {
	URL    string
	keys   Keys
	forger *rsa.PrivateKey

	mu       sync.Mutex
	requests []Request
	respond  func(Request) Reply
}

// New starts a fake that answers SUCCESS until told otherwise. forger is a
// private key that is not the provider's, used for SignForged.
func New(t testing.TB, keys Keys, forger *rsa.PrivateKey) *Fake {
	f := &Fake{keys: keys, forger: forger}
	f.respond = func(Request) Reply { return Reply{Code: "SUCCESS", Status: "S", Message: "success"} }
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Respond sets the answer function.
func (f *Fake) Respond(fn func(Request) Reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.respond = fn
}

// Always answers r to every request.
func (f *Fake) Always(r Reply) { f.Respond(func(Request) Reply { return r }) }

// Requests returns what arrived so far.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	req.SigValid = r.Method == http.MethodPost && r.Header.Get("Client-Id") == f.keys.ClientID &&
		alipaysig.Verify(f.keys.MerchantPub, r.Method, r.URL.EscapedPath(), r.Header.Get("Client-Id"),
			r.Header.Get("Request-Time"), body, r.Header.Get("Signature")) == nil
	f.mu.Lock()
	f.requests = append(f.requests, req)
	respond := f.respond
	f.mu.Unlock()

	rep := Reply{Code: "INVALID_SIGNATURE", Status: "F", Message: "The signature is invalid."}
	if req.SigValid {
		rep = respond(req)
	}
	out := rep.Body
	if out == nil {
		m := map[string]any{}
		for k, v := range rep.Fields {
			m[k] = v
		}
		m["result"] = map[string]string{"resultCode": rep.Code, "resultStatus": rep.Status, "resultMessage": rep.Message}
		out, _ = json.Marshal(m)
	}
	respTime := time.Now().Format(alipaysig.TimeLayout)
	key, signed := f.keys.ProviderKey, out
	switch rep.Signing {
	case SignForged:
		key = f.forger
	case SignOtherBody:
		signed = append([]byte(nil), out...)
		signed = append(signed, ' ')
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Client-Id", f.keys.ClientID)
	if rep.Signing != SignNoTime {
		w.Header().Set("Response-Time", respTime)
	}
	for k, vs := range rep.Header { // after the defaults, so a test can override them
		w.Header()[k] = vs
	}
	if rep.Signing != SignNone {
		sig, err := alipaysig.Sign(key, r.Method, r.URL.EscapedPath(), f.keys.ClientID, respTime, signed)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if rep.Header.Get("Signature") == "" {
			w.Header().Set("Signature", sig)
		}
	}
	status := rep.HTTPStatus
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// Result decodes a body's result code, for assertions.
func Result(body []byte) string {
	var v struct {
		Result struct {
			Code string `json:"resultCode"`
		} `json:"result"`
	}
	_ = json.Unmarshal(body, &v)
	return v.Result.Code
}

// WriteSigned writes body as the provider's answer to r, with the given
// HTTP status, signed with keys.ProviderKey as the provider signs: for the
// conformance suite's documented answers.
func WriteSigned(w http.ResponseWriter, r *http.Request, keys Keys, status int, body []byte) {
	respTime := time.Now().Format(alipaysig.TimeLayout)
	sig, err := alipaysig.Sign(keys.ProviderKey, r.Method, r.URL.EscapedPath(), keys.ClientID, respTime, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Client-Id", keys.ClientID)
	w.Header().Set("Response-Time", respTime)
	w.Header().Set("Signature", sig)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
