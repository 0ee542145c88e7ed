package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fakeHandler stands in for a provider handler: it records the effects it
// applied per disputeRequestId and the concurrency per dispute, and fails as
// told. (Provider HTTP behaviour is tested in the handler packages.)
type fakeHandler struct {
	mu          sync.Mutex
	effects     map[string]int
	calls       map[string]int
	inflight    map[string]int
	maxInflight int
	// behave decides the answer of one call; nil means success.
	behave func(call *handlers.Call, n int) error
	hold   time.Duration
}

func newFake() *fakeHandler {
	return &fakeHandler{effects: map[string]int{}, calls: map[string]int{}, inflight: map[string]int{}}
}

func (f *fakeHandler) Validate(cmd *handlers.Command) error {
	if len(cmd.Params) > 0 {
		var p map[string]any
		if err := json.Unmarshal(cmd.Params, &p); err != nil {
			return handlers.Invalid("params", "must be an object")
		}
		if v, ok := p["reject"]; ok {
			return &handlers.RuleError{Code: fmt.Sprint(v), Message: "rule broken"}
		}
	}
	return nil
}

func (f *fakeHandler) Apply(ctx context.Context, call *handlers.Call) (*handlers.Response, error) {
	id := call.Command.DisputeRequestID
	f.mu.Lock()
	f.calls[id]++
	n := f.calls[id]
	f.inflight[call.Command.DisputeID]++
	if f.inflight[call.Command.DisputeID] > f.maxInflight {
		f.maxInflight = f.inflight[call.Command.DisputeID]
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[call.Command.DisputeID]--
		f.mu.Unlock()
	}()
	if f.hold > 0 {
		select {
		case <-time.After(f.hold):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var err error
	if f.behave != nil {
		err = f.behave(call, n)
	}
	if err == nil || errors.Is(err, errApplyThenFail) {
		f.mu.Lock()
		// Like a provider with an idempotency key: a repeat applies nothing.
		if f.effects[id] == 0 || !call.Recover {
			f.effects[id]++
		}
		f.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return &handlers.Response{Code: "SUCCESS", Message: "success", Body: json.RawMessage(`{"result":{"resultCode":"SUCCESS"}}`)}, nil
}

var errApplyThenFail = errors.New("applied, then the answer was lost")

func (f *fakeHandler) effectsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.effects[id]
}

func (f *fakeHandler) callsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

type bench struct {
	env     *testenv.Env
	fake    *fakeHandler
	metrics *metrics.Metrics
	results chan worker.Result
	dlq     chan *nats.Msg
}

// setup starts n workers over one fake handler registered for alipay.accept_dispute.
func setup(t *testing.T, n int, mutate func(*worker.Config)) *bench {
	t.Helper()
	env := testenv.New(t)
	env.Setup(t, topology.Options{AckWait: 5 * time.Second, MaxDeliver: 20})
	b := &bench{env: env, fake: newFake(), metrics: metrics.New(), results: make(chan worker.Result, 10000), dlq: make(chan *nats.Msg, 10000)}
	mux := handlers.NewMux()
	mux.Register("alipay", "accept_dispute", b.fake)
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	// Cleanups run last-in first-out: stop the workers before testenv
	// deletes their streams.
	t.Cleanup(func() { cancel(); running.Wait() })
	for i := 0; i < n; i++ {
		cfg := worker.Config{
			JS: env.JS, Redis: env.Redis, Names: env.Names, Mux: mux, Concurrency: 4,
			BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
			Lease: 2 * time.Second, MaxAttempts: 5, Metrics: b.metrics, Instance: fmt.Sprintf("w%d", i),
		}
		if mutate != nil {
			mutate(&cfg)
		}
		w, err := worker.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		running.Add(1)
		go func() { defer running.Done(); _ = w.Run(ctx) }()
	}
	b.follow(t, env.Names.ResultsStream(), func(m jetstream.Msg) {
		var r worker.Result
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			t.Errorf("result is not JSON: %v", err)
		}
		b.results <- r
	})
	b.follow(t, env.Names.DLQStream(), func(m jetstream.Msg) {
		b.dlq <- &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()}
	})
	return b
}

func (b *bench) follow(t *testing.T, stream string, f func(jetstream.Msg)) {
	ctx := testenv.Context(t)
	c, err := b.env.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Consume(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
}

func (b *bench) publish(t *testing.T, subject string, body []byte, msgID string) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = body
	if msgID != "" {
		m.Header.Set("Nats-Msg-Id", msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.env.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func (b *bench) command(t *testing.T, id, dispute, params string) {
	t.Helper()
	body := fmt.Sprintf(`{"disputeRequestId":%q,"disputeId":%q,"params":%s,"requestedBy":"test"}`, id, dispute, params)
	b.publish(t, b.env.Names.ActionSubject("alipay", "accept_dispute"), []byte(body), "")
}

// awaitResults collects n results or fails after the timeout.
func (b *bench) awaitResults(t *testing.T, n int, timeout time.Duration) []worker.Result {
	t.Helper()
	var out []worker.Result
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case r := <-b.results:
			out = append(out, r)
		case <-deadline:
			t.Fatalf("got %d of %d results after %v: %+v", len(out), n, timeout, out)
		}
	}
	return out
}

// assertQuiet checks that no further result arrives for a while; used only
// after the expected results are in, to catch extras.
func (b *bench) assertQuiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-b.results:
		t.Fatalf("unexpected extra result: %+v", r)
	case <-time.After(d):
	}
}
