package disputeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/providerhttp"
	"github.com/disputesync/disputesync/metrics"
)

// Provider is the provider name of the contract.
const Provider = handlers.ProviderDisputeAPI

// Paths of docs/contract.md section 5.
const (
	pathAbandon           = "/dispute-api/v1/abandon"
	pathUpload            = "/dispute-api/v1/documents/upload"
	pathRemove            = "/dispute-api/v1/documents/remove"
	pathDefend            = "/dispute-api/v1/defend"
	pathRequiredDocuments = "/dispute-api/v1/required-documents"
)

// ErrValidateOnly is returned by Apply of the handlers registered by
// Validators, which have no client to call the provider with.
var ErrValidateOnly = errors.New("disputeapi: handler registered for validation only")

// Config of the client. Zero values are the documented defaults.
type Config struct {
	BaseURL string // the paths of docs/contract.md section 5 are appended
	Token   []byte // sent as "Authorization: Bearer <token>" when set

	Timeout    time.Duration // per call; default 20 s
	RateLimit  float64       // calls per second; 0 means unlimited
	HTTPClient *http.Client  // default: a pooled client

	Evidence handlers.Evidence // reads contentRef attachments; nil: contentRef is rejected
	Metrics  *metrics.Metrics  // may be nil
	Logger   *slog.Logger      // default: discard
}

// Client calls the PSP's dispute API.
type Client struct {
	base  string // without a trailing slash
	cfg   Config
	token []byte
	http  *providerhttp.Client
	log   *slog.Logger
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := providerhttp.ParseBaseURL(Provider, cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if bytes.ContainsFunc(cfg.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		// Said without the token itself.
		return nil, errors.New("disputeapi: token must not contain white space or control characters")
	}
	c := &Client{
		base:  strings.TrimSuffix(u.String(), "/"),
		cfg:   cfg,
		token: bytes.Clone(cfg.Token),
		log:   cfg.Logger,
		http: providerhttp.New(providerhttp.Config{
			Provider:  Provider,
			Timeout:   cfg.Timeout,
			RateLimit: cfg.RateLimit,
			Client:    noRedirects(cfg.HTTPClient),
			Metrics:   cfg.Metrics,
		}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Register adds the client's handlers to mux.
func (c *Client) Register(mux *handlers.Mux) {
	for _, a := range newActions(c) {
		mux.Register(Provider, a.name, handlers.WithEvidence(a, a.place))
	}
}

// Validators adds handlers that can Validate commands with no configuration,
// for the CLI; their Apply returns ErrValidateOnly.
func Validators(mux *handlers.Mux) {
	for _, a := range newActions(nil) {
		mux.Register(Provider, a.name, handlers.WithEvidence(a, a.place))
	}
}

// post sends one JSON request and classifies the answer. operation names
// the call in metrics and logs (the action, or "required_documents").
func (c *Client) post(ctx context.Context, operation, path, disputeRequestID string, body any) outcome {
	b, err := json.Marshal(body)
	if err != nil {
		return outcome{err: handlers.Permanent(fmt.Errorf("encoding body: %w", err))}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return outcome{err: handlers.Permanent(fmt.Errorf("building request: %w", err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	// For correlation in the provider's and the sandbox's records; it is
	// not an idempotency key, and recovery never relies on it.
	req.Header.Set("Dispute-Request-Id", disputeRequestID)
	if len(c.token) > 0 {
		req.Header.Set("Authorization", "Bearer "+string(c.token))
	}
	var out outcome
	start := time.Now()
	_, err = c.http.Do(ctx, operation, req, func(r *providerhttp.Response) string {
		out = classify(r)
		return out.label()
	})
	if err != nil {
		// No answer was read: the outcome at the provider is unknown.
		c.log.InfoContext(ctx, "provider call without answer", "provider", Provider, "operation", operation,
			"disputeRequestId", disputeRequestID, "error", err)
		return outcome{err: err}
	}
	attrs := []any{"provider", Provider, "operation", operation, "disputeRequestId", disputeRequestID,
		"status", out.status, "code", out.env.Code, "msg", out.env.Msg, "outcome", out.label(), "duration", time.Since(start)}
	switch {
	case out.err == nil:
		c.log.DebugContext(ctx, "provider call", attrs...)
	case handlers.IsPermanent(out.err):
		c.log.WarnContext(ctx, "provider call refused", attrs...)
	default:
		c.log.InfoContext(ctx, "provider call retryable", attrs...)
	}
	return out
}

// noRedirects returns a copy of hc (or a pooled client) that does not
// follow redirects: Go would turn a redirected POST into a GET, and an
// action that redirects is unexpected anyway (classified as retryable).
func noRedirects(hc *http.Client) *http.Client {
	var out http.Client
	if hc != nil {
		out = *hc
	} else {
		out.Transport = providerhttp.PooledTransport()
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}
