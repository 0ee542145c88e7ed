// Package alipayclient is the signed round trip that the alipay and
// alipayplus handlers share: it signs a JSON request with the merchant key
// (internal/alipaysig), sends it through providerhttp, verifies the answer's
// signature with the provider's public key and reads its result object. It
// also holds the classification machinery (Table, Classify), the strict
// params reader (Object) and the evidence reference loader both packages use.
//
// A response that is not signed, or whose signature does not verify, is never
// read as an outcome: it is a retryable error, because only the provider can
// say whether the request took effect, and an unverifiable answer says
// nothing.
package alipayclient

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/providerhttp"
	"github.com/disputesync/disputesync/internal/alipaysig"
	"github.com/disputesync/disputesync/metrics"
)

// ThrottleDelay is how long a caller waits after REQUEST_TRAFFIC_EXCEED_LIMIT
// or HTTP 429 (unless the provider's Retry-After asks for longer).
const ThrottleDelay = 5 * time.Second

// maxRetryAfter caps a provider's Retry-After so that a bogus header cannot
// park a command for hours.
const maxRetryAfter = 2 * time.Minute

var (
	// ErrUnverified is wrapped by errors for answers whose signature is
	// missing or does not verify.
	ErrUnverified = errors.New("alipayclient: response signature missing or invalid")
	// ErrMalformed is wrapped by errors for signed answers that carry no
	// readable result object.
	ErrMalformed = errors.New("alipayclient: response has no readable result")
)

// Config of a Client.
type Config struct {
	Provider          string // metric label and error prefix: "alipay" or "alipayplus"
	BaseURL           string // scheme://host[:port][/prefix]; paths are appended
	ClientID          string
	PrivateKey        *rsa.PrivateKey // merchant key: signs requests
	ProviderPublicKey *rsa.PublicKey  // verifies answers
	Timeout           time.Duration   // per call; default 20 s (providerhttp)
	RateLimit         float64         // calls per second; 0 means unlimited
	HTTPClient        *http.Client    // nil: a pooled default client
	Metrics           *metrics.Metrics
	Now               func() time.Time // nil: time.Now
}

// Client sends signed requests to one Alipay-style provider.
type Client struct {
	cfg  Config
	base *url.URL
	http *providerhttp.Client
	now  func() time.Time
}

// New checks cfg and returns a Client. Errors never include key material.
func New(cfg Config) (*Client, error) {
	if cfg.Provider == "" {
		return nil, errors.New("alipayclient: Provider is required")
	}
	if cfg.BaseURL == "" {
		return nil, fmt.Errorf("%s: base URL is required", cfg.Provider)
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%s: base URL %q must be an absolute http(s) URL", cfg.Provider, cfg.BaseURL)
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("%s: client id is required", cfg.Provider)
	}
	if cfg.PrivateKey == nil {
		return nil, fmt.Errorf("%s: merchant private key is required", cfg.Provider)
	}
	if cfg.ProviderPublicKey == nil {
		return nil, fmt.Errorf("%s: provider public key is required", cfg.Provider)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{
		cfg:  cfg,
		base: base,
		now:  now,
		http: providerhttp.New(providerhttp.Config{
			Provider:  cfg.Provider,
			Timeout:   cfg.Timeout,
			RateLimit: cfg.RateLimit,
			Client:    cfg.HTTPClient,
			Metrics:   cfg.Metrics,
		}),
	}, nil
}

// Result is the provider's result object.
type Result struct {
	Code    string `json:"resultCode"`
	Status  string `json:"resultStatus"`
	Message string `json:"resultMessage"`
}

// Answer is a verified provider answer.
type Answer struct {
	HTTPStatus int
	Result     Result
	Body       []byte // the whole verified body
	RetryAfter time.Duration
}

// Request is one call.
type Request struct {
	Operation string // metric label, e.g. "acceptDispute"
	Path      string // e.g. "/ams/api/v1/payments/acceptDispute"
	Body      []byte // exactly the bytes that are signed and sent
	// DisputeRequestID, when set, is sent as the "Dispute-Request-Id" header,
	// which the sandbox uses to attribute effects. It is not signed and the
	// provider does not read it.
	DisputeRequestID string
}

// Post signs and sends a request and returns the verified answer.
//
// Errors: transport failures, HTTP 5xx, unsigned or forged answers and
// answers without a result are plain (retryable) errors; HTTP 429 is marked
// handlers.RetryAfter. A returned Answer is signed by the provider; what its
// result means is for Classify.
func (c *Client) Post(ctx context.Context, r Request) (*Answer, error) {
	u := *c.base
	u.Path = c.base.Path + r.Path
	u.RawPath = ""
	// What is signed is the path the server sees.
	signedPath := u.EscapedPath()
	reqTime := c.now().Format(alipaysig.TimeLayout)
	sig, err := alipaysig.Sign(c.cfg.PrivateKey, http.MethodPost, signedPath, c.cfg.ClientID, reqTime, r.Body)
	if err != nil {
		// alipaysig's error carries no key material.
		return nil, handlers.Permanent(fmt.Errorf("%s %s: %w", c.cfg.Provider, r.Operation, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return nil, handlers.Permanent(fmt.Errorf("%s %s: building request: %w", c.cfg.Provider, r.Operation, err))
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("Client-Id", c.cfg.ClientID)
	req.Header.Set("Request-Time", reqTime)
	req.Header.Set("Signature", sig)
	if r.DisputeRequestID != "" {
		req.Header.Set("Dispute-Request-Id", r.DisputeRequestID)
	}

	var (
		ans    *Answer
		ansErr error
	)
	_, err = c.http.Do(ctx, r.Operation, req, func(resp *providerhttp.Response) string {
		ans, ansErr = c.read(r, signedPath, resp)
		return metricResult(ans, ansErr)
	})
	if err != nil {
		// No answer was read: the outcome is unknown, retry with the same body.
		return nil, err
	}
	return ans, ansErr
}

// read turns a raw answer into a verified Answer or a classified error.
func (c *Client) read(r Request, signedPath string, resp *providerhttp.Response) (*Answer, error) {
	prefix := c.cfg.Provider + " " + r.Operation
	httpErr := &handlers.ProviderError{
		Code:       "HTTP_" + strconv.Itoa(resp.Status),
		Message:    http.StatusText(resp.Status),
		HTTPStatus: resp.Status,
		Body:       resp.Body,
	}
	switch {
	case resp.Status == http.StatusTooManyRequests:
		return nil, handlers.RetryAfter(fmt.Errorf("%s: %w", prefix, httpErr), retryAfter(resp.Header))
	case resp.Status >= 500:
		return nil, fmt.Errorf("%s: %w", prefix, httpErr)
	}
	if err := c.verify(signedPath, resp); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d: %w", prefix, resp.Status, err)
	}
	var env struct {
		Result *Result `json:"result"`
	}
	if err := json.Unmarshal(resp.Body, &env); err != nil || env.Result == nil || env.Result.Code == "" {
		if resp.Status >= 400 {
			// A signed refusal without a result object: the provider refused.
			return nil, handlers.Permanent(fmt.Errorf("%s: %w", prefix, httpErr))
		}
		return nil, fmt.Errorf("%s: HTTP %d: %w", prefix, resp.Status, ErrMalformed)
	}
	return &Answer{HTTPStatus: resp.Status, Result: *env.Result, Body: resp.Body, RetryAfter: retryAfter(resp.Header)}, nil
}

// verify checks the answer's signature over
// "POST <path>\n<Client-Id>.<Response-Time>.<body>".
func (c *Client) verify(signedPath string, resp *providerhttp.Response) error {
	sig := resp.Header.Get("Signature")
	if sig == "" {
		return fmt.Errorf("%w: no Signature header", ErrUnverified)
	}
	respTime := resp.Header.Get("Response-Time")
	if respTime == "" {
		return fmt.Errorf("%w: no Response-Time header", ErrUnverified)
	}
	// The answer is signed with the Client-Id of the request; a provider that
	// echoes another one is answering someone else.
	if id := resp.Header.Get("Client-Id"); id != "" && id != c.cfg.ClientID {
		return fmt.Errorf("%w: answer is for another Client-Id", ErrUnverified)
	}
	if err := alipaysig.Verify(c.cfg.ProviderPublicKey, http.MethodPost, signedPath, c.cfg.ClientID, respTime, resp.Body, sig); err != nil {
		// alipaysig's errors describe the header's shape, never its value.
		return fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	return nil
}

// retryAfter reads a Retry-After header in seconds, at least ThrottleDelay.
func retryAfter(h http.Header) time.Duration {
	d := ThrottleDelay
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && s > 0 {
		d = max(d, min(time.Duration(s)*time.Second, maxRetryAfter))
	}
	return d
}

// metricResult is the bounded "result" label of the latency histogram.
func metricResult(ans *Answer, err error) string {
	switch {
	case err != nil:
		if _, ok := handlers.RetryDelay(err); ok {
			return "throttled"
		}
		return "error"
	case ans.Result.Status == "S":
		return "ok"
	case ans.Result.Status == "F":
		return "refused"
	default:
		return "retryable"
	}
}
