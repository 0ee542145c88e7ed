package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/worker"
)

// The operator's view, end to end: the built binary's "action" subcommand
// against one "disputesync dev" (also the built binary), with ids and
// ground truth from the sandbox's control API. One dev serves every
// subtest; they run in order because the timeout case injects latency.
func TestCLIAction(t *testing.T) {
	t.Parallel()
	h := startCLIHarness(t)

	t.Run("every action succeeds", h.testEveryAction)
	t.Run("exit statuses", h.testExitStatuses)
	t.Run("refused before publishing", h.testRefusedLocally)
	t.Run("evidence arrives intact", h.testEvidenceIntact)
	t.Run("reused request id", h.testReusedRequestID)
}

// cliHarness is one running dev and the binary to drive it with.
type cliHarness struct {
	bin        string
	natsURL    string
	sandboxURL string
	prefix     string
	names      topology.Names
	environ    []string
	js         jetstream.JetStream
	nc         *nats.Conn
	dir        string // scratch files
	banner     string // what dev printed when it was up
}

var sandboxLine = regexp.MustCompile(`sandbox\s+(http://\S+)`)

func startCLIHarness(t *testing.T) *cliHarness {
	t.Helper()
	env := testenv.New(t) // a Redis, a unique prefix, cleaned afterwards
	h := &cliHarness{prefix: env.Prefix, names: env.Names, dir: t.TempDir()}
	h.bin = buildBinary(t)
	// The binary reads DISPUTESYNC_* from its environment: keep the caller's
	// out of it, and name the operator (copied to results as requestedBy).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DISPUTESYNC_") && !strings.HasPrefix(kv, "USER=") {
			h.environ = append(h.environ, kv)
		}
	}
	h.environ = append(h.environ, "USER=cli-test")

	var out, errOut syncBuffer
	dev := exec.Command(h.bin, "dev", "--data-dir", t.TempDir(), "--nats-addr", "127.0.0.1:0",
		"--sandbox-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--webhook-addr", "127.0.0.1:0",
		"--redis-url", env.RedisURL, "--prefix", env.Prefix, "--tick", "0", "--disputes", "20",
		"--poll-interval", "1m", "--log-level", "warn")
	dev.Env = h.environ
	dev.Stdout, dev.Stderr = &out, &errOut
	if err := dev.Start(); err != nil {
		t.Fatalf("start dev: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- dev.Wait() }()
	t.Cleanup(func() {
		_ = dev.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev exited with %v after Ctrl-C:\n%s", err, errOut.String())
			}
		case <-time.After(60 * time.Second): // a hang guard, not a speed bound
			_ = dev.Process.Kill()
			t.Errorf("dev did not stop within 60 s of Ctrl-C")
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		s := out.String()
		n, sb := natsLine.FindStringSubmatch(s), sandboxLine.FindStringSubmatch(s)
		if n != nil && sb != nil && strings.Contains(s, "Ctrl-C stops everything") {
			h.natsURL, h.sandboxURL, h.banner = n[1], sb[1], s
			break
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited (%v) before it was up:\n%s\n%s", err, s, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev not up within 30 s:\n%s\n%s", s, errOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling another process's output
	}
	// The banner's example must work when pasted, prefix included.
	if !regexp.MustCompile(`accept_dispute --nats-url ` + regexp.QuoteMeta(h.natsURL) + ` --dispute-id \S+ --prefix ` + h.prefix + `\n`).MatchString(out.String()) {
		t.Errorf("the banner's action example lacks --prefix %s:\n%s", h.prefix, out.String())
	}

	var err error
	if h.nc, err = nats.Connect(h.natsURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.nc.Close)
	if h.js, err = jetstream.New(h.nc); err != nil {
		t.Fatal(err)
	}
	return h
}

// buildBinary builds cmd/disputesync once per test run, as an operator
// would, from the module root.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binary: %v", err)
	}
	gomod, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		t.Fatalf("go env GOMOD: %v %q", err, gomod)
	}
	bin := filepath.Join(t.TempDir(), "disputesync")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/disputesync")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cliResult is one run of the binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// action runs "disputesync action ARGS --nats-url ... --prefix ...".
func (h *cliHarness) action(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"action"}, args...)
	full = append(full, "--nats-url", h.natsURL, "--prefix", h.prefix)
	cmd := exec.CommandContext(ctx, h.bin, full...)
	cmd.Env = h.environ
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("disputesync %v: %v", full, err)
	}
	return r
}

// actionJSON runs an action with --json and decodes its result.
func (h *cliHarness) actionJSON(t *testing.T, args ...string) (cliResult, worker.Result) {
	t.Helper()
	r := h.action(t, append(args, "--json")...)
	var res worker.Result
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &res); err != nil {
		t.Fatalf("action %v: stdout is not a JSON result: %v\n%s", args, err, r)
	}
	return r, res
}

// sb calls the sandbox's control API: method, path, body (nil: none), and
// decodes a JSON answer into out (nil: ignore).
func (h *cliHarness) sb(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.sandboxURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sandbox %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("sandbox %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("sandbox %s %s: %v: %s", method, path, err, b)
		}
	}
}

func (h *cliHarness) effects(t *testing.T, provider, requestID, disputeID string) []sandbox.Effect {
	t.Helper()
	var out []sandbox.Effect
	q := url.Values{"provider": {provider}, "disputeRequestId": {requestID}, "disputeId": {disputeID}}
	h.sb(t, http.MethodGet, "/_sandbox/effects?"+q.Encode(), nil, &out)
	return out
}

// oneEffect asserts that the sandbox applied exactly one operation to a
// dispute and returns it.
func (h *cliHarness) oneEffect(t *testing.T, provider, operation, requestID, disputeID string) sandbox.Effect {
	t.Helper()
	var found []sandbox.Effect
	for _, e := range h.effects(t, provider, requestID, disputeID) {
		if e.Operation == operation {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("sandbox effects %s %s on %s (request %q): %d, want 1: %+v", provider, operation, disputeID, requestID, len(found), found)
	}
	return found[0]
}

func (h *cliHarness) newAlipayDispute(t *testing.T) string {
	var d sandbox.AlipayDispute
	h.sb(t, http.MethodPost, "/_sandbox/alipay/disputes", map[string]any{}, &d)
	return d.DisputeID
}

func (h *cliHarness) newAlipayPlusPayment(t *testing.T) string {
	var p sandbox.AlipayPlusPayment
	h.sb(t, http.MethodPost, "/_sandbox/alipayplus/payments", map[string]any{}, &p)
	return p.PaymentRequestID
}

func (h *cliHarness) newIngenicoDispute(t *testing.T) string {
	var d sandbox.IngenicoDispute
	h.sb(t, http.MethodPost, "/_sandbox/ingenico/disputes", map[string]any{}, &d)
	if d.Status != sandbox.IngenicoDraft {
		t.Fatalf("new Ingenico dispute is %s, want DRAFT", d.Status)
	}
	return d.ID
}

func (h *cliHarness) newDisputeAPIDispute(t *testing.T) string {
	var r sandbox.Record
	h.sb(t, http.MethodPost, "/_sandbox/disputes", map[string]any{}, &r)
	return r.Disputes.DisputesID
}

// writeFile writes a scratch file and returns its path.
func (h *cliHarness) writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// escalation is a valid initiate_escalation for a payment, as param=value.
func escalation(payment string) []string {
	return []string{"paymentRequestId=" + payment, "disputeReasonCode=7801",
		"disputeReasonCodeDescription=MERCHANDIZE_OR_SERVICE_NOT_RECEIVED",
		"escalationAmount.currency=USD", "escalationAmount.value=100", "remarks=opened by the CLI test"}
}

func newRequestID(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// Issue 8 acceptance 1: every action of docs/contract.md section 2 runs from the
// CLI, succeeds, and the sandbox applied it exactly once.
func (h *cliHarness) testEveryAction(t *testing.T) {
	var ids sandbox.SampleIDs
	h.sb(t, http.MethodGet, "/_sandbox/ids", nil, &ids)
	if len(ids.Alipay) < 2 || len(ids.AlipayPlusPayments) < 1 {
		t.Fatalf("sandbox sample ids too few: %+v", ids)
	}
	smallContent := []byte("%PDF-1.4\n% disputesync CLI test evidence\n%%EOF\n")
	smallPDF := h.writeFile(t, "small.pdf", smallContent)
	ingSubmit, ingCancel, ingUpload := h.newIngenicoDispute(t), h.newIngenicoDispute(t), h.newIngenicoDispute(t)
	dapiAbandon, dapiDocs := h.newDisputeAPIDispute(t), h.newDisputeAPIDispute(t)

	type step struct {
		provider, action string
		dispute          string
		args             func() []string // evaluated when the step runs
		operation        string          // the sandbox effect it must cause
		check            func(t *testing.T, e sandbox.Effect)
	}
	var documentID string
	steps := []step{
		{"alipay", "accept_dispute", ids.Alipay[0], nil, "acceptDispute", nil},
		{"alipay", "supply_defense_document", ids.Alipay[1], func() []string { return []string{"--attach", smallPDF} }, "supplyDefenseDocument",
			func(t *testing.T, e sandbox.Effect) {
				if e.Detail["format"] != "PDF" || e.Detail["bytes"] != strconv.Itoa(len(smallContent)) {
					t.Errorf("supplyDefenseDocument received %v, want format PDF and %d bytes", e.Detail, len(smallContent))
				}
			}},
		{"alipayplus", "initiate_escalation", "", func() []string { return escalation(ids.AlipayPlusPayments[0]) }, "initiateEscalation",
			func(t *testing.T, e sandbox.Effect) {
				if e.Detail["paymentRequestId"] != ids.AlipayPlusPayments[0] || e.Detail["value"] != "100" {
					t.Errorf("initiateEscalation received %v", e.Detail)
				}
			}},
		{"ingenico", "upload_file", ingUpload, func() []string { return []string{"--attach", smallPDF} }, "files",
			func(t *testing.T, e sandbox.Effect) {
				if e.Detail["fileName"] != "small.pdf" {
					t.Errorf("ingenico file received %v", e.Detail)
				}
			}},
		{"ingenico", "submit_dispute", ingSubmit, nil, "submit", nil},
		{"ingenico", "cancel_dispute", ingCancel, nil, "cancel", nil},
		{"disputeapi", "abandon", dapiAbandon, nil, "abandon", nil},
		{"disputeapi", "upload_document", dapiDocs, func() []string { return []string{"--attach", smallPDF} }, "documents/upload",
			func(t *testing.T, e sandbox.Effect) { documentID = e.Detail["document_id"] }},
		{"disputeapi", "remove_document", dapiDocs, func() []string { return []string{"document_id=" + documentID} }, "documents/remove",
			func(t *testing.T, e sandbox.Effect) {
				if e.Detail["document_id"] != documentID {
					t.Errorf("removed %v, want %s", e.Detail, documentID)
				}
			}},
		{"disputeapi", "submit_defense", dapiDocs, func() []string { return []string{"comment=Delivered on time; tracking attached."} }, "defend",
			func(t *testing.T, e sandbox.Effect) {
				if e.Detail["comment"] != "Delivered on time; tracking attached." {
					t.Errorf("defend received %v", e.Detail)
				}
			}},
	}
	covered := map[string]bool{}
	for _, s := range steps {
		covered[s.provider+"."+s.action] = true
		reqID := newRequestID("cli-" + strings.ReplaceAll(s.action, "_", "-"))
		args := []string{s.provider, s.action, "--request-id", reqID}
		if s.dispute != "" {
			args = append(args, "--dispute-id", s.dispute)
		}
		if s.args != nil {
			args = append(args, s.args()...)
		}
		r, res := h.actionJSON(t, args...)
		if r.code != exitOK || res.Outcome != worker.Succeeded || res.DisputeRequestID != reqID ||
			res.Provider != s.provider || res.Action != s.action || res.Attempts < 1 || res.RequestedBy != "cli-test" {
			t.Fatalf("%s %s: want exit 0 and a succeeded result for %s by cli-test; got %s", s.provider, s.action, reqID, r)
		}
		disputeID := s.dispute
		if s.provider == "alipayplus" {
			disputeID = "" // the escalation's dispute id is the provider's answer
		}
		requestID := ""
		if s.provider == "alipayplus" || s.provider == "ingenico" {
			requestID = reqID // carried in the provider request itself
		}
		e := h.oneEffect(t, s.provider, s.operation, requestID, disputeID)
		if s.check != nil {
			s.check(t, e)
		}
	}
	// Every action of the contract, no more, no less.
	for _, want := range []string{"alipayplus.initiate_escalation", "alipay.accept_dispute", "alipay.supply_defense_document",
		"ingenico.upload_file", "ingenico.submit_dispute", "ingenico.cancel_dispute",
		"disputeapi.abandon", "disputeapi.upload_document", "disputeapi.remove_document", "disputeapi.submit_defense"} {
		if !covered[want] {
			t.Errorf("action %s not driven", want)
		}
	}
	if len(covered) != 10 {
		t.Errorf("drove %d actions, the contract has 10", len(covered))
	}
}

// Issue 8 acceptance 1: each outcome has its own exit status, and the
// output says what happened.
func (h *cliHarness) testExitStatuses(t *testing.T) {
	t.Run("failed: the provider refuses for good", func(t *testing.T) {
		d := h.newAlipayDispute(t)
		if r := h.action(t, "alipay", "accept_dispute", "--dispute-id", d); r.code != exitOK || !strings.Contains(r.stdout, "accept_dispute: SUCCEEDED") {
			t.Fatalf("first accept: %s", r)
		}
		// A second operator accepts the same dispute under another id.
		r := h.action(t, "alipay", "accept_dispute", "--dispute-id", d)
		if r.code != exitFailed || !strings.Contains(r.stdout, "accept_dispute: FAILED") || !strings.Contains(r.stdout, "code      REPEAT_REQUEST") {
			t.Fatalf("second accept: want exit 3, FAILED, REPEAT_REQUEST; got %s", r)
		}
		if !strings.Contains(r.stderr, "disputeRequestId: ops-") {
			t.Errorf("a generated disputeRequestId is not printed before sending:\n%s", r.stderr)
		}
		h.oneEffect(t, "alipay", "acceptDispute", "", d) // applied once
		// An HTTP 4xx from Ingenico.
		r = h.action(t, "ingenico", "submit_dispute", "--dispute-id", "999999")
		if r.code != exitFailed || !strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stdout, "UNKNOWN_DISPUTE_ID") {
			t.Fatalf("unknown Ingenico dispute: want exit 3, FAILED, UNKNOWN_DISPUTE_ID; got %s", r)
		}
	})

	t.Run("rejected by the worker: disputeRequestId reused with other content", func(t *testing.T) {
		first, other := h.newAlipayDispute(t), h.newAlipayDispute(t)
		reqID := newRequestID("cli-reuse")
		// Another system published the first command (plain NATS, no
		// Nats-Msg-Id, so JetStream's duplicate window does not hide the
		// second one from the worker).
		sub, err := h.nc.SubscribeSync(h.names.ResultSubject("alipay", "accept_dispute"))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		body := fmt.Sprintf(`{"disputeRequestId":%q,"disputeId":%q}`, reqID, first)
		if _, err := h.js.Publish(context.Background(), h.names.ActionSubject("alipay", "accept_dispute"), []byte(body)); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := sub.NextMsg(20 * time.Second)
			if err != nil {
				t.Fatalf("no result for the first command: %v", err)
			}
			if m.Header.Get(worker.HeaderDisputeRequestID) == reqID {
				break
			}
		}
		r := h.action(t, "alipay", "accept_dispute", "--dispute-id", other, "--request-id", reqID)
		if r.code != exitRejected || !strings.Contains(r.stdout, "accept_dispute: REJECTED") || !strings.Contains(r.stdout, "REPEAT_REQ_INCONSISTENT") {
			t.Fatalf("reused id: want exit 4, REJECTED, REPEAT_REQ_INCONSISTENT; got %s", r)
		}
		if n := len(h.effects(t, "alipay", "", other)); n != 0 {
			t.Errorf("the rejected command reached the provider: %d effects on %s", n, other)
		}
	})

	t.Run("rejected by the worker: escalation limit", func(t *testing.T) {
		p := h.newAlipayPlusPayment(t)
		if r := h.action(t, append([]string{"alipayplus", "initiate_escalation"}, escalation(p)...)...); r.code != exitOK {
			t.Fatalf("first escalation: %s", r)
		}
		// One escalation is ongoing: the worker's own ledger refuses the
		// second with the provider's code, without calling it.
		r := h.action(t, append([]string{"alipayplus", "initiate_escalation"}, escalation(p)...)...)
		if r.code != exitRejected || !strings.Contains(r.stdout, "REJECTED") || !strings.Contains(r.stdout, "EXCEEDS_ESCALATION_REQUEST_LIMIT") {
			t.Fatalf("second escalation: want exit 4, REJECTED, EXCEEDS_ESCALATION_REQUEST_LIMIT; got %s", r)
		}
	})

	t.Run("rejected locally", func(t *testing.T) {
		args := append([]string{"alipayplus", "initiate_escalation"}, escalation("2026000000000000000000000001")...)
		args = append(args, "disputeReasonCodeDescription=AMOUNT_DIFFER") // a 7802 description
		r := h.action(t, args...)
		if r.code != exitRejected || r.stdout != "" || !strings.Contains(r.stderr, "refused before publishing: PARAM_ILLEGAL: disputeReasonCodeDescription AMOUNT_DIFFER is not a description of disputeReasonCode 7801") {
			t.Fatalf("mismatched reason description: want exit 4 refused before publishing; got %s", r)
		}
	})

	t.Run("timed out", func(t *testing.T) {
		d := h.newAlipayDispute(t)
		h.sb(t, http.MethodPut, "/_sandbox/faults", map[string]any{"provider": "alipay", "endpoint": "acceptDispute",
			"faults": map[string]any{"latency": "3s"}}, nil)
		t.Cleanup(func() { h.sb(t, http.MethodDelete, "/_sandbox/faults", nil, nil) })
		reqID := newRequestID("cli-slow")
		r := h.action(t, "alipay", "accept_dispute", "--dispute-id", d, "--request-id", reqID, "--wait", "1s")
		if r.code != exitTimeout || !strings.Contains(r.stderr, "no result for "+reqID+" within 1s") ||
			!strings.Contains(r.stderr, h.prefix+".results.alipay.accept_dispute") {
			t.Fatalf("slow provider: want exit 5 and where the result will be; got %s", r)
		}
		// The CLI gave up before the provider answered: the sandbox applies
		// the effect only after its 3 s latency, which starts after the CLI
		// published. (Checked on the ground truth rather than by timing the
		// CLI, whose start-up alone can take seconds on a loaded machine.)
		if n := len(h.effects(t, "alipay", "", d)); n != 0 {
			t.Errorf("--wait 1s returned after the provider applied the command (%d effects), i.e. it waited for the provider", n)
		}
		h.sb(t, http.MethodDelete, "/_sandbox/faults", nil, nil)
		// The command was queued, not lost: the worker still applies it.
		deadline := time.Now().Add(20 * time.Second)
		for len(h.effects(t, "alipay", "", d)) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the timed-out command was never applied")
			}
			time.Sleep(100 * time.Millisecond) // polling the sandbox's ground truth
		}
	})
}

// Issue 8 acceptance 3: a bad command typed by an operator is refused
// before anything is published, naming the field and the rule.
func (h *cliHarness) testRefusedLocally(t *testing.T) {
	tooBig := h.writeFile(t, "too-big.pdf", make([]byte, worker.MaxEvidenceBytes+1))
	long65 := strings.Repeat("1", 65)
	cases := []struct {
		name string
		args []string
		want string // field and rule
	}{
		{"missing dispute id", []string{"alipay", "accept_dispute"}, "disputeId: is required"},
		{"missing required param", []string{"alipayplus", "initiate_escalation", "disputeReasonCode=7801"}, "params.paymentRequestId: is required"},
		{"missing document id", []string{"disputeapi", "remove_document", "--dispute-id", "D000000001"}, "params.document_id: is required"},
		{"wrong enum: reason code", []string{"alipayplus", "initiate_escalation", "paymentRequestId=P1", "disputeReasonCode=9999"},
			"params.disputeReasonCode: must be one of 7801, 7802, 7803"},
		{"wrong enum: evidence format", []string{"alipay", "supply_defense_document", "--dispute-id", "2026000000000000000000000001",
			"disputeEvidence=QUJD", "disputeEvidenceFormat=GIF"}, "params.disputeEvidenceFormat: must be one of PDF, JPG, JPEG, PNG"},
		{"wrong enum: content type", []string{"disputeapi", "upload_document", "--dispute-id", "D000000001", "file_name=a.exe",
			"content_type=exe", "content=QUJD"}, "params.content_type: must be one of pdf, doc"},
		{"wrong format: currency", append(append([]string{"alipayplus", "initiate_escalation"}, escalation("P1")...), "escalationAmount.currency=usd"),
			"params.escalationAmount.currency: must be a 3-letter ISO 4217 code"},
		{"too long: comment", []string{"disputeapi", "submit_defense", "--dispute-id", "D000000001", "comment=" + strings.Repeat("a", 2001)},
			"params.comment: must be at most 2000 characters (has 2001)"},
		{"too long: dispute id", []string{"ingenico", "submit_dispute", "--dispute-id", long65}, "disputeId: must be at most 64 characters"},
		{"too long: request id", []string{"ingenico", "cancel_dispute", "--dispute-id", "1001", "--request-id", strings.Repeat("r", 65)},
			"disputeRequestId: must be at most 64 characters"},
		{"too long: attachment", []string{"disputeapi", "upload_document", "--dispute-id", "D000000001", "--attach", tooBig},
			fmt.Sprintf("is %d bytes, more than the %d a provider accepts", worker.MaxEvidenceBytes+1, worker.MaxEvidenceBytes)},
	}
	ctx := context.Background()
	stream, err := h.js.Stream(ctx, h.names.ActionsStream())
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := func() uint64 {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// LastSeq, not Msgs: the work-queue stream deletes what the worker
		// consumed, but the sequence only grows with each publish.
		return info.State.LastSeq
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := lastSeq()
			r := h.action(t, c.args...)
			if r.code != exitRejected || !strings.Contains(r.stderr, "refused before publishing: ") || !strings.Contains(r.stderr, c.want) {
				t.Errorf("want exit 4 and %q; got %s", c.want, r)
			}
			if r.stdout != "" {
				t.Errorf("a refused command printed a result: %q", r.stdout)
			}
			if after := lastSeq(); after != before {
				t.Errorf("%d command(s) published to %s", after-before, h.names.ActionsStream())
			}
		})
	}
}

// Issue 6 acceptance 4: evidence of the largest size the providers accept
// (2 048 000 base64 characters = worker.MaxEvidenceBytes = 1 536 000 raw
// bytes; the "2 MB" does not fit, and is refused above) goes from
// --attach through the evidence bucket to the provider request bit for bit.
func (h *cliHarness) testEvidenceIntact(t *testing.T) {
	data := make([]byte, worker.MaxEvidenceBytes)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	file := h.writeFile(t, "evidence.pdf", data)

	t.Run("alipayplus supportingDocumentation", func(t *testing.T) {
		p := h.newAlipayPlusPayment(t)
		if r := h.action(t, append([]string{"alipayplus", "initiate_escalation", "--attach", file}, escalation(p)...)...); r.code != exitOK {
			t.Fatalf("escalation with evidence: %s", r)
		}
		var escs []sandbox.AlipayPlusEscalation
		h.sb(t, http.MethodGet, "/_sandbox/alipayplus/escalations?paymentRequestId="+p, nil, &escs)
		if len(escs) != 1 {
			t.Fatalf("%d escalations for %s, want 1", len(escs), p)
		}
		var req struct {
			SupportingDocumentation []struct {
				AttachmentType, AttachmentName, Content, ContentType string
			} `json:"supportingDocumentation"`
		}
		if err := json.Unmarshal(escs[0].Request, &req); err != nil || len(req.SupportingDocumentation) != 1 {
			t.Fatalf("escalation request as received: %v, %d documents", err, len(req.SupportingDocumentation))
		}
		doc := req.SupportingDocumentation[0]
		if len(doc.Content) != 2048000 || doc.AttachmentName != "evidence.pdf" || doc.ContentType != "pdf" {
			t.Errorf("attachment received: %d base64 characters, name %q, type %q", len(doc.Content), doc.AttachmentName, doc.ContentType)
		}
		raw, err := base64.StdEncoding.DecodeString(doc.Content)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(raw); hex.EncodeToString(got[:]) != want {
			t.Errorf("sandbox received sha256 %x, the file is %s", got, want)
		}
	})
	t.Run("ingenico upload_file", func(t *testing.T) {
		d := h.newIngenicoDispute(t)
		reqID := newRequestID("cli-ing-big")
		if r := h.action(t, "ingenico", "upload_file", "--dispute-id", d, "--request-id", reqID, "--attach", file); r.code != exitOK {
			t.Fatalf("upload: %s", r)
		}
		e := h.oneEffect(t, "ingenico", "files", reqID, d)
		if e.Detail["sha256"] != want {
			t.Errorf("sandbox received sha256 %s, the file is %s", e.Detail["sha256"], want)
		}
	})
	t.Run("disputeapi upload_document", func(t *testing.T) {
		d := h.newDisputeAPIDispute(t)
		if r := h.action(t, "disputeapi", "upload_document", "--dispute-id", d, "--attach", file); r.code != exitOK {
			t.Fatalf("upload: %s", r)
		}
		e := h.oneEffect(t, "disputeapi", "documents/upload", "", d)
		if e.Detail["sha256"] != want || e.Detail["file_name"] != "evidence.pdf" {
			t.Errorf("sandbox received %v, the file's sha256 is %s", e.Detail, want)
		}
	})
}

// calls returns the sandbox's count of requests received per
// provider.endpoint, refused ones included: "no provider call" is read
// from here, not from any message.
func (h *cliHarness) calls(t *testing.T) map[string]int {
	t.Helper()
	var out map[string]int
	h.sb(t, http.MethodGet, "/_sandbox/requests", nil, &out)
	return out
}

// sameCalls fails if the sandbox received any request since before.
func (h *cliHarness) sameCalls(t *testing.T, before map[string]int, what string) {
	t.Helper()
	after := h.calls(t)
	for _, k := range []string{"alipay.acceptDispute", "alipay.supplyDefenseDocument", "ingenico.submit", "ingenico.cancel"} {
		if after[k] != before[k] {
			t.Errorf("%s: the sandbox received %d %s request(s)", what, after[k]-before[k], k)
		}
	}
}

// recipe runs a "nats pub" recipe of the documentation through sh, with a
// nats function standing in for the nats CLI, and returns the subject, body
// and header the nats CLI would have published. body replaces the recipe's
// body='...' line, and id its disputeRequestId (old).
func recipe(t *testing.T, script, old, id, body string) (subject string, data []byte, header nats.Header) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(script, "\n") {
		switch {
		case strings.HasPrefix(strings.TrimSpace(l), "body='"):
			l = "body='" + body + "'"
		case strings.HasPrefix(strings.TrimSpace(l), "nats sub"):
			continue
		}
		lines = append(lines, strings.ReplaceAll(l, old+":", id+":"))
	}
	sh := exec.Command("sh", "-c", "nats() { printf '%s\\n' \"$@\"; }\n"+strings.Join(lines, "\n"))
	out, err := sh.Output()
	if err != nil {
		t.Fatalf("the recipe does not run: %v\n%s", err, strings.Join(lines, "\n"))
	}
	args := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	header = nats.Header{}
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "pub" && subject == "" && i+2 < len(args):
			subject, data = args[i+1], []byte(args[i+2])
			i += 2
		case args[i] == "-H" && i+1 < len(args):
			k, v, _ := strings.Cut(args[i+1], ":") // as the nats CLI splits it
			header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			i++
		}
	}
	if subject == "" || len(data) == 0 {
		t.Fatalf("the recipe publishes nothing: %q", args)
	}
	return subject, data, header
}

// readmeRecipe returns the README's shell block that publishes a command
// with "nats pub".
func readmeRecipe(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(raw), -1) {
		if strings.Contains(block[1], "nats pub disputes.actions.") {
			return block[1]
		}
	}
	t.Fatal("README.md has no nats pub recipe")
	return ""
}

// Issue 12 acceptance 1: a disputeRequestId used again. The same command
// again is applied once and answered from the first one; the id with
// another dispute or another action is rejected by the worker without any
// provider call, from the CLI and from the README's nats pub recipe alike.
func (h *cliHarness) testReusedRequestID(t *testing.T) {
	evidence := []string{"disputeEvidence=QUJD", "disputeEvidenceFormat=PDF"}

	t.Run("same command twice", func(t *testing.T) {
		d := h.newAlipayDispute(t)
		reqID := newRequestID("cli-same")
		before := h.calls(t)
		r, res := h.actionJSON(t, "alipay", "accept_dispute", "--dispute-id", d, "--request-id", reqID)
		if r.code != exitOK || res.Outcome != worker.Succeeded || res.Replayed || res.DisputeID != d {
			t.Fatalf("first: want exit 0, succeeded, not replayed, on %s; got %s", d, r)
		}
		// Within the duplicate window JetStream drops the identical publish;
		// the answer is the identical command's stored result, said so.
		r = h.action(t, "alipay", "accept_dispute", "--dispute-id", d, "--request-id", reqID)
		if r.code != exitOK || !strings.Contains(r.stdout, "accept_dispute: SUCCEEDED (the earlier identical command's result") ||
			!strings.Contains(r.stdout, "dispute   "+d) || !strings.Contains(r.stderr, "dropped this publish as a duplicate: an identical command") {
			t.Fatalf("second: want exit 0 and the earlier identical command's result, labelled; got %s", r)
		}
		r, res = h.actionJSON(t, "alipay", "accept_dispute", "--dispute-id", d, "--request-id", reqID)
		if r.code != exitOK || res.Outcome != worker.Succeeded || !res.Replayed || res.DisputeID != d {
			t.Fatalf("third, --json: want exit 0, succeeded, replayed, on %s; got %s", d, r)
		}
		h.oneEffect(t, "alipay", "acceptDispute", "", d)
		if got := h.calls(t)["alipay.acceptDispute"] - before["alipay.acceptDispute"]; got != 1 {
			t.Errorf("the sandbox received %d acceptDispute requests for one command sent three times, want 1", got)
		}
	})

	t.Run("same command after the duplicate window", func(t *testing.T) {
		// The first publish of the command carries no Nats-Msg-Id, so
		// JetStream holds no id for it: the CLI's publish of the same
		// command reaches the worker, as it does once the window has passed.
		d := h.newAlipayDispute(t)
		reqID := newRequestID("cli-later")
		sub, err := h.nc.SubscribeSync(h.names.ResultSubject("alipay", "accept_dispute"))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		body, _ := json.Marshal(&handlers.Command{DisputeRequestID: reqID, DisputeID: d, RequestedBy: "cli-test"})
		if _, err := h.js.Publish(context.Background(), h.names.ActionSubject("alipay", "accept_dispute"), body); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := sub.NextMsg(30 * time.Second)
			if err != nil {
				t.Fatalf("no result for the first publish: %v", err)
			}
			if m.Header.Get(worker.HeaderDisputeRequestID) == reqID {
				break
			}
		}
		before := h.calls(t)
		r, res := h.actionJSON(t, "alipay", "accept_dispute", "--dispute-id", d, "--request-id", reqID)
		if r.code != exitOK || res.Outcome != worker.Succeeded || !res.Replayed || res.DisputeID != d || strings.Contains(r.stderr, "dropped") {
			t.Fatalf("want exit 0 and the worker's replayed result on %s; got %s", d, r)
		}
		h.sameCalls(t, before, "the repeat")
		h.oneEffect(t, "alipay", "acceptDispute", "", d)
	})

	t.Run("same id, another dispute or action", func(t *testing.T) {
		d, other := h.newAlipayDispute(t), h.newAlipayDispute(t)
		reqID := newRequestID("cli-reuse")
		if r := h.action(t, "alipay", "accept_dispute", "--dispute-id", d, "--request-id", reqID); r.code != exitOK {
			t.Fatalf("first: %s", r)
		}
		cases := []struct {
			name string
			args []string
			on   string // the dispute the reuse names
		}{
			{"another dispute", []string{"alipay", "accept_dispute", "--dispute-id", other}, other},
			{"another action", append([]string{"alipay", "supply_defense_document", "--dispute-id", d}, evidence...), d},
		}
		for _, c := range cases {
			before := h.calls(t)
			r, res := h.actionJSON(t, append(c.args, "--request-id", reqID)...)
			// Its own answer: this command's provider, action and dispute.
			if r.code != exitRejected || res.Outcome != worker.Rejected || res.Code != worker.CodeRepeatReqInconsistent ||
				res.Provider != c.args[0] || res.Action != c.args[1] || res.DisputeID != c.on {
				t.Errorf("%s: want exit 4, rejected, REPEAT_REQ_INCONSISTENT for %s %s on %s; got %s", c.name, c.args[0], c.args[1], c.on, r)
			}
			h.sameCalls(t, before, c.name)
		}
		if n := len(h.effects(t, "alipay", "", other)); n != 0 {
			t.Errorf("%d effects on %s", n, other)
		}
		h.oneEffect(t, "alipay", "acceptDispute", "", d)
	})

	t.Run("same id and body, another action", func(t *testing.T) {
		// submit_dispute and cancel_dispute on one dispute have the same
		// body, so the same Nats-Msg-Id: JetStream drops the second, and
		// the CLI has the worker answer it.
		d := h.newIngenicoDispute(t)
		reqID := newRequestID("cli-same-body")
		if r := h.action(t, "ingenico", "submit_dispute", "--dispute-id", d, "--request-id", reqID); r.code != exitOK {
			t.Fatalf("submit: %s", r)
		}
		before := h.calls(t)
		r, res := h.actionJSON(t, "ingenico", "cancel_dispute", "--dispute-id", d, "--request-id", reqID)
		if r.code != exitRejected || res.Code != worker.CodeRepeatReqInconsistent || res.Action != "cancel_dispute" ||
			!strings.Contains(r.stderr, "published as another command ("+h.names.ActionSubject("ingenico", "submit_dispute")) {
			t.Fatalf("cancel with the submit's id: want exit 4, REPEAT_REQ_INCONSISTENT for cancel_dispute; got %s", r)
		}
		h.sameCalls(t, before, "cancel with the submit's id")
		h.oneEffect(t, "ingenico", "submit", reqID, d)
		for _, e := range h.effects(t, "ingenico", "", d) {
			if e.Operation == "cancel" {
				t.Errorf("the dispute was cancelled: %+v", e)
			}
		}
	})

	t.Run("nats pub recipe of the README", func(t *testing.T) {
		script := readmeRecipe(t)
		d, other := h.newAlipayDispute(t), h.newAlipayDispute(t)
		reqID := newRequestID("raw")
		sub, err := h.nc.SubscribeSync(h.names.ResultsAll())
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		actions, err := h.js.Stream(context.Background(), h.names.ActionsStream())
		if err != nil {
			t.Fatal(err)
		}
		lastSeq := func() uint64 {
			info, err := actions.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return info.State.LastSeq
		}
		// publish runs the recipe for one command and publishes what it
		// computed with core NATS, as the nats CLI does.
		publish := func(action, body string) {
			t.Helper()
			subject, data, header := recipe(t, script, "ops-1", reqID, body)
			subject = strings.Replace(subject, "disputes.actions.alipay.accept_dispute", h.names.ActionSubject("alipay", action), 1)
			if got, want := header.Get(worker.HeaderMsgID), worker.CommandMsgID(reqID, data); got != want {
				t.Fatalf("the recipe computes Nats-Msg-Id %q, want %q", got, want)
			}
			if err := h.nc.PublishMsg(&nats.Msg{Subject: subject, Data: data, Header: header}); err != nil {
				t.Fatal(err)
			}
		}
		next := func() worker.Result {
			t.Helper()
			for {
				m, err := sub.NextMsg(30 * time.Second)
				if err != nil {
					t.Fatalf("no result: %v", err)
				}
				if m.Header.Get(worker.HeaderDisputeRequestID) != reqID {
					continue
				}
				var res worker.Result
				if err := json.Unmarshal(m.Data, &res); err != nil {
					t.Fatal(err)
				}
				return res
			}
		}
		accept := func(dispute string) string {
			return fmt.Sprintf(`{"disputeRequestId":%q,"disputeId":%q}`, reqID, dispute)
		}
		seq0, calls0 := lastSeq(), h.calls(t)

		publish("accept_dispute", accept(d))
		if res := next(); res.Outcome != worker.Succeeded || res.Replayed || res.DisputeID != d {
			t.Fatalf("first: %+v", res)
		}
		publish("accept_dispute", accept(d)) // identical: JetStream drops it
		calls1 := h.calls(t)
		publish("accept_dispute", accept(other))
		if res := next(); res.Outcome != worker.Rejected || res.Code != worker.CodeRepeatReqInconsistent || res.DisputeID != other {
			t.Fatalf("another dispute: want rejected, REPEAT_REQ_INCONSISTENT on %s; got %+v", other, res)
		}
		publish("supply_defense_document", fmt.Sprintf(`{"disputeRequestId":%q,"disputeId":%q,"params":{"disputeEvidence":"QUJD","disputeEvidenceFormat":"PDF"}}`, reqID, d))
		if res := next(); res.Outcome != worker.Rejected || res.Code != worker.CodeRepeatReqInconsistent || res.Action != "supply_defense_document" {
			t.Fatalf("another action: want rejected, REPEAT_REQ_INCONSISTENT; got %+v", res)
		}
		// The stream stores one connection's publishes in order, so once the
		// last one is answered the dropped one is known to be dropped.
		if n := lastSeq() - seq0; n != 3 {
			t.Errorf("%d of 4 publishes stored in %s, want 3 (the identical one dropped)", n, h.names.ActionsStream())
		}
		if got := calls1["alipay.acceptDispute"] - calls0["alipay.acceptDispute"]; got != 1 {
			t.Errorf("the sandbox received %d acceptDispute requests for the first command, want 1", got)
		}
		h.sameCalls(t, calls1, "the reuses")
		h.oneEffect(t, "alipay", "acceptDispute", "", d)
		if n := len(h.effects(t, "alipay", "", other)); n != 0 {
			t.Errorf("%d effects on %s", n, other)
		}
	})

	t.Run("nats pub recipe of dev's banner", func(t *testing.T) {
		_, rest, ok := strings.Cut(h.banner, "or with the nats CLI")
		_, rest, _ = strings.Cut(rest, "\n")
		script, _, _ := strings.Cut(rest, "\n\n")
		if !ok || !strings.Contains(script, " pub "+h.names.ActionSubject("alipay", "accept_dispute")) {
			t.Fatalf("dev's banner has no nats pub recipe:\n%s", h.banner)
		}
		body := `{"disputeRequestId":"dev-0001","disputeId":"D1"}`
		subject, data, header := recipe(t, script, "dev-0001", "dev-0001", body)
		if subject != h.names.ActionSubject("alipay", "accept_dispute") || string(data) != body ||
			header.Get(worker.HeaderMsgID) != worker.CommandMsgID("dev-0001", data) {
			t.Errorf("dev's recipe publishes %s %s with Nats-Msg-Id %q, want %s", subject, data, header.Get(worker.HeaderMsgID), worker.CommandMsgID("dev-0001", data))
		}
	})
}
