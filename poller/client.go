package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/disputesync/disputesync/metrics"
)

// List types of POST /dispute-api/v1/list (the PSP's list API documentation).
const (
	ListDispute = "dispute"         // every dispute created in the window
	ListPeriod  = "disputes-period" // those of them still in their appeal period
)

// PageSize is the largest limit the list API allows (10 / 50 / 100).
const PageSize = 100

// listPath is appended to the base URL (docs/contract.md section 5).
const listPath = "/dispute-api/v1/list"

// maxListBody caps a list answer: 100 records are about 100 KB.
const maxListBody = 8 << 20

// ErrRejected is the list API's code "400" (or an HTTP 4xx other than 408
// and 429): the request itself is wrong, so repeating it cannot help. The
// poller stops the source instead of crash-looping.
var ErrRejected = errors.New("poller: list API rejected the request")

// page is one answer of the list API.
type page struct {
	Records    []Record
	Raw        []json.RawMessage
	Page       int
	TotalCount int
	TotalPages int
	AsOf       time.Time
}

// providerTimeLayout is the list API's time format: 2026-04-02T16:28:09+08:00.
const providerTimeLayout = "2006-01-02T15:04:05-07:00"

var utc8 = time.FixedZone("UTC+8", 8*3600)

func formatProviderTime(t time.Time) string { return t.In(utc8).Format(providerTimeLayout) }

// listClient calls the list API with a token bucket, retries and metrics.
type listClient struct {
	source   string
	url      string
	token    []byte
	hc       *http.Client
	limiter  *rate.Limiter // nil: unlimited
	maxRate  rate.Limit    // the configured rate: the limiter slows below it and recovers to it
	metrics  *metrics.Metrics
	logger   *slog.Logger
	attempts int
	backoff  time.Duration // first retry delay; doubles, with full jitter
	maxDelay time.Duration
}

// retryableError marks failures worth another attempt: code "500", HTTP 5xx
// / 408 / 429, timeouts, connection errors, and unreadable answers (a
// truncated body is a transport failure in disguise).
type retryableError struct {
	err   error
	after time.Duration // the provider's Retry-After (HTTP 429 / 503), 0 if none
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// list fetches one page, retrying retryable failures with jittered
// exponential backoff. Every attempt is counted in poll_pages_total.
func (c *listClient) list(ctx context.Context, listType string, from, to time.Time, pageNo int) (*page, error) {
	body, err := json.Marshal(map[string]string{
		"from_created_at": formatProviderTime(from),
		"to_created_at":   formatProviderTime(to),
		"type":            listType,
		"page":            strconv.Itoa(pageNo),
		"limit":           strconv.Itoa(PageSize),
	})
	if err != nil {
		return nil, err
	}
	var last error
	for attempt := 1; ; attempt++ {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return nil, fmt.Errorf("list %s page %d: rate limit: %w", listType, pageNo, err)
			}
		}
		p, result, err := c.once(ctx, body)
		c.metrics.PollPages.WithLabelValues(c.source, listType, result).Inc()
		if err == nil {
			c.adapt(true)
			return p, nil
		}
		last = fmt.Errorf("list %s page %d: %w", listType, pageNo, err)
		var re *retryableError
		if !errors.As(err, &re) || attempt >= c.attempts || ctx.Err() != nil {
			return nil, last
		}
		c.adapt(false)
		d := min(c.maxDelay, c.backoff<<(attempt-1))
		d = d/2 + rand.N(d/2+1) // jitter, so replicas and retries do not align
		d = max(d, re.after)    // the provider said how long to wait
		c.logger.LogAttrs(ctx, slog.LevelWarn, "list API call failed, retrying",
			slog.String("source", c.source), slog.String("list_type", listType), slog.Int("page", pageNo),
			slog.Int("attempt", attempt), slog.Duration("backoff", d), slog.String("error", err.Error()))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(last, ctx.Err())
		case <-t.C:
		}
	}
}

// once makes one call and classifies it; result is the metric label.
func (c *listClient) once(ctx context.Context, body []byte) (*page, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, "error", err
	}
	asOf := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if len(c.token) > 0 {
		req.Header.Set("Authorization", "Bearer "+string(c.token))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The error may quote the URL but never headers, so the token is safe.
		return nil, "transport_error", &retryableError{err: fmt.Errorf("no answer: %w", err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxListBody+1))
	if err != nil {
		return nil, "transport_error", &retryableError{err: fmt.Errorf("read answer: %w", err)}
	}
	if len(data) > maxListBody {
		return nil, "invalid", fmt.Errorf("answer larger than %d bytes", maxListBody)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return nil, "http_error", &retryableError{err: fmt.Errorf("HTTP %d", resp.StatusCode), after: retryAfter(resp.Header, time.Now())}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return nil, "http_error", &retryableError{err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	case resp.StatusCode >= 400:
		return nil, "rejected", fmt.Errorf("%w: HTTP %d", ErrRejected, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, "http_error", &retryableError{err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	}
	p, code, msg, err := parsePage(data)
	switch {
	case err != nil:
		// A malformed or truncated answer is retried: a proxy or a dropped
		// connection produces them, and a repeat usually succeeds.
		return nil, "invalid", &retryableError{err: fmt.Errorf("malformed answer: %w", err)}
	case code == "200":
		p.AsOf = asOf
		return p, "ok", nil
	case code == "400":
		return nil, "rejected", fmt.Errorf("%w: code 400 %s", ErrRejected, truncate(msg, 100))
	case code == "500":
		return nil, "retryable", &retryableError{err: fmt.Errorf("code 500 %s", truncate(msg, 100))}
	default:
		return nil, "invalid", &retryableError{err: fmt.Errorf("unknown code %q %s", truncate(code, 10), truncate(msg, 100))}
	}
}

// parsePage decodes the envelope strictly: code, page, total_count and
// total_pages are strings, every record parses (ParseRecord).
func parsePage(data []byte) (*page, string, string, error) {
	var env struct {
		Code json.RawMessage `json:"code"`
		Msg  json.RawMessage `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, "", "", err
	}
	top := map[string]json.RawMessage{"code": env.Code, "msg": env.Msg}
	fp := fieldParser{}
	code := fp.str(top, "", "code", true)
	msg := fp.str(top, "", "msg", false)
	if fp.err != nil {
		return nil, "", "", fp.err
	}
	if code != "200" {
		return nil, code, msg, nil
	}
	var d map[string]json.RawMessage
	if isNull(env.Data) || json.Unmarshal(env.Data, &d) != nil || d == nil {
		return nil, code, msg, &FieldError{Field: "data", Msg: "missing or not an object"}
	}
	num := func(name string) int {
		s := fp.str(d, "data.", name, true)
		if fp.err != nil {
			return 0
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			fp.err = &FieldError{Field: "data." + name, Msg: fmt.Sprintf("%q is not a count", truncate(s, 20))}
		}
		return n
	}
	p := &page{Page: num("page"), TotalCount: num("total_count"), TotalPages: num("total_pages")}
	if fp.err != nil {
		return nil, code, msg, fp.err
	}
	if l, ok := d["lists"]; ok && !isNull(l) {
		if err := json.Unmarshal(l, &p.Raw); err != nil {
			return nil, code, msg, &FieldError{Field: "data.lists", Msg: "not an array"}
		}
	}
	p.Records = make([]Record, len(p.Raw))
	for i, raw := range p.Raw {
		rec, err := ParseRecord(raw)
		if err != nil {
			return nil, code, msg, fmt.Errorf("data.lists[%d]: %w", i, err)
		}
		p.Records[i] = rec
	}
	return p, code, msg, nil
}

// maxRetryAfter caps a provider's Retry-After: a wrong header must not stop
// the poller for long; the next cycle asks again anyway.
const maxRetryAfter = 2 * time.Minute

// retryAfter reads Retry-After (seconds or an HTTP date); 0 if absent or
// unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// minRateShare is the lowest share of the configured rate the limiter
// slows to.
const minRateShare = 1.0 / 16

// adapt moves the list rate: a retryable failure (the provider throttling
// or failing) halves it, down to minRateShare of the configured rate; each
// success wins back 5%, up to the configured rate.
func (c *listClient) adapt(ok bool) {
	if c.limiter == nil {
		return
	}
	cur := c.limiter.Limit()
	next := cur / 2
	if ok {
		next = cur * 1.05
	}
	next = min(max(next, c.maxRate*minRateShare), c.maxRate)
	if next != cur {
		c.limiter.SetLimit(next)
	}
}
