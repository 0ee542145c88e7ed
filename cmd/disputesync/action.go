package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
Nats-Msg-Id set to its disputeRequestId, waits for its result and prints it.

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
		if err := attach(ctx, js, names, provider, cmd, f.attach); err != nil {
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
	if f.dryRun {
		fmt.Fprintf(e.stdout, "would publish to %s (Nats-Msg-Id: %s):\n", subject, cmd.DisputeRequestID)
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
	// Listen before publishing, so the result cannot slip past, and only to
	// results stored after this point: an earlier command with the same
	// disputeRequestId (other content, published without Nats-Msg-Id) has
	// its own result there, which is not this command's.
	rs, err := js.Stream(ctx, names.ResultsStream())
	if err != nil {
		return fmt.Errorf("results stream %s: %w (run disputesync setup)", names.ResultsStream(), err)
	}
	info, err := rs.Info(ctx)
	if err != nil {
		return fmt.Errorf("results stream %s: %w", names.ResultsStream(), err)
	}
	results, stop, err := watchResult(ctx, js, names, provider, action, cmd.DisputeRequestID, info.State.LastSeq+1)
	if err != nil {
		return err
	}
	// A closure: stop may be replaced by a second watch below.
	defer func() { stop() }()
	start := time.Now()
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(worker.HeaderMsgID, cmd.DisputeRequestID)
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	if ack.Duplicate {
		fmt.Fprintf(e.stderr, "warning: JetStream dropped this publish as a duplicate: a command with disputeRequestId %s was published within the duplicate window; waiting for that command's result\n", cmd.DisputeRequestID)
		stop()
		results, stop, err = watchResult(ctx, js, names, provider, action, cmd.DisputeRequestID, 0)
		if err != nil {
			return err
		}
	}
	var res worker.Result
	select {
	case res = <-results:
	case <-time.After(f.wait):
		return &outcomeError{exitTimeout, fmt.Sprintf("no result for %s within %s (the command is queued; its result will be on %s)", cmd.DisputeRequestID, f.wait, names.ResultSubject(provider, action))}
	case <-ctx.Done():
		return ctx.Err()
	}
	printResult(e.stdout, res, time.Since(start), f.json)
	switch res.Outcome {
	case worker.Succeeded:
		return nil
	case worker.Rejected:
		return &outcomeError{exitRejected, ""}
	default:
		return &outcomeError{exitFailed, ""}
	}
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
// field where the provider expects the attachment.
func attach(ctx context.Context, js jetstream.JetStream, names topology.Names, provider string, cmd *handlers.Command, path string) error {
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
	base := filepath.Base(path)
	ext := strings.ToLower(strings.TrimPrefix(filepath.Ext(base), "."))
	switch provider {
	case "alipay":
		params["disputeEvidenceRef"] = ref
		if _, ok := params["disputeEvidenceFormat"]; !ok && ext != "" {
			params["disputeEvidenceFormat"] = strings.ToUpper(ext)
		}
	case "alipayplus":
		docs, _ := params["supportingDocumentation"].([]any)
		params["supportingDocumentation"] = append(docs, map[string]any{
			"attachmentType": "SUPPORTING_DOCUMENTATION", "attachmentName": base, "contentType": ext, "contentRef": ref,
		})
	case "ingenico":
		params["contentRef"] = ref
		if _, ok := params["fileName"]; !ok {
			params["fileName"] = base
		}
		if _, ok := params["fileType"]; !ok {
			params["fileType"] = mimeOf(ext)
		}
	case "disputeapi":
		params["contentRef"] = ref
		if _, ok := params["file_name"]; !ok {
			params["file_name"] = base
		}
		if _, ok := params["content_type"]; !ok {
			params["content_type"] = ext
		}
	}
	cmd.Params, _ = json.Marshal(params)
	return nil
}

func mimeOf(ext string) string {
	switch ext {
	case "pdf":
		return "application/pdf"
	case "jpg", "jpeg":
		return "image/jpeg"
	case "png":
		return "image/png"
	case "gif":
		return "image/gif"
	}
	return "application/octet-stream"
}

// watchResult follows the results of one action from a stream sequence
// (0: from the beginning) and delivers the first whose Dispute-Request-Id is
// id. A sequence, unlike a start time, neither depends on the clocks of this
// machine and the server agreeing nor reaches back to older results.
func watchResult(ctx context.Context, js jetstream.JetStream, names topology.Names, provider, action, id string, fromSeq uint64) (<-chan worker.Result, func(), error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{names.ResultSubject(provider, action)}}
	if fromSeq > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = fromSeq
	}
	cons, err := js.OrderedConsumer(ctx, names.ResultsStream(), cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("results stream %s: %w (run disputesync setup)", names.ResultsStream(), err)
	}
	out := make(chan worker.Result, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if m.Headers().Get(worker.HeaderDisputeRequestID) != id {
			return
		}
		var r worker.Result
		if json.Unmarshal(m.Data(), &r) == nil {
			select {
			case out <- r:
			default:
			}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return out, cc.Stop, nil
}

func printResult(w io.Writer, r worker.Result, took time.Duration, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(r)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	replayed := ""
	if r.Replayed {
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
