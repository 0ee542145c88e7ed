package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/docs"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/sandbox"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain()) // a poller process for TestRestartKill
	}
	testenv.Main(m, reportSchemas)
}

// reportSchemas prints how many real events the schemas checked.
func reportSchemas() { fmt.Printf("schemas: validated %v\n", docs.Validated()) }

// harness is one test's world: real NATS (testenv), the provider sandbox
// behind an httptest server, and a hook that runs on every list call (to
// change the list while the poller pages it, or to stop the poller).
type harness struct {
	env   *testenv.Env
	sb    *sandbox.Server
	ts    *httptest.Server
	lists atomic.Int64

	mu   sync.Mutex
	hook func(n int64, req listCall) // called before the n-th list call is served
}

// listCall is a list request's body as the poller sent it.
type listCall struct {
	From  string `json:"from_created_at"`
	To    string `json:"to_created_at"`
	Type  string `json:"type"`
	Page  string `json:"page"`
	Limit string `json:"limit"`
}

func newHarness(t *testing.T, disputes int, opts topology.Options) *harness {
	t.Helper()
	return newHarnessWith(t, sandbox.Config{Disputes: disputes}, opts)
}

// newHarnessWith is newHarness with the sandbox's list readings (creation
// time precision, the reading of "disputes-period") chosen by sbCfg.
func newHarnessWith(t *testing.T, sbCfg sandbox.Config, opts topology.Options) *harness {
	t.Helper()
	env := testenv.New(t)
	env.Setup(t, opts)
	sbCfg.Seed, sbCfg.Logger = 7, slog.New(slog.DiscardHandler)
	h := &harness{env: env, sb: sandbox.New(sbCfg)}
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == listPath {
			n := h.lists.Add(1)
			h.mu.Lock()
			hook := h.hook
			h.mu.Unlock()
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var call listCall
			if err := json.Unmarshal(body, &call); err != nil || call.Limit != "100" {
				t.Errorf("list request %s: %v", body, err)
			}
			if hook != nil {
				hook(n, call)
			}
		}
		h.sb.ServeHTTP(w, r)
	}))
	t.Cleanup(h.ts.Close)
	return h
}

func (h *harness) setHook(f func(n int64, req listCall)) {
	h.mu.Lock()
	h.hook = f
	h.mu.Unlock()
}

// poller builds a Poller against the sandbox with test-sized timings.
func (h *harness) poller(t *testing.T, m *metrics.Metrics, mod func(*Config)) *Poller {
	t.Helper()
	if m == nil {
		m = metrics.New()
	}
	cfg := Config{
		Source: "disputeapi", BaseURL: h.ts.URL, Token: []byte(sandbox.TestKeys.DisputeAPIToken),
		Interval: 50 * time.Millisecond, FullRescanInterval: time.Hour, LeaseTTL: 1500 * time.Millisecond,
		RetryBackoff: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond,
		FullRescanPagesPerCycle: 10_000,
		JS:                      h.env.JS, Names: h.env.Names, Metrics: m, Logger: slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// events reads every event in the events stream, in stream order, checking
// the headers and subject of each.
func (h *harness) events(t *testing.T) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := h.env.JS.Stream(ctx, h.env.Names.EventsStream())
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	want := int(info.State.Msgs)
	out := make([]Event, 0, want)
	if want == 0 {
		return out
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	for len(out) < want {
		batch, err := c.Fetch(min(1000, want-len(out)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			var ev Event
			if err := json.Unmarshal(msg.Data(), &ev); err != nil {
				t.Fatalf("event %d: %v", len(out), err)
			}
			if err := validateCloudEvent(msg.Data()); err != nil {
				t.Fatalf("event %d is not a CloudEvents 1.0 JSON event: %v\n%s", len(out), err, msg.Data())
			}
			if msg.Headers().Get(HeaderMsgID) != ev.ID || msg.Headers().Get(HeaderDisputeID) != ev.Subject {
				t.Fatalf("event %s: headers %v do not match id %s / subject %s", ev.Type, msg.Headers(), ev.ID, ev.Subject)
			}
			if msg.Subject() != h.env.Names.EventSubject(ev.Source, ev.Type) {
				t.Fatalf("event %s on subject %s", ev.Type, msg.Subject())
			}
			// Issue 8: the published schemas must accept every real event.
			if err := docs.ValidateMessage(h.env.Prefix, msg.Subject(), msg.Headers(), msg.Data()); err != nil {
				t.Fatalf("event %d does not match docs/schemas: %v\n%s", len(out), err, msg.Data())
			}
			out = append(out, ev)
		}
		if batch.Error() != nil {
			t.Fatalf("fetch: %v", batch.Error())
		}
		if got == 0 {
			t.Fatalf("read %d of %d events", len(out), want)
		}
	}
	return out
}

// truth is the sandbox's current record of a dispute, normalized.
func truth(t *testing.T, r sandbox.Record) Record {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ParseRecord(b)
	if err != nil {
		t.Fatalf("sandbox record %s: %v", r.Disputes.DisputesID, err)
	}
	return rec
}

// rawOf is the sandbox's record as JSON.
func rawOf(t *testing.T, r sandbox.Record) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cycle(t *testing.T, p *Poller) CycleStats {
	t.Helper()
	st, err := p.Cycle(testenv.Context(t))
	if err != nil {
		t.Fatalf("Cycle: %v", err)
	}
	return st
}

// checkGroundTruth asserts the two properties of issue 4 acceptance 1: the
// last event of every dispute carries the sandbox's current record, and no
// dispute has two consecutive state events for the same state (nor two
// events with the same id).
func checkGroundTruth(t *testing.T, h *harness, events []Event) {
	t.Helper()
	last := map[string]EventData{}
	lastFP := map[string]string{}
	ids := map[string]bool{}
	dups := 0
	for _, ev := range events {
		if ids[ev.ID] {
			t.Errorf("event id %s published twice", ev.ID)
		}
		ids[ev.ID] = true
		if ev.Type == TypeDeadlineApproaching || ev.Type == TypeNotified {
			continue
		}
		d, err := ev.DisputeData()
		if err != nil {
			t.Fatalf("event data: %v", err)
		}
		fp := fingerprint(d.Record, d.Raw)
		if lastFP[ev.Subject] == fp {
			dups++
			if dups <= 5 {
				t.Errorf("dispute %s: two %s/%s events for the same state", ev.Subject, ev.Type, fp)
			}
		}
		lastFP[ev.Subject] = fp
		last[ev.Subject] = d
	}
	wrong := 0
	all := h.sb.Disputes()
	for _, r := range all {
		want := truth(t, r)
		got, ok := last[want.DisputeID]
		switch {
		case !ok:
			wrong++
			if wrong <= 5 {
				t.Errorf("dispute %s: no event", want.DisputeID)
			}
		case got.Record != want:
			wrong++
			if wrong <= 5 {
				t.Errorf("dispute %s: last event %+v, sandbox %+v", want.DisputeID, got.Record, want)
			}
		case !bytes.Equal(canonicalJSON(got.Raw), canonicalJSON(rawOf(t, r))):
			wrong++
			if wrong <= 5 {
				t.Errorf("dispute %s: last event's raw %s, sandbox %s", want.DisputeID, got.Raw, rawOf(t, r))
			}
		}
	}
	if wrong > 0 || dups > 0 {
		t.Errorf("%d of %d disputes differ from the sandbox; %d duplicate states", wrong, len(all), dups)
	}
	if len(last) != len(all) {
		t.Errorf("events name %d disputes, the sandbox holds %d", len(last), len(all))
	}
}

var ceAttrName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// validateCloudEvent checks the CloudEvents 1.0 JSON format (spec sections
// 3.1 naming, 3.1.1 required attributes, 3.1.2 optional attributes, JSON
// format 3.) and the docs/contract.md section 2 profile of it.
func validateCloudEvent(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	str := func(name string) (string, error) {
		var s string
		if err := json.Unmarshal(m[name], &s); err != nil {
			return "", fmt.Errorf("%s: not a string", name)
		}
		return s, nil
	}
	for name := range m {
		if !ceAttrName.MatchString(name) {
			return fmt.Errorf("attribute name %q", name)
		}
		if name == "data" {
			continue
		}
		if _, err := str(name); err != nil {
			return err
		}
	}
	for _, name := range []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"} {
		if _, ok := m[name]; !ok {
			return fmt.Errorf("missing %s", name)
		}
	}
	for _, name := range []string{"id", "source", "type", "subject"} {
		if s, _ := str(name); s == "" {
			return fmt.Errorf("%s is empty", name)
		}
	}
	if v, _ := str("specversion"); v != "1.0" {
		return fmt.Errorf("specversion %q", v)
	}
	if v, _ := str("datacontenttype"); v != "application/json" {
		return fmt.Errorf("datacontenttype %q", v)
	}
	src, _ := str("source")
	if _, err := url.Parse(src); err != nil {
		return fmt.Errorf("source is not a URI-reference: %w", err)
	}
	ts, _ := str("time")
	if _, err := time.Parse(time.RFC3339, ts); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	typ, _ := str("type")
	var data map[string]json.RawMessage
	if err := json.Unmarshal(m["data"], &data); err != nil {
		return fmt.Errorf("data is not a JSON object")
	}
	want := []string{"disputeId", "paymentId", "orderId", "status", "appealStatus", "closeStatus", "reason", "amount", "createdAt", "listType", "raw"}
	if typ == TypeNotified {
		want = []string{"disputeId", "notificationType", "notification"}
	}
	for _, f := range want {
		if _, ok := data[f]; !ok {
			return fmt.Errorf("data.%s missing", f)
		}
	}
	if _, ok := data["changes"]; ok != (typ == TypeUpdated) && typ != TypeOpened && typ != TypeClosed {
		return fmt.Errorf("data.changes present=%v on %s", ok, typ)
	}
	return nil
}
