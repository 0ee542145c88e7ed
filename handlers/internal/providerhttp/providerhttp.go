// Package providerhttp is the HTTP plumbing every provider client shares:
// a per-provider timeout, a token-bucket rate limit, a pooled transport, a
// cap on response size, and the latency histogram.
package providerhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/disputesync/disputesync/metrics"
)

// Config of a provider client.
type Config struct {
	Provider  string        // metric label
	Timeout   time.Duration // per call; default 20 s
	RateLimit float64       // calls per second; 0 means unlimited
	Burst     int           // default 1 (or RateLimit rounded up)
	// Client overrides the pooled default client.
	Client  *http.Client
	Metrics *metrics.Metrics
}

// Client sends provider requests.
type Client struct {
	cfg     Config
	hc      *http.Client
	limiter *rate.Limiter
}

// MaxResponseBytes caps what is read of a provider answer.
const MaxResponseBytes = 4 << 20

// New returns a Client.
func New(cfg Config) *Client {
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{Transport: PooledTransport()}
	}
	c := &Client{cfg: cfg, hc: hc}
	if cfg.RateLimit > 0 {
		burst := cfg.Burst
		if burst <= 0 {
			burst = max(1, int(cfg.RateLimit+0.999))
		}
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit), burst)
	}
	return c
}

// Response is a read provider answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrTransport wraps failures where no answer was read: the outcome at the
// provider is unknown, so they are retryable with the same parameters.
var ErrTransport = errors.New("no answer from provider")

// Do sends req (waiting for the rate limit first) and reads the answer.
// classify maps the answer to the metric's result label.
func (c *Client) Do(ctx context.Context, operation string, req *http.Request, classify func(*Response) string) (*Response, error) {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("%s %s: rate limit wait: %w", c.cfg.Provider, operation, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.hc.Do(req.WithContext(ctx))
	if err != nil {
		c.cfg.Metrics.ObserveProvider(c.cfg.Provider, operation, "transport_error", time.Since(start))
		// The URL may carry nothing secret, but the error text is kept short.
		return nil, fmt.Errorf("%s %s: %w: %w", c.cfg.Provider, operation, ErrTransport, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err != nil {
		c.cfg.Metrics.ObserveProvider(c.cfg.Provider, operation, "transport_error", time.Since(start))
		return nil, fmt.Errorf("%s %s: reading answer: %w: %w", c.cfg.Provider, operation, ErrTransport, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	result := "ok"
	if classify != nil {
		result = classify(r)
	}
	c.cfg.Metrics.ObserveProvider(c.cfg.Provider, operation, result, time.Since(start))
	return r, nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
