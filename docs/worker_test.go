package docs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// validatingHandler validates with the provider's real code and stands in
// for the provider call (provider HTTP is tested in the handler packages):
// a command whose requestedBy is "fail" is refused for good.
type validatingHandler struct{ real handlers.Handler }

func (h validatingHandler) Validate(cmd *handlers.Command) error { return h.real.Validate(cmd) }

func (h validatingHandler) Apply(_ context.Context, call *handlers.Call) (*handlers.Response, error) {
	if call.Command.RequestedBy == "fail" {
		return nil, handlers.Permanent(&handlers.ProviderError{Code: "NOT_ALLOW_IN_CURRENT_STATUS", Message: "refused", HTTPStatus: 200,
			Body: []byte(`{"result":{"resultCode":"NOT_ALLOW_IN_CURRENT_STATUS","resultStatus":"F"}}`)})
	}
	return &handlers.Response{Code: "SUCCESS", Message: "success", Body: json.RawMessage(`{"result":{"resultCode":"SUCCESS","resultStatus":"S"}}`)}, nil
}

// TestWorkerMessagesMatchTheSchemas runs the real worker over real NATS and
// Redis, publishes every schema's example command and a set of bad ones,
// and validates every result and dead letter the worker wrote, with their
// subjects and headers, against the documents.
func TestWorkerMessagesMatchTheSchemas(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	env.Setup(t, topology.Options{AckWait: 5 * time.Second, MaxDeliver: 5})
	real := validators()
	mux := handlers.NewMux()
	for _, p := range handlers.Providers() {
		for _, a := range handlers.Actions(p) {
			h, _ := real.Handler(p, a)
			mux.Register(p, a, validatingHandler{real: h})
		}
	}
	w, err := worker.New(worker.Config{JS: env.JS, Redis: env.Redis, Names: env.Names, Mux: mux, Concurrency: 4,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Add(1)
	go func() { defer running.Done(); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); running.Wait() })

	type published struct{ subject, body, msgID string }
	var pubs []published
	// Every example command of every action, valid by TestExamples.
	for _, p := range handlers.Providers() {
		for _, a := range handlers.Actions(p) {
			raw, err := schemaFiles.ReadFile("schemas/" + CommandSchema(p, a) + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var doc struct{ Examples []map[string]any }
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			for i, ex := range doc.Examples {
				ex["disputeRequestId"] = fmt.Sprintf("%s-%s-%d", p, a, i)
				b, _ := json.Marshal(ex)
				pubs = append(pubs, published{env.Names.ActionSubject(p, a), string(b), worker.CommandMsgID(ex["disputeRequestId"].(string), b)})
			}
		}
	}
	good := len(pubs)
	subj := env.Names.ActionSubject
	pubs = append(pubs,
		// A repeat of the first command without Nats-Msg-Id (as after the
		// duplicate window): a replayed result.
		published{pubs[0].subject, pubs[0].body, ""},
		// A provider refusal: failed.
		published{subj("alipay", "accept_dispute"), cmd("refused-1", "D1", ""), "refused-1"},
		// Rejections, each with a dead letter.
		published{subj("disputeapi", "submit_defense"), cmd("bad-1", "D1", `{"comment":"  "}`), "bad-1"},
		published{subj("alipayplus", "initiate_escalation"), esc("", set("disputeReasonCodeDescription", "AMOUNT_DIFFER")), "bad-2"},
		published{subj("ingenico", "upload_file"), cmd("bad-3", "D1", `{"fileName":"a.pdf","fileType":"pdf","content":"QQ=="}`), "bad-3"},
		published{subj("alipay", "accept_dispute"), `{"disputeRequestId":`, ""},
		published{subj("paypal", "refund"), cmd("bad-5", "D1", ""), "bad-5"},
		published{env.Names.Prefix() + ".actions.nodots", cmd("bad-6", "D1", ""), "bad-6"},
	)
	pubs[good+1].body = strings.Replace(pubs[good+1].body, `}`, `,"requestedBy":"fail"}`, 1)
	pubs[good+1].msgID = worker.CommandMsgID("refused-1", []byte(pubs[good+1].body))
	const rejections = 6
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	sequences := map[string]bool{}
	for i, p := range pubs {
		// The commands too: the first good+2 are valid, the rest are not.
		h := map[string][]string{}
		if p.msgID != "" {
			h["Nats-Msg-Id"] = []string{p.msgID}
		}
		if err := ValidateMessage(env.Names.Prefix(), p.subject, h, []byte(p.body)); (err == nil) != (i < good+2) {
			t.Errorf("command %d on %s: %v", i, p.subject, err)
		}
		m := nats.NewMsg(p.subject)
		m.Data = []byte(p.body)
		if p.msgID != "" {
			m.Header.Set("Nats-Msg-Id", p.msgID)
		}
		ack, err := env.JS.PublishMsg(pctx, m)
		if err != nil {
			t.Fatalf("publish %s: %v", p.subject, err)
		}
		if ack.Duplicate {
			t.Fatalf("command %d on %s was dropped as a duplicate", i, p.subject)
		}
		sequences[strconv.FormatUint(ack.Sequence, 10)] = true
	}

	results := collect(t, env, env.Names.ResultsStream(), len(pubs))
	deadLetters := collect(t, env, env.Names.DLQStream(), rejections)
	outcomes := map[string]int{}
	replayed := 0
	for _, m := range append(results, deadLetters...) {
		if err := ValidateMessage(env.Names.Prefix(), m.Subject, m.Header, m.Data); err != nil {
			t.Errorf("%s: %v\n%s", m.Subject, err, m.Data)
		}
	}
	// Each result names the command it answers, and each command has one.
	answered := map[string]bool{}
	for _, m := range results {
		seq := m.Header.Get(worker.HeaderCommandSequence)
		if !sequences[seq] || answered[seq] {
			t.Errorf("result %s names command sequence %q: not a published command's, or answered twice", m.Data, seq)
		}
		answered[seq] = true
	}
	for _, m := range results {
		var r worker.Result
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		outcomes[r.Outcome]++
		if r.Replayed {
			replayed++
		}
	}
	if outcomes[worker.Succeeded] != good+1 || outcomes[worker.Failed] != 1 || outcomes[worker.Rejected] != rejections || replayed != 1 {
		t.Errorf("outcomes %v, %d replayed; want %d succeeded (one replayed), 1 failed, %d rejected", outcomes, replayed, good+1, rejections)
	}
	t.Logf("validated %d results and %d dead letters written by the worker; counts so far: %v", len(results), len(deadLetters), Validated())
}

// collect reads n messages from a stream, failing after a deadline.
func collect(t *testing.T, env *testenv.Env, stream string, n int) []*nats.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := env.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	for len(out) < n {
		batch, err := c.Fetch(n-len(out), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %d of %d messages before the deadline", stream, len(out), n)
		}
	}
	// Nothing more may follow: every command has exactly one result.
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond))
	if err == nil {
		for m := range batch.Messages() {
			t.Errorf("%s: unexpected extra message on %s: %s", stream, m.Subject(), m.Data())
		}
	}
	return out
}
