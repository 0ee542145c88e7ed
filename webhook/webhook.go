package webhook

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/poller"
)

// Paths of the endpoints (docs/contract.md section 6).
const (
	PathAlipayNotifyDispute          = "/webhooks/alipay/notifyDispute"
	PathAlipayPlusResponseEscalation = "/webhooks/alipayplus/responseEscalation"
	PathDisputeAPINotify             = "/webhooks/disputeapi/notify"
)

// Providers, used as the event source and the metric label.
const (
	ProviderAlipay     = "alipay"
	ProviderAlipayPlus = "alipayplus"
	ProviderDisputeAPI = "disputeapi"
)

// NotificationTypeResponseEscalation is data.notificationType of an Alipay+
// escalation answer (the API's name: the body has no type field).
const NotificationTypeResponseEscalation = "responseEscalation"

// Results of disputesync_webhook_notifications_total.
const (
	ResultAccepted        = "accepted"
	ResultDuplicate       = "duplicate"
	ResultUnauthenticated = "unauthenticated"
	ResultInvalid         = "invalid"
	ResultError           = "error"
)

// Defaults of Config.
const (
	DefaultAddr           = "127.0.0.1:8087"
	DefaultMaxBodyBytes   = 256 << 10
	DefaultPublishTimeout = 10 * time.Second
	DefaultSeenRetention  = 30 * 24 * time.Hour
)

// Notifier is the shared change detector, satisfied by *poller.Detector.
type Notifier interface {
	// ObserveAt is Observe with the time the record is known to have been
	// current, so that an observation older than the recorded state (a poll
	// page read before a pushed change, a notification delivered after a
	// newer poll) does not publish a change back to it.
	ObserveAt(ctx context.Context, source, listType string, rec poller.Record, raw json.RawMessage, asOf time.Time, fence func() error) ([]poller.Event, error)
	// PublishNotifiedDup publishes dispute.notified and reports whether
	// JetStream already held the event.
	PublishNotifiedDup(ctx context.Context, source, notificationType, disputeID string, notification json.RawMessage, notifyID string) (poller.Event, bool, error)
}

// Config of a Server. An endpoint whose credentials are not configured is
// not served (404): nothing is accepted unverified.
type Config struct {
	Addr string // --webhook-addr; default DefaultAddr

	// JS and Names build the Detector when Detector is nil.
	JS       jetstream.JetStream
	Names    topology.Names
	Detector Notifier

	// Ledger is the Alipay+ escalation bookkeeping closed by
	// responseEscalation; nil skips it.
	Ledger alipayplus.Ledger
	// Redis keeps the markers that recognise a repeat after JetStream's
	// duplicate window (doc.go); nil relies on the window alone.
	Redis redis.UniversalClient
	// SeenRetention is how long a marker is kept; default 30 days.
	SeenRetention time.Duration

	// Alipay notifyDispute: the merchant's Client-Id and Alipay's public key.
	AlipayClientID  string
	AlipayPublicKey *rsa.PublicKey
	// Alipay+ responseEscalation: the MPP's Client-Id, Alipay+'s public key
	// (verifies the request) and the MPP's private key (signs our answer).
	AlipayPlusClientID   string
	AlipayPlusPublicKey  *rsa.PublicKey
	AlipayPlusPrivateKey *rsa.PrivateKey
	// DisputeAPISecret authenticates X-Dispute-Signature.
	DisputeAPISecret []byte

	MaxBodyBytes int64 // default DefaultMaxBodyBytes
	// PublishTimeout bounds the work of one notification (ledger, detector,
	// publish); past it the answer is 500. Default 10 s.
	PublishTimeout time.Duration
	Metrics        *metrics.Metrics // default: a private metrics.New()
	Logger         *slog.Logger
	Now            func() time.Time
}

// Server receives notifications.
type Server struct {
	cfg  Config
	det  Notifier
	log  *slog.Logger
	now  func() time.Time
	seen seenStore
	mux  *http.ServeMux
}

// New checks cfg and returns a Server. Its errors never hold key material.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.SeenRetention <= 0 {
		cfg.SeenRetention = DefaultSeenRetention
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, det: cfg.Detector, log: cfg.Logger.With("component", "webhook"), now: cfg.Now}
	if s.det == nil {
		if cfg.JS == nil {
			return nil, errors.New("webhook: needs a Detector or JetStream")
		}
		d, err := poller.NewDetector(cfg.JS, cfg.Names, cfg.Metrics, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		s.det = d
	}
	if cfg.Redis != nil {
		s.seen = &redisSeen{rdb: cfg.Redis, names: cfg.Names, ttl: cfg.SeenRetention}
	} else {
		s.seen = noSeen{}
	}

	s.mux = http.NewServeMux()
	var enabled []string
	if cfg.AlipayClientID != "" && cfg.AlipayPublicKey != nil {
		s.mux.Handle("POST "+PathAlipayNotifyDispute, s.endpoint(alipayEndpoint(s)))
		enabled = append(enabled, ProviderAlipay)
	}
	if cfg.AlipayPlusClientID != "" && cfg.AlipayPlusPublicKey != nil && cfg.AlipayPlusPrivateKey != nil {
		s.mux.Handle("POST "+PathAlipayPlusResponseEscalation, s.endpoint(alipayPlusEndpoint(s)))
		enabled = append(enabled, ProviderAlipayPlus)
	}
	if len(cfg.DisputeAPISecret) > 0 {
		s.mux.Handle("POST "+PathDisputeAPINotify, s.endpoint(disputeAPIEndpoint(s)))
		enabled = append(enabled, ProviderDisputeAPI)
	}
	if len(enabled) == 0 {
		return nil, errors.New("webhook: no endpoint has credentials (Alipay client id and public key, Alipay+ client id and keys, or the disputeapi webhook secret)")
	}
	s.log.Info("webhook endpoints", "providers", enabled)
	return s, nil
}

// Handler serves the endpoints; other paths answer 404, other methods 405.
func (s *Server) Handler() http.Handler { return s.mux }

// Run listens on Addr and serves until ctx ends, then shuts down
// gracefully (requests in flight get up to 10 s to finish).
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("webhook: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener (which it closes).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: s.mux,
		// A public endpoint: slow or oversized clients must not hold
		// connections. The write timeout leaves room for the publish.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      s.cfg.PublishTimeout + 15*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("webhook listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("webhook: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("webhook: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook: serve: %w", err)
	}
	return nil
}

// notice is one verified and parsed notification.
type notice struct {
	typ       string          // data.notificationType
	disputeID string          // the event's subject
	identity  string          // what makes a repeat recognisable (doc.go)
	raw       json.RawMessage // the body, for data.notification
	// record, when set, carries dispute state for the detector.
	record    *poller.Record
	recordRaw json.RawMessage
	// before runs ahead of the publishes (the Alipay+ ledger close).
	before func(ctx context.Context) error
}

// outcome is how a request ended, for the answer.
type outcome int

const (
	outSuccess outcome = iota
	outUnauthenticated
	outInvalid
	outTooLarge
	outError
)

// provider is one endpoint's authenticity check, parser and answer format.
type provider struct {
	name   string
	verify func(r *http.Request, body []byte) error
	parse  func(body []byte) (*notice, error)
	answer func(w http.ResponseWriter, r *http.Request, o outcome, msg string)
}

func (s *Server) count(provider, result string) {
	s.cfg.Metrics.WebhookNotifications.WithLabelValues(provider, result).Inc()
}

func (s *Server) endpoint(p provider) http.Handler {
	log := s.log.With("provider", p.name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
		if err != nil {
			s.count(p.name, ResultInvalid)
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				log.Warn("notification body too large", "limit", s.cfg.MaxBodyBytes, "remote", r.RemoteAddr)
				p.answer(w, r, outTooLarge, "body too large")
				return
			}
			log.Warn("notification body unreadable", "err", err, "remote", r.RemoteAddr)
			p.answer(w, r, outInvalid, "body unreadable")
			return
		}
		if err := p.verify(r, body); err != nil {
			s.count(p.name, ResultUnauthenticated)
			// The reason only: never the signature or the body.
			log.Warn("notification failed verification", "reason", err.Error(), "remote", r.RemoteAddr)
			p.answer(w, r, outUnauthenticated, "authentication failed")
			return
		}
		n, err := p.parse(body)
		if err != nil {
			s.count(p.name, ResultInvalid)
			log.Warn("authentic notification is malformed", "err", err)
			p.answer(w, r, outInvalid, err.Error())
			return
		}
		// The provider may give up on us mid-way: finishing the publish
		// anyway saves its retry some work, and the work is idempotent.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.PublishTimeout)
		defer cancel()
		dup, err := s.process(ctx, p.name, n)
		if err != nil {
			s.count(p.name, ResultError)
			log.Error("notification not stored; the provider will retry", "type", n.typ, "disputeId", n.disputeID, "err", err)
			p.answer(w, r, outError, "temporarily unable to store the notification")
			return
		}
		if dup {
			s.count(p.name, ResultDuplicate)
			log.Info("repeated notification", "type", n.typ, "disputeId", n.disputeID)
		} else {
			s.count(p.name, ResultAccepted)
			log.Info("notification accepted", "type", n.typ, "disputeId", n.disputeID)
		}
		p.answer(w, r, outSuccess, "")
	})
}

// process does the work of a notification; dup reports a repeat: nothing
// new was stored.
func (s *Server) process(ctx context.Context, provider string, n *notice) (dup bool, err error) {
	key := seenKey(provider, n.identity)
	// asOf: the record was current at the latest when we first received
	// the notification (a retry after our own error keeps that time).
	asOf, done, err := s.seen.begin(ctx, key, s.now())
	if err != nil {
		// JetStream and the snapshots still drop repeats: go on.
		s.log.Warn("repeat marker unreadable", "provider", provider, "err", err)
	} else if done {
		return true, nil
	}
	if n.before != nil {
		if err := n.before(ctx); err != nil {
			return false, err
		}
	}
	var stateEvents []poller.Event
	if n.record != nil {
		stateEvents, err = s.det.ObserveAt(ctx, provider, poller.ListDispute, *n.record, n.recordRaw, asOf, nil)
		if err != nil {
			return false, fmt.Errorf("change detector: %w", err)
		}
	}
	_, held, err := s.det.PublishNotifiedDup(ctx, provider, n.typ, n.disputeID, n.raw, n.identity)
	if err != nil {
		return false, fmt.Errorf("publish dispute.notified: %w", err)
	}
	first, err := s.seen.mark(ctx, key)
	if err != nil {
		// The events are stored: the answer is success regardless.
		s.log.Warn("repeat marker not written", "provider", provider, "err", err)
		first = true
	}
	return !first || (held && len(stateEvents) == 0), nil
}
