package ingenico

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/providerhttp"
	"github.com/disputesync/disputesync/internal/gcs"
	"github.com/disputesync/disputesync/metrics"
)

// Provider is the provider name of the contract.
const Provider = handlers.ProviderIngenico

// ErrValidateOnly is returned by Apply of the handlers registered by
// Validators, which have no credentials to call the provider with.
var ErrValidateOnly = errors.New("ingenico: handler registered for validation only")

// Config of the Ingenico client. Zero values are the documented defaults.
type Config struct {
	BaseURL      string // e.g. https://eu.sandbox.api-ingenico.com; the paths of docs/contract.md section 5 are appended
	MerchantID   string
	APIKeyID     string
	SecretAPIKey []byte // the v1HMAC secret, used as given (not base64-decoded)

	Timeout    time.Duration // per call; default 20 s
	RateLimit  float64       // calls per second; 0 means unlimited
	HTTPClient *http.Client  // default: a pooled client

	Evidence handlers.Evidence // reads contentRef attachments; nil: contentRef is rejected
	Metrics  *metrics.Metrics  // may be nil
	Logger   *slog.Logger      // default: discard
	Now      func() time.Time  // the clock for the Date header; default time.Now
}

// Client calls Ingenico's Dispute REST service.
type Client struct {
	base   *url.URL
	cfg    Config
	http   *providerhttp.Client
	log    *slog.Logger
	now    func() time.Time
	secret []byte // a copy, so the caller cannot change it under us
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	base, err := providerhttp.ParseBaseURL(Provider, cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.MerchantID == "":
		return nil, errors.New("ingenico: merchant id is required")
	case cfg.APIKeyID == "":
		return nil, errors.New("ingenico: api key id is required")
	case len(cfg.SecretAPIKey) == 0:
		return nil, errors.New("ingenico: secret api key is required")
	case strings.ContainsAny(cfg.APIKeyID, ": \t\r\n"):
		return nil, errors.New("ingenico: api key id must not contain ':' or white space")
	}
	c := &Client{
		base:   base,
		cfg:    cfg,
		log:    cfg.Logger,
		now:    cfg.Now,
		secret: bytes.Clone(cfg.SecretAPIKey),
	}
	c.http = providerhttp.New(providerhttp.Config{
		Provider:  Provider,
		Timeout:   cfg.Timeout,
		RateLimit: cfg.RateLimit,
		Client:    c.signingClient(cfg.HTTPClient),
		Metrics:   cfg.Metrics,
	})
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
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

// url returns the URL of a dispute operation, each id path-escaped.
func (c *Client) url(disputeID, op string) *url.URL {
	escaped := strings.TrimSuffix(c.base.EscapedPath(), "/") +
		"/v1/" + url.PathEscape(c.cfg.MerchantID) + "/disputes/" + url.PathEscape(disputeID) + "/" + op
	u := *c.base
	u.RawPath = escaped
	u.Path, _ = url.PathUnescape(escaped) // cannot fail: built from escaped parts
	return &u
}

// post sends one signed POST and classifies the answer.
func (c *Client) post(ctx context.Context, action string, cmd *handlers.Command, op string, body []byte) (*handlers.Response, error) {
	u := c.url(cmd.DisputeID, op)
	var rd io.Reader // a nil interface, not a nil *bytes.Reader: no body at all
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), rd)
	if err != nil {
		return nil, handlers.Permanent(fmt.Errorf("ingenico %s: building request: %w", action, err))
	}
	req.URL = u // keep the exact escaping that is signed
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-GCS-Idempotence-Key", cmd.DisputeRequestID)
	req.Header.Set("Accept", "application/json")
	// Date and Authorization are set by the signing transport.

	var out outcome
	start := time.Now()
	_, err = c.http.Do(ctx, action, req, func(r *providerhttp.Response) string {
		out = classify(r, op == opUpload)
		return out.label()
	})
	if err != nil {
		// No answer was read: the outcome is unknown, and the same key
		// makes a resend safe.
		c.log.InfoContext(ctx, "provider call without answer", "provider", Provider, "action", action,
			"disputeRequestId", cmd.DisputeRequestID, "error", err)
		return nil, err // it already says "ingenico <action>: no answer from provider"
	}
	attrs := []any{"provider", Provider, "action", action, "disputeRequestId", cmd.DisputeRequestID,
		"status", out.status, "code", out.code, "outcome", out.label(), "duration", time.Since(start)}
	switch {
	case out.err == nil:
		c.log.DebugContext(ctx, "provider call", attrs...)
		return out.resp, nil
	case handlers.IsPermanent(out.err):
		c.log.WarnContext(ctx, "provider call refused", attrs...)
	default:
		c.log.InfoContext(ctx, "provider call retryable", attrs...)
	}
	return nil, fmt.Errorf("ingenico %s: %w", action, out.err)
}

// signingClient returns a copy of hc (or a pooled client) whose transport
// sets Date and signs each request as it goes on the wire: after the rate
// limiter's wait, so the Date is never stale, and after every other header.
// Redirects are not followed, because a provider call that redirects is
// unexpected and a signature is only meant for the URL that was asked for.
func (c *Client) signingClient(hc *http.Client) *http.Client {
	var out http.Client
	var base http.RoundTripper
	if hc != nil {
		out = *hc
		base = hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
	} else {
		base = providerhttp.PooledTransport()
	}
	out.Transport = &signer{base: base, c: c}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

type signer struct {
	base http.RoundTripper
	c    *Client
}

func (s *signer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context()) // a RoundTripper must not modify its request
	r.Header.Set("Date", s.c.now().UTC().Format(http.TimeFormat))
	gcs.Sign(r, s.c.cfg.APIKeyID, s.c.secret)
	return s.base.RoundTrip(r)
}
