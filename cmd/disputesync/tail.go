package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/worker"
)

type tailFlags struct {
	results   bool
	dlq       bool
	noEvents  bool
	source    string
	typ       string
	disputeID string
	since     string
	json      bool
}

func tailCmd() *subcommand {
	var f tailFlags
	return &subcommand{
		name:     "tail",
		synopsis: "tail [flags]",
		summary:  "print dispute events (and results, dead letters) as they arrive",
		detail: `Follows <prefix>.events.> and prints one line per event (--json: the message
itself). --results and --dlq add action results and dead letters. Starts at
now, or at --since (a duration back, e.g. 1h, or an RFC 3339 time). Reading
never changes anything: tail uses ordered, ephemeral consumers.`,
		flags: func(o *options, c *config) {
			o.boolean(&f.results, "results", "also print action results")
			o.boolean(&f.dlq, "dlq", "also print dead letters")
			o.boolean(&f.noEvents, "no-events", "do not print events (with --results or --dlq)")
			o.str(&f.source, "source", "SOURCE", "", "only events of this source, e.g. disputeapi")
			o.str(&f.typ, "type", "TYPE", "", "only events of this type, e.g. dispute.updated")
			o.str(&f.disputeID, "dispute-id", "ID", "", "only messages about this dispute")
			o.str(&f.since, "since", "WHEN", "", "start this long ago (1h) or at this time (RFC 3339); default now")
			o.boolean(&f.json, "json", "print each message as JSON, one per line")
			o.connectionFlags(c)
			o.logFlags(c)
		},
		run: func(ctx context.Context, e env, c *config, _ *options, _ []string) error {
			return runTail(ctx, e, c, f)
		},
	}
}

func runTail(ctx context.Context, e env, c *config, f tailFlags) error {
	start, err := parseSince(f.since, time.Now())
	if err != nil {
		return fmt.Errorf("%w: --since: %v", errUsage, err)
	}
	log := newLogger(c, e)
	nc, js, err := connectNATS(c, log, "disputesync-tail")
	if err != nil {
		return err
	}
	defer nc.Close()
	names, _ := topology.New(c.Prefix)
	p := &printer{w: e.stdout, json: f.json, disputeID: f.disputeID}
	var stops []func()
	follow := func(stream, filter string, print func(jetstream.Msg)) error {
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy}
		if !start.IsZero() {
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
		}
		cons, err := js.OrderedConsumer(ctx, stream, cfg)
		if err != nil {
			return fmt.Errorf("stream %s: %w (run disputesync setup)", stream, err)
		}
		cc, err := cons.Consume(print)
		if err != nil {
			return err
		}
		stops = append(stops, cc.Stop)
		return nil
	}
	if !f.noEvents {
		filter := names.EventsAll()
		if f.source != "" {
			filter = names.EventSubject(f.source, ">")
		}
		typ := f.typ
		if err := follow(names.EventsStream(), filter, func(m jetstream.Msg) {
			if typ == "" || strings.HasSuffix(m.Subject(), "."+typ) {
				p.event(m)
			}
		}); err != nil {
			return err
		}
	}
	if f.results {
		if err := follow(names.ResultsStream(), names.ResultsAll(), p.result); err != nil {
			return err
		}
	}
	if f.dlq {
		if err := follow(names.DLQStream(), names.DLQAll(), p.deadLetter); err != nil {
			return err
		}
	}
	<-ctx.Done()
	for _, s := range stops {
		s()
	}
	return nil
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither a duration (1h) nor an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}

// printer writes one line per message, from several consumers at once.
type printer struct {
	mu        sync.Mutex
	w         io.Writer
	json      bool
	disputeID string
}

func (p *printer) line(dispute string, raw []byte, format string, args ...any) {
	if p.disputeID != "" && dispute != p.disputeID {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		fmt.Fprintf(p.w, "%s\n", raw)
		return
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *printer) event(m jetstream.Msg) {
	var ev struct {
		Type    string `json:"type"`
		Source  string `json:"source"`
		Subject string `json:"subject"`
		Time    string `json:"time"`
		Data    struct {
			Status        string   `json:"status"`
			CloseStatus   string   `json:"closeStatus"`
			ReplyDeadline string   `json:"replyDeadline"`
			Changes       []string `json:"changes"`
			Amount        struct {
				Currency, Value string
			} `json:"amount"`
			NotificationType string `json:"notificationType"`
		} `json:"data"`
	}
	_ = json.Unmarshal(m.Data(), &ev)
	detail := fmt.Sprintf("status=%s close=%s amount=%s %s deadline=%s", ev.Data.Status, ev.Data.CloseStatus, ev.Data.Amount.Value, ev.Data.Amount.Currency, ev.Data.ReplyDeadline)
	if len(ev.Data.Changes) > 0 {
		detail += " changes=" + strings.Join(ev.Data.Changes, ",")
	}
	if ev.Data.NotificationType != "" {
		detail = "notification=" + ev.Data.NotificationType
	}
	p.line(ev.Subject, m.Data(), "%s event  %-28s %-11s %s %s", stamp(m), ev.Type, ev.Source, ev.Subject, detail)
}

func (p *printer) result(m jetstream.Msg) {
	var r worker.Result
	_ = json.Unmarshal(m.Data(), &r)
	replayed := ""
	if r.Replayed {
		replayed = " (replayed)"
	}
	p.line(r.DisputeID, m.Data(), "%s result %s.%s %s %s code=%s attempts=%d dispute=%s%s %s", stamp(m), r.Provider, r.Action,
		r.DisputeRequestID, r.Outcome, r.Code, r.Attempts, r.DisputeID, replayed, r.Message)
}

func (p *printer) deadLetter(m jetstream.Msg) {
	h := m.Headers()
	var probe struct {
		DisputeID string `json:"disputeId"`
	}
	_ = json.Unmarshal(m.Data(), &probe)
	if p.json {
		b, _ := json.Marshal(map[string]any{"subject": m.Subject(), "headers": h, "data": string(m.Data())})
		p.line(probe.DisputeID, b, "")
		return
	}
	p.line(probe.DisputeID, nil, "%s dlq    %s %s reason=%s deliveries=%s %s", stamp(m), m.Subject(),
		h.Get(worker.HeaderDisputeRequestID), h.Get(worker.HeaderDLQReason), h.Get(worker.HeaderDLQDeliveries), h.Get(worker.HeaderDLQError))
}

func stamp(m jetstream.Msg) string {
	if md, err := m.Metadata(); err == nil {
		return md.Timestamp.UTC().Format("15:04:05.000")
	}
	return time.Now().UTC().Format("15:04:05.000")
}
