package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/worker"
)

// Exit statuses of "disputesync action", one per outcome.
const (
	exitFailed   = 3
	exitRejected = 4
	exitTimeout  = 5
)

type outcomeError struct {
	code int
	msg  string
}

func (e *outcomeError) Error() string { return e.msg }
func (e *outcomeError) ExitCode() int { return e.code }

type actionFlags struct {
	disputeID   string
	requestID   string
	data        string
	file        string
	attach      string
	requestedBy string
	merchant    string
	wait        time.Duration
	json        bool
	dryRun      bool
}

func actionCmd() *subcommand {
	var f actionFlags
	return &subcommand{
		name:     "action",
		synopsis: "action PROVIDER ACTION [flags] [param=value ...]",
		summary:  "publish an operator's command, wait for its result and print it",
		detail: `Builds an action command (docs/contract.md section 2) from the flags, validates it with
the worker's own rules, publishes it to <prefix>.actions.PROVIDER.ACTION with
Nats-Msg-Id <disputeRequestId>:<first 16 hex digits of the SHA-256 of the
body>, waits for the result of that very publish (the result whose header
Command-Sequence is the command's stream sequence) and prints it.

The same --request-id with the same command again: within the actions
stream's duplicate window JetStream drops the publish, and the result of the
identical command already published is printed, labelled as such, with
"replayed": true (nothing is sent again); after the window the worker
answers it with its stored result, replayed. The same --request-id with a
different dispute, action or params: the worker rejects it with
REPEAT_REQ_INCONSISTENT (exit 4) and nothing reaches the provider.

params come from --data (a JSON object), --file (a JSON file holding either the
params or a whole command) and param=value arguments, applied in that order;
a dotted name builds nested objects: escalationAmount.value=100.
--attach FILE uploads the file to the evidence bucket and puts a contentRef to
it where the provider expects the attachment's content.

Actions: alipay accept_dispute | supply_defense_document;
alipayplus initiate_escalation; ingenico upload_file | submit_dispute |
cancel_dispute; disputeapi abandon | upload_document | remove_document |
submit_defense.

Exit status: 0 succeeded, 3 failed, 4 rejected (locally or by the worker),
5 no result within --wait, 1 any other error, 2 bad usage.`,
		flags: func(o *options, c *config) {
			o.str(&f.disputeID, "dispute-id", "ID", "", "the provider's dispute id")
			o.str(&f.requestID, "request-id", "ID", "", "the disputeRequestId (idempotency key); default: a new unique id, printed before sending")
			o.str(&f.data, "data", "JSON", "", "params as a JSON object")
			o.str(&f.file, "file", "PATH", "", "a JSON file with the params, or a whole command")
			o.str(&f.attach, "attach", "PATH", "", "evidence file to upload and reference from the command")
			o.str(&f.requestedBy, "requested-by", "WHO", "", "copied to the result; default $USER")
			o.str(&f.merchant, "merchant", "ID", "", "merchant of the disputed payment (Alipay+ Special Merchant rules)")
			o.duration(&f.wait, "wait", 60*time.Second, "how long to wait for the result")
			o.boolean(&f.json, "json", "print the result as JSON")
			o.boolean(&f.dryRun, "dry-run", "validate and print the command without publishing it")
			o.connectionFlags(c)
			o.providerFlags(c)
			o.logFlags(c)
		},
		run: func(ctx context.Context, e env, c *config, _ *options, args []string) error {
			return runAction(ctx, e, c, f, args)
		},
	}
}

func runAction(ctx context.Context, e env, c *config, f actionFlags, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: give PROVIDER and ACTION, e.g. disputesync action alipay accept_dispute --dispute-id ID", errUsage)
	}
	provider, action := args[0], args[1]
	if !handlers.Known(provider, action) {
		var known []string
		for _, p := range handlers.Providers() {
			known = append(known, p+" "+strings.Join(handlers.Actions(p), "|"))
		}
		return fmt.Errorf("%w: %s %s is not an action; actions are: %s", errUsage, provider, action, strings.Join(known, "; "))
	}
	cmd, err := buildCommand(e, f, args[2:])
	if err != nil {
		return err
	}
	names, _ := topology.New(c.Prefix)

	var nc *nats.Conn
	var js jetstream.JetStream
	connect := func() error {
		if nc != nil {
			return nil
		}
		log := newLogger(c, e)
		nc, js, err = connectNATS(c, log, "disputesync-action")
		return err
	}
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	if f.attach != "" && !f.dryRun {
		if err := connect(); err != nil {
			return err
		}
		if err := attach(ctx, js, names, provider, action, cmd, f.attach); err != nil {
			return err
		}
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	// The worker's own validation, before anything is sent.
	if _, _, err := worker.DecodeCommand(body); err != nil {
		return &outcomeError{exitRejected, "refused before publishing: " + err.Error()}
	}
	h, _ := validationMux().Handler(provider, action)
	if err := h.Validate(cmd); err != nil {
		return &outcomeError{exitRejected, "refused before publishing: " + err.Error()}
	}
	subject := names.ActionSubject(provider, action)
	msgID := worker.CommandMsgID(cmd.DisputeRequestID, body)
	if f.dryRun {
		fmt.Fprintf(e.stdout, "would publish to %s (Nats-Msg-Id: %s):\n", subject, msgID)
		pretty, _ := json.MarshalIndent(cmd, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n\n", truncateForDisplay(pretty))
		return dryRun(ctx, e, c, provider, action, cmd)
	}
	if f.requestID == "" {
		fmt.Fprintf(e.stderr, "disputeRequestId: %s\n", cmd.DisputeRequestID)
	}
	if err := connect(); err != nil {
		return err
	}
	p := &publisher{js: js, names: names, provider: provider, action: action, id: cmd.DisputeRequestID, body: body, stderr: e.stderr}
	start := time.Now()
	res, earlier, err := p.run(ctx, msgID, f.wait)
	if err != nil {
		return err
	}
	printResult(e.stdout, res, time.Since(start), f.json, earlier)
	switch res.Outcome {
	case worker.Succeeded:
		return nil
	case worker.Rejected:
		return &outcomeError{exitRejected, ""}
	default:
		return &outcomeError{exitFailed, ""}
	}
}

// publisher publishes one command and finds the result that answers that
// very publish: the worker names the command's stream sequence on every
// result (header Command-Sequence), and the PubAck gives this publish's.
// Results are never matched by disputeRequestId alone: another command may
// carry the same id (a reuse, rejected by the worker), and its result is not
// this command's answer.
type publisher struct {
	js               jetstream.JetStream
	names            topology.Names
	provider, action string
	id               string
	body             []byte
	stderr           io.Writer
}

// run publishes with msgID and waits up to wait for the answer. earlier
// reports that JetStream dropped the publish as a duplicate and res is the
// result of the identical command already in the stream.
func (p *publisher) run(ctx context.Context, msgID string, wait time.Duration) (res worker.Result, earlier bool, err error) {
	// Only waiting for the result is bounded by --wait; publishing and
	// reading the streams are bounded by ctx and the client's own timeouts,
	// so that a short --wait never leaves it unknown whether the command
	// was stored.
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	seq, dup, res, err := p.publishAndWait(ctx, waitCtx, msgID)
	if err != nil || !dup {
		return res, false, p.timeout(err, seq, wait, false)
	}
	// JetStream dropped the publish: a command with the same
	// disputeRequestId and the same body is in the stream as seq. Its
	// result is the answer, unless it was published on another subject: the
	// header covers the body only, and the body does not name the action.
	subject := p.names.ActionSubject(p.provider, p.action)
	origSubject, queued := p.queuedSubject(ctx, seq)
	if !queued || origSubject == subject {
		var got *resultMsg
		got, err = p.findEarlier(ctx, waitCtx, seq)
		if err != nil {
			return res, false, p.timeout(err, seq, wait, true)
		}
		origSubject = p.names.ActionSubject(got.res.Provider, got.res.Action)
		if origSubject == subject {
			fmt.Fprintf(p.stderr, "JetStream dropped this publish as a duplicate: an identical command (disputeRequestId %s, the same body, Nats-Msg-Id %s) is %s sequence %d; nothing was sent again. Its result:\n",
				p.id, msgID, p.names.ActionsStream(), seq)
			res = got.res
			res.Replayed = true // this publish applied nothing
			return res, true, nil
		}
	}
	// The same body for another action: not this command. Publish it
	// without Nats-Msg-Id, so that the worker sees the reuse and answers it
	// (REPEAT_REQ_INCONSISTENT, with a dead letter) instead of JetStream
	// dropping it silently.
	fmt.Fprintf(p.stderr, "JetStream dropped this publish because the same body with disputeRequestId %s was published as another command (%s, sequence %d); publishing it again without Nats-Msg-Id so that the worker answers it\n",
		p.id, origSubject, seq)
	seq, _, res, err = p.publishAndWait(ctx, waitCtx, "")
	return res, false, p.timeout(err, seq, wait, false)
}

// publishAndWait publishes the command (with Nats-Msg-Id msgID, if not
// empty) and, unless JetStream drops it as a duplicate, waits until waitCtx
// ends for the result naming its stream sequence.
func (p *publisher) publishAndWait(ctx, waitCtx context.Context, msgID string) (seq uint64, dup bool, res worker.Result, err error) {
	// Listen before publishing, so that the result cannot slip past, and
	// only to results stored from now on.
	rs, err := p.js.Stream(ctx, p.names.ResultsStream())
	if err != nil {
		return 0, false, res, fmt.Errorf("results stream %s: %w (run disputesync setup)", p.names.ResultsStream(), err)
	}
	info, err := rs.Info(ctx)
	if err != nil {
		return 0, false, res, fmt.Errorf("results stream %s: %w", p.names.ResultsStream(), err)
	}
	results, stop, err := watchResults(ctx, p.js, p.names, p.names.ResultSubject(p.provider, p.action), p.id,
		jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: info.State.LastSeq + 1})
	if err != nil {
		return 0, false, res, err
	}
	defer stop()
	subject := p.names.ActionSubject(p.provider, p.action)
	m := nats.NewMsg(subject)
	m.Data = p.body
	if msgID != "" {
		m.Header.Set(worker.HeaderMsgID, msgID)
	}
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, false, res, fmt.Errorf("publish %s: %w", subject, err)
	}
	if ack.Duplicate {
		return ack.Sequence, true, res, nil
	}
	got, err := awaitSequence(waitCtx, results, ack.Sequence)
	if err != nil {
		return ack.Sequence, false, res, err
	}
	return ack.Sequence, false, got.res, nil
}

// queuedSubject reports the subject of command seq if it is still in the
// actions stream (work-queue retention: the worker removes what it has
// answered).
func (p *publisher) queuedSubject(ctx context.Context, seq uint64) (string, bool) {
	s, err := p.js.Stream(ctx, p.names.ActionsStream())
	if err != nil {
		return "", false
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return "", false
	}
	return m.Subject, true
}

// findEarlier finds the result of command seq, published within the actions
// stream's duplicate window (JetStream reported it as a duplicate, so it
// was stored no longer ago than that), on any action's results subject.
func (p *publisher) findEarlier(ctx, waitCtx context.Context, seq uint64) (*resultMsg, error) {
	s, err := p.js.Stream(ctx, p.names.ActionsStream())
	if err != nil {
		return nil, fmt.Errorf("actions stream %s: %w", p.names.ActionsStream(), err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("actions stream %s: %w", p.names.ActionsStream(), err)
	}
	// The server's clock, which also timed the window; the margin covers
	// the server's late purging of expired ids and clocks of a cluster.
	now := info.TimeStamp
	if now.IsZero() {
		now = time.Now()
	}
	from := now.Add(-info.Config.Duplicates - time.Minute)
	results, stop, err := watchResults(ctx, p.js, p.names, p.names.ResultsAll(), p.id,
		jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from})
	if err != nil {
		return nil, err
	}
	defer stop()
	return awaitSequence(waitCtx, results, seq)
}

// timeout turns running out of --wait into exit status 5 with what is
// known of command seq; other errors pass unchanged.
func (p *publisher) timeout(err error, seq uint64, wait time.Duration, identical bool) error {
	if !errors.Is(err, context.DeadlineExceeded) || seq == 0 {
		return err
	}
	what := fmt.Sprintf("this command (%s sequence %d)", p.names.ActionsStream(), seq)
	if identical {
		what = fmt.Sprintf("the command published earlier with the same id and body, of which JetStream dropped this publish as a duplicate (%s sequence %d)", p.names.ActionsStream(), seq)
	}
	// A fresh context: the command's own ran out.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	state := "the worker has taken it but not answered yet"
	if _, queued := p.queuedSubject(ctx, seq); queued {
		state = "it is queued, waiting for a worker"
	}
	return &outcomeError{exitTimeout, fmt.Sprintf("no result for %s within %s: %s is not answered yet (%s); its result will be on %s with header %s: %d",
		p.id, wait, what, state, p.names.ResultSubject(p.provider, p.action), worker.HeaderCommandSequence, seq)}
}

func buildCommand(e env, f actionFlags, pairs []string) (*handlers.Command, error) {
	cmd := &handlers.Command{DisputeRequestID: f.requestID, DisputeID: f.disputeID, RequestedBy: f.requestedBy, Merchant: f.merchant}
	params := map[string]any{}
	if f.data != "" {
		if err := decodeNumbers([]byte(f.data), &params); err != nil {
			return nil, fmt.Errorf("%w: --data must be a JSON object: %v", errUsage, err)
		}
	}
	if f.file != "" {
		b, err := os.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("%w: --file: %v", errUsage, err)
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(b, &probe); err != nil {
			return nil, fmt.Errorf("%w: --file %s must hold a JSON object: %v", errUsage, f.file, err)
		}
		// A file holding a disputeRequestId is a whole command; otherwise
		// it holds the params.
		if _, whole := probe["disputeRequestId"]; whole {
			var fc handlers.Command
			if err := json.Unmarshal(b, &fc); err != nil {
				return nil, fmt.Errorf("%w: --file %s: %v", errUsage, f.file, err)
			}
			if cmd.DisputeRequestID == "" {
				cmd.DisputeRequestID = fc.DisputeRequestID
			}
			if cmd.DisputeID == "" {
				cmd.DisputeID = fc.DisputeID
			}
			if cmd.RequestedBy == "" {
				cmd.RequestedBy = fc.RequestedBy
			}
			if cmd.Merchant == "" {
				cmd.Merchant = fc.Merchant
			}
			b = fc.Params
			if len(b) == 0 {
				b = []byte("{}")
			}
		}
		var fp map[string]any
		if err := decodeNumbers(b, &fp); err != nil {
			return nil, fmt.Errorf("%w: --file %s: params must be a JSON object", errUsage, f.file)
		}
		for k, v := range fp {
			params[k] = v
		}
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q is not param=value", errUsage, p)
		}
		setPath(params, strings.Split(k, "."), v)
	}
	if len(params) > 0 {
		cmd.Params, _ = json.Marshal(params)
	}
	if cmd.DisputeRequestID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cmd.DisputeRequestID = "ops-" + time.Now().UTC().Format("2006-01-02-150405") + "-" + hex.EncodeToString(b)
	}
	if cmd.RequestedBy == "" {
		cmd.RequestedBy = e.getenv("USER")
	}
	return cmd, nil
}

// decodeNumbers keeps numbers exactly as written (an amount above 2^53
// must not be rounded on its way through the CLI).
func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

func setPath(m map[string]any, path []string, v string) {
	if len(path) == 1 {
		m[path[0]] = v
		return
	}
	next, ok := m[path[0]].(map[string]any)
	if !ok {
		next = map[string]any{}
		m[path[0]] = next
	}
	setPath(next, path[1:], v)
}

// attach uploads a file to the evidence bucket and references it from the
// field where the provider expects the attachment (the provider package's
// handlers.EvidencePlacer knows where).
func attach(ctx context.Context, js jetstream.JetStream, names topology.Names, provider, action string, cmd *handlers.Command, path string) error {
	h, _ := validationMux().Handler(provider, action)
	placer, ok := h.(handlers.EvidencePlacer)
	if !ok {
		return fmt.Errorf("%w: --attach: %s %s takes no attachment", errUsage, provider, action)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: --attach: %v", errUsage, err)
	}
	if len(data) > worker.MaxEvidenceBytes {
		return &outcomeError{exitRejected, fmt.Sprintf("refused before publishing: --attach %s is %d bytes, more than the %d a provider accepts", path, len(data), worker.MaxEvidenceBytes)}
	}
	store, err := js.ObjectStore(ctx, names.EvidenceBucket())
	if err != nil {
		return fmt.Errorf("evidence bucket %s: %w (run disputesync setup)", names.EvidenceBucket(), err)
	}
	name := cmd.DisputeRequestID + "/" + filepath.Base(path)
	info, err := store.PutBytes(ctx, name, data)
	if err != nil {
		return fmt.Errorf("upload %s: %w", path, err)
	}
	ref := handlers.ContentRef{Name: info.Name, Digest: info.Digest, Size: int64(info.Size)}
	params := map[string]any{}
	if len(cmd.Params) > 0 {
		_ = json.Unmarshal(cmd.Params, &params)
	}
	placer.PlaceEvidence(params, ref, filepath.Base(path))
	cmd.Params, _ = json.Marshal(params)
	return nil
}

// resultMsg is a result read from the results stream.
type resultMsg struct {
	res     worker.Result
	subject string
	cmdSeq  uint64 // the command it answers (header Command-Sequence)
}

// watchResults follows the results stream on filter from the position cfg
// gives, and delivers every result whose Dispute-Request-Id is id. A start
// sequence, unlike a start time, neither depends on clocks nor reaches back
// to older results.
func watchResults(ctx context.Context, js jetstream.JetStream, names topology.Names, filter, id string, cfg jetstream.OrderedConsumerConfig) (<-chan resultMsg, func(), error) {
	cfg.FilterSubjects = []string{filter}
	cons, err := js.OrderedConsumer(ctx, names.ResultsStream(), cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("results stream %s: %w (run disputesync setup)", names.ResultsStream(), err)
	}
	out := make(chan resultMsg, 16)
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if m.Headers().Get(worker.HeaderDisputeRequestID) != id {
			return
		}
		r := resultMsg{subject: m.Subject()}
		r.cmdSeq, _ = strconv.ParseUint(m.Headers().Get(worker.HeaderCommandSequence), 10, 64)
		if json.Unmarshal(m.Data(), &r.res) != nil {
			return
		}
		select {
		case out <- r:
		case <-done:
		}
	})
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return out, func() { once.Do(func() { close(done); cc.Stop() }) }, nil
}

// awaitSequence returns the first result that answers command seq.
func awaitSequence(ctx context.Context, results <-chan resultMsg, seq uint64) (*resultMsg, error) {
	for {
		select {
		case r := <-results:
			if r.cmdSeq == seq {
				return &r, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// printResult prints a result; earlier says it is the result of an
// identical command published before, not of this publish.
func printResult(w io.Writer, r worker.Result, took time.Duration, asJSON, earlier bool) {
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	replayed := ""
	switch {
	case earlier:
		replayed = " (the earlier identical command's result: this publish was a duplicate; nothing was sent again)"
	case r.Replayed:
		replayed = " (replayed: this command was already done; nothing was sent again)"
	}
	fmt.Fprintf(w, "%s %s %s: %s%s\n", r.DisputeRequestID, r.Provider, r.Action, strings.ToUpper(r.Outcome), replayed)
	fmt.Fprintf(w, "  code      %s\n", r.Code)
	if r.Message != "" {
		fmt.Fprintf(w, "  message   %s\n", r.Message)
	}
	if r.DisputeID != "" {
		fmt.Fprintf(w, "  dispute   %s\n", r.DisputeID)
	}
	fmt.Fprintf(w, "  attempts  %d\n  took      %s\n", r.Attempts, took.Round(time.Millisecond))
	if len(r.Response) > 0 {
		fmt.Fprintf(w, "  response  %s\n", truncateForDisplay(r.Response))
	}
}

func truncateForDisplay(b []byte) string {
	const n = 2000
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + fmt.Sprintf("... (%d bytes)", len(b))
}
