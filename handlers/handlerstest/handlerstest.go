// Package handlerstest is the conformance suite every provider package
// passes: Run checks a provider's handlers against the project's sandbox
// (started in-process by the provider's own test) and against answers
// served by httptest for each documented result code.
//
// A provider describes itself with a Provider value: constructors, its
// validation and classification rows, and the few facts the suite cannot
// guess (which sandbox endpoint an action hits, which header carries its
// idempotency key). The suite never imports the sandbox package: it drives
// the sandbox through its HTTP control API (/_sandbox/faults, /_sandbox/effects,
// /_sandbox/requests), so that nothing under handlers/ depends on it outside
// test files.
package handlerstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

// Provider describes one provider to the suite.
type Provider struct {
	// Name is the provider's name in the contract, e.g. "ingenico".
	Name string
	// Start starts a fresh sandbox for one subtest and stops it when the
	// test ends.
	Start func(t *testing.T) *Sandbox
	// New returns a Mux with the provider's handlers calling baseURL and
	// reading evidence through ev; with wrongKey they sign with a key the
	// provider refuses.
	New func(t *testing.T, baseURL string, ev handlers.Evidence, wrongKey bool) *handlers.Mux
	// Validators registers the provider's validation-only handlers.
	Validators func(*handlers.Mux)

	// Invalid are commands Validate refuses; none may reach the provider.
	Invalid []Invalid
	// Valid are commands Validate accepts.
	Valid []Valid
	// Answers are the documented answers and how each is classified.
	Answers []Answer
	// Respond writes an Answer; nil writes its status, header and body as
	// they are (a provider whose answers are signed supplies its own).
	Respond func(w http.ResponseWriter, r *http.Request, a Answer)
	// AnswerCommand returns the command applied to each Answer.
	AnswerCommand func(action string) *handlers.Command

	// Signed is an action whose requests the sandbox verifies, and
	// WrongKeyCode the code the provider answers a request signed with a
	// wrong key.
	Signed, WrongKeyCode string
	// Recover lists actions whose effect the sandbox can apply and then
	// fail (the answer lost or an error instead).
	Recover []Recovery
	// IdempotencyKey reports whether the provider takes an idempotency key
	// (the sandbox records it on each effect); false for providers that
	// have none and recover by their "already done" answer.
	IdempotencyKey bool
	// EvidenceAction is the action that carries an attachment; its handler
	// implements handlers.EvidencePlacer. ContentFields are its params that
	// carry the content inline, removed before a reference is placed.
	EvidenceAction string
	ContentFields  []string
}

// Sandbox is one running sandbox, as a provider test started it.
type Sandbox struct {
	URL string
	// Command returns a valid command for action on a dispute of this
	// sandbox that allows it, with the given disputeRequestId.
	Command func(t *testing.T, action, requestID string) *handlers.Command
	// Stored describes the attachment the sandbox stored for an applied
	// EvidenceAction command.
	Stored func(t *testing.T, cmd *handlers.Command) Stored
}

// Stored is what the sandbox knows of a stored attachment: its size, its
// digest or both (zero values are unknown).
type Stored struct {
	Size   int64
	SHA256 string // hex
}

// Invalid is a command Validate must refuse with exactly Want.
type Invalid struct {
	Name, Action string
	Cmd          *handlers.Command
	Want         string // the error's text
	// Code is the code of the refusal; "" means INVALID_COMMAND (an
	// *InvalidError), anything else a *RuleError.
	Code string
}

// Valid is a command Validate must accept.
type Valid struct {
	Action string
	Cmd    *handlers.Command
}

// Answer is a documented provider answer and its outcome.
type Answer struct {
	Name, Action string
	Status       int
	Header       map[string]string
	Body         string
	// Kind is the outcome (see Kind), Code the code it carries, Message
	// (if set) the provider's message and Delay the retry delay of a
	// "retry_after" outcome.
	Kind, Code, Message string
	Delay               time.Duration
	// Recover applies the command as a retry after an unknown outcome.
	Recover bool
}

// Recovery is an action whose effect the sandbox applies and then fails.
type Recovery struct {
	Action string
	// Endpoint is the sandbox's name of the endpoint (its fault key).
	Endpoint string
	// Code is the code the recovered call reports.
	Code string
}

// Serve serves h (a sandbox) until the test ends and returns its URL.
func Serve(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Kind names the outcome class an Apply error stands for (handlers/doc.go):
// succeeded, invalid, rule, permanent, retry_after or retryable.
func Kind(err error) string {
	var inv *handlers.InvalidError
	var rule *handlers.RuleError
	switch {
	case err == nil:
		return "succeeded"
	case errors.As(err, &inv):
		return "invalid"
	case errors.As(err, &rule):
		return "rule"
	case handlers.IsPermanent(err):
		return "permanent"
	}
	if _, ok := handlers.RetryDelay(err); ok {
		return "retry_after"
	}
	return "retryable"
}

// Run runs the suite.
func Run(t *testing.T, p Provider) {
	t.Run("Validation", func(t *testing.T) { t.Parallel(); testValidation(t, p) })
	t.Run("Classification", func(t *testing.T) { t.Parallel(); testClassification(t, p) })
	t.Run("Signing", func(t *testing.T) { t.Parallel(); testSigning(t, p) })
	t.Run("Recover", func(t *testing.T) { t.Parallel(); testRecover(t, p) })
	t.Run("Evidence", func(t *testing.T) { t.Parallel(); testEvidence(t, p) })
}

// Handler returns the handler of provider.action in mux, failing the test
// if there is none.
func Handler(t *testing.T, mux *handlers.Mux, provider, action string) handlers.Handler {
	t.Helper()
	h, ok := mux.Handler(provider, action)
	if !ok {
		t.Fatalf("no handler for %s.%s", provider, action)
	}
	return h
}

func testValidation(t *testing.T, p Provider) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no request may reach the provider", http.StatusTeapot)
	}))
	defer srv.Close()
	real := p.New(t, srv.URL, nil, false)
	validators := handlers.NewMux()
	p.Validators(validators)
	for _, tc := range p.Invalid {
		t.Run(tc.Name, func(t *testing.T) {
			wantKind, wantCode := "invalid", handlers.CodeInvalidCommand
			if tc.Code != "" {
				wantKind, wantCode = "rule", tc.Code
			}
			for _, mux := range []*handlers.Mux{real, validators} {
				err := Handler(t, mux, p.Name, tc.Action).Validate(tc.Cmd)
				if Kind(err) != wantKind || handlers.Code(err) != wantCode || err.Error() != tc.Want {
					t.Fatalf("Validate = %s %v, want %s %q", Kind(err), err, wantKind, tc.Want)
				}
			}
			_, err := Handler(t, real, p.Name, tc.Action).Apply(context.Background(), &handlers.Call{Command: tc.Cmd, Attempt: 1})
			if handlers.Code(err) != wantCode || err.Error() != tc.Want {
				t.Fatalf("Apply = %v, want %q", err, tc.Want)
			}
		})
	}
	for _, tc := range p.Valid {
		h := Handler(t, validators, p.Name, tc.Action)
		if err := h.Validate(tc.Cmd); err != nil {
			t.Errorf("%s %s: %v", tc.Action, tc.Cmd.Params, err)
		}
		if _, err := h.Apply(context.Background(), &handlers.Call{Command: tc.Cmd}); err == nil {
			t.Errorf("a validation-only handler applied %s", tc.Action)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d requests reached the provider for invalid commands", n)
	}
}

func testClassification(t *testing.T, p Provider) {
	respond := p.Respond
	if respond == nil {
		respond = func(w http.ResponseWriter, _ *http.Request, a Answer) {
			for k, v := range a.Header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(a.Status)
			_, _ = w.Write([]byte(a.Body))
		}
	}
	for _, tc := range p.Answers {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { respond(w, r, tc) }))
			defer srv.Close()
			mux := p.New(t, srv.URL, nil, false)
			resp, err := Handler(t, mux, p.Name, tc.Action).Apply(context.Background(), &handlers.Call{Command: p.AnswerCommand(tc.Action), Attempt: 1, Recover: tc.Recover})
			if got := Kind(err); got != tc.Kind {
				t.Fatalf("outcome = %s (%v), want %s", got, err, tc.Kind)
			}
			code, msg := handlers.Code(err), ""
			var pe *handlers.ProviderError
			if errors.As(err, &pe) {
				msg = pe.Message
			}
			if err == nil {
				code, msg = resp.Code, resp.Message
				if string(resp.Body) != tc.Body {
					t.Errorf("body = %s, want the whole answer %s", resp.Body, tc.Body)
				}
			}
			if code != tc.Code {
				t.Errorf("code = %q, want %q", code, tc.Code)
			}
			if tc.Message != "" && msg != tc.Message {
				t.Errorf("message = %q, want %q", msg, tc.Message)
			}
			if d, _ := handlers.RetryDelay(err); d != tc.Delay {
				t.Errorf("retry delay = %v, want %v", d, tc.Delay)
			}
		})
	}
}

func testSigning(t *testing.T, p Provider) {
	sb := p.Start(t)
	cmd := sb.Command(t, p.Signed, "sign-1")
	_, err := Handler(t, p.New(t, sb.URL, nil, true), p.Name, p.Signed).Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 1})
	if Kind(err) != "permanent" || handlers.Code(err) != p.WrongKeyCode {
		t.Fatalf("wrong key: %s %q (%v), want permanent %s", Kind(err), handlers.Code(err), err, p.WrongKeyCode)
	}
	if n := len(effects(t, sb.URL, p.Name, "sign-1")); n != 0 {
		t.Fatalf("a request signed with a wrong key had %d effects", n)
	}
	if _, err := Handler(t, p.New(t, sb.URL, nil, false), p.Name, p.Signed).Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 2}); err != nil {
		t.Fatalf("right key: %v", err)
	}
	if n := len(effects(t, sb.URL, p.Name, "sign-1")); n != 1 {
		t.Fatalf("the signed request had %d effects, want 1", n)
	}
}

func testRecover(t *testing.T, p Provider) {
	for _, rc := range p.Recover {
		t.Run(rc.Action, func(t *testing.T) {
			sb := p.Start(t)
			id := "recover-" + rc.Action
			cmd := sb.Command(t, rc.Action, id)
			h := Handler(t, p.New(t, sb.URL, nil, false), p.Name, rc.Action)
			setFaults(t, sb.URL, p.Name, rc.Endpoint, `{"applyThenFailRate":1}`)
			_, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 1})
			if k := Kind(err); k != "retryable" {
				t.Fatalf("apply then fail: %s (%v), want retryable", k, err)
			}
			clearFaults(t, sb.URL)
			resp, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 2, Recover: true})
			if err != nil {
				t.Fatalf("recovered call: %s (%v), want succeeded", Kind(err), err)
			}
			if resp.Code != rc.Code {
				t.Errorf("recovered code %q, want %q", resp.Code, rc.Code)
			}
			got := effects(t, sb.URL, p.Name, id)
			if len(got) != 1 {
				t.Fatalf("effects %v, want exactly one", got)
			}
			if p.IdempotencyKey && got[0].IdempotencyKey != id {
				t.Errorf("idempotency key %q, want the disputeRequestId %q", got[0].IdempotencyKey, id)
			}
		})
	}
}

func testEvidence(t *testing.T, p Provider) {
	// Large enough to need the evidence bucket rather than a NATS message.
	data := bytes.Repeat([]byte("%PDF-1.4 evidence\n"), 64<<10/18)
	store := testsupport.Evidence{"ev/1.pdf": data}
	good := handlers.ContentRef{Name: "ev/1.pdf", Digest: testsupport.Digest(data), Size: int64(len(data))}
	tests := []struct {
		name string
		ev   handlers.Evidence
		ref  handlers.ContentRef
		kind string
	}{
		{"intact", store, good, "succeeded"},
		{"name only", store, handlers.ContentRef{Name: good.Name}, "succeeded"},
		{"missing object", store, handlers.ContentRef{Name: "ev/none.pdf", Digest: good.Digest}, "invalid"},
		{"digest mismatch", store, handlers.ContentRef{Name: good.Name, Digest: testsupport.Digest([]byte("other"))}, "invalid"},
		{"size mismatch", store, handlers.ContentRef{Name: good.Name, Size: good.Size - 1}, "invalid"},
		{"no evidence store", nil, good, "invalid"},
		{"store down", testsupport.FakeEvidence{Err: errors.New("nats: timeout")}, good, "retryable"},
		{"store says invalid", testsupport.FakeEvidence{Err: handlers.Invalid("params", "expired")}, good, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := p.Start(t)
			h := Handler(t, p.New(t, sb.URL, tc.ev, false), p.Name, p.EvidenceAction)
			placer, ok := h.(handlers.EvidencePlacer)
			if !ok {
				t.Fatalf("%s.%s does not place evidence", p.Name, p.EvidenceAction)
			}
			cmd := sb.Command(t, p.EvidenceAction, "ev-1")
			params := map[string]any{}
			if len(cmd.Params) > 0 {
				if err := json.Unmarshal(cmd.Params, &params); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range p.ContentFields {
				delete(params, f)
			}
			placer.PlaceEvidence(params, tc.ref, "1.pdf")
			cmd.Params, _ = json.Marshal(params)
			if err := h.Validate(cmd); err != nil {
				t.Fatalf("the placed reference does not validate: %v", err)
			}
			_, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 1})
			if Kind(err) != tc.kind {
				t.Fatalf("outcome %s (%v), want %s", Kind(err), err, tc.kind)
			}
			if err != nil {
				if n := requests(t, sb.URL); n != 0 {
					t.Fatalf("%d requests reached the provider", n)
				}
				return
			}
			sum := sha256.Sum256(data)
			got := sb.Stored(t, cmd)
			if got == (Stored{}) || (got.Size != 0 && got.Size != int64(len(data))) || (got.SHA256 != "" && got.SHA256 != hex.EncodeToString(sum[:])) {
				t.Fatalf("the sandbox stored %+v, not the object's %d bytes with SHA-256 %x", got, len(data), sum)
			}
		})
	}
}

// Effect is an effect the sandbox records (its control API's JSON).
type Effect struct {
	Operation      string            `json:"operation"`
	DisputeID      string            `json:"disputeId"`
	IdempotencyKey string            `json:"idempotencyKey"`
	Detail         map[string]string `json:"detail"`
}

func effects(t *testing.T, base, provider, requestID string) []Effect {
	t.Helper()
	var out []Effect
	control(t, http.MethodGet, base+"/_sandbox/effects?provider="+provider+"&disputeRequestId="+requestID, "", &out)
	return out
}

func requests(t *testing.T, base string) int {
	t.Helper()
	var counts map[string]int
	control(t, http.MethodGet, base+"/_sandbox/requests", "", &counts)
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

func setFaults(t *testing.T, base, provider, endpoint, faults string) {
	t.Helper()
	control(t, http.MethodPut, base+"/_sandbox/faults", fmt.Sprintf(`{"provider":%q,"endpoint":%q,"faults":%s}`, provider, endpoint, faults), nil)
}

func clearFaults(t *testing.T, base string) {
	t.Helper()
	control(t, http.MethodDelete, base+"/_sandbox/faults", "", nil)
}

// control calls the sandbox's control API and decodes its answer into out.
func control(t *testing.T, method, url, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sandbox control %s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("sandbox control %s %s: %s", method, url, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("sandbox control %s %s: %v", method, url, err)
		}
	}
}
