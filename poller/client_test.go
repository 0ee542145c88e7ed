package poller

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/disputesync/disputesync/metrics"
)

const goodRecord = `{"terminal":"T001","currency":"USD","amount":"25.00","methods":"visa","payment_id":"P100","order_id":"O100",
 "merchant":{"merchant_id":"M1","merchant_name":"Shop"},"status":"pending",
 "disputes":{"disputes_id":"D100","disputes_type":"chargeback","disputes_reason":"goods_not_received",
  "disputes_reference":"R100","disputes_amount":"25.00","disputes_currency":"USD","disputes_times":"1",
  "disputes_period_from":"2026-04-02T16:28:09+08:00","disputes_period_to":"2026-04-12T16:28:09+08:00",
  "disputes_date":"2026-04-02T16:28:09+08:00","disputes_comment":"","disputes_comments_history":"",
  "disputes_reply_deadline":"2026-04-12T16:28:09+08:00","disputes_appeal_status":"none","disputes_status":"open"},
 "result_code":"0000","result_message":"success"}`

func okPage(records ...string) string {
	return `{"code":"200","msg":"SUCCESS","data":{"lists":[` + strings.Join(records, ",") +
		`],"page":"1","total_count":"` + itoa(len(records)) + `","total_pages":"1"}}`
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestParseRecord(t *testing.T) {
	mod := func(old, new string) string { return strings.Replace(goodRecord, old, new, 1) }
	tests := []struct {
		name, raw, field string // field: the error must name it; "" = valid
		check            func(Record) bool
	}{
		{name: "contract example", raw: goodRecord, check: func(r Record) bool {
			return r == Record{DisputeID: "D100", PaymentID: "P100", OrderID: "O100", Status: "pending", AppealStatus: "none",
				CloseStatus: "open", Reason: "goods_not_received", Amount: Amount{"USD", "25.00"},
				ReplyDeadline: "2026-04-12T16:28:09+08:00", CreatedAt: "2026-04-02T16:28:09+08:00", DisputeType: "chargeback",
				DisputeTimes: "1", AppealPeriodFrom: "2026-04-02T16:28:09+08:00", AppealPeriodTo: "2026-04-12T16:28:09+08:00"}
		}},
		{name: "unknown enums are opaque", raw: mod(`"status":"pending"`, `"status":"escalated"`), check: func(r Record) bool { return r.Status == "escalated" }},
		{name: "unknown reason", raw: mod(`"goods_not_received"`, `"new_reason_2027"`), check: func(r Record) bool { return r.Reason == "new_reason_2027" }},
		{name: "amount kept verbatim", raw: mod(`"disputes_amount":"25.00"`, `"disputes_amount":"25.000"`), check: func(r Record) bool { return r.Amount.Value == "25.000" }},
		{name: "optional null", raw: mod(`"order_id":"O100"`, `"order_id":null`), check: func(r Record) bool { return r.OrderID == "" }},
		{name: "amount as a number", raw: mod(`"disputes_amount":"25.00"`, `"disputes_amount":25.00`), field: "disputes.disputes_amount"},
		{name: "amount not decimal", raw: mod(`"disputes_amount":"25.00"`, `"disputes_amount":"25,00"`), field: "disputes.disputes_amount"},
		{name: "missing id", raw: mod(`"disputes_id":"D100",`, ``), field: "disputes.disputes_id"},
		{name: "empty id", raw: mod(`"disputes_id":"D100"`, `"disputes_id":""`), field: "disputes.disputes_id"},
		{name: "bad date", raw: mod(`"disputes_date":"2026-04-02T16:28:09+08:00"`, `"disputes_date":"2026-04-02 16:28:09"`), field: "disputes.disputes_date"},
		{name: "status as number", raw: mod(`"status":"pending"`, `"status":1`), field: "status"},
		{name: "missing status", raw: mod(`"status":"pending",`, ``), field: "status"},
		{name: "times not a count", raw: mod(`"disputes_times":"1"`, `"disputes_times":"one"`), field: "disputes.disputes_times"},
		{name: "no disputes node", raw: `{"status":"pending"}`, field: "disputes"},
		{name: "not an object", raw: `[1]`, field: "(record)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := ParseRecord(json.RawMessage(tc.raw))
			if tc.field == "" {
				if err != nil || !tc.check(rec) {
					t.Fatalf("ParseRecord = %+v, %v", rec, err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
}

// TestClientFaults is RELIABILITY 5.5 P4 for one list call: each provider
// fault is counted by result, retried when retryable, and never yields a page.
func TestClientFaults(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	ok := answer{200, okPage(goodRecord)}
	tests := []struct {
		name    string
		answers []answer // served in order; the last repeats
		wantErr error    // nil: a page
		anyErr  bool
		calls   int
		results map[string]float64
	}{
		{name: "ok", answers: []answer{ok}, calls: 1, results: map[string]float64{"ok": 1}},
		{name: "code 500 retried", answers: []answer{{200, `{"code":"500","msg":"SYSTEM_ERROR"}`}, {200, `{"code":"500","msg":"SYSTEM_ERROR"}`}, ok},
			calls: 3, results: map[string]float64{"retryable": 2, "ok": 1}},
		{name: "HTTP 503 retried", answers: []answer{{503, `busy`}, ok}, calls: 2, results: map[string]float64{"http_error": 1, "ok": 1}},
		{name: "dropped connection retried", answers: []answer{{-1, ``}, ok}, calls: 2, results: map[string]float64{"transport_error": 1, "ok": 1}},
		{name: "malformed JSON retried", answers: []answer{{200, `{"code":"200","msg":`}, ok}, calls: 2, results: map[string]float64{"invalid": 1, "ok": 1}},
		{name: "bad record retried then fails", answers: []answer{{200, okPage(strings.Replace(goodRecord, `"status":"pending"`, `"status":7`, 1))}},
			anyErr: true, calls: 4, results: map[string]float64{"invalid": 4}},
		{name: "code 400 is permanent", answers: []answer{{200, `{"code":"400","msg":"PARAM_ERROR"}`}}, wantErr: ErrRejected, calls: 1, results: map[string]float64{"rejected": 1}},
		{name: "HTTP 401 is permanent", answers: []answer{{401, `{"code":"401"}`}}, wantErr: ErrRejected, calls: 1, results: map[string]float64{"rejected": 1}},
		{name: "code 500 until attempts run out", answers: []answer{{200, `{"code":"500","msg":"SYSTEM_ERROR"}`}}, anyErr: true, calls: 4, results: map[string]float64{"retryable": 4}},
		{name: "page counts must be strings", answers: []answer{{200, `{"code":"200","msg":"SUCCESS","data":{"lists":[],"page":1,"total_count":"0","total_pages":"0"}}`}},
			anyErr: true, calls: 4, results: map[string]float64{"invalid": 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				body, _ := io.ReadAll(r.Body)
				var req map[string]string
				if r.URL.Path != listPath || r.Header.Get("Authorization") != "Bearer secret" || json.Unmarshal(body, &req) != nil ||
					req["limit"] != "100" || req["type"] != ListPeriod || req["page"] != "2" || len(req["from_created_at"]) != 25 {
					t.Errorf("request %s %v %s", r.URL.Path, r.Header, body)
				}
				a := tc.answers[min(n, len(tc.answers))-1]
				if a.status < 0 { // the connection drops without an answer
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						_ = conn.Close()
					}
					return
				}
				w.WriteHeader(a.status)
				_, _ = io.WriteString(w, a.body)
			}))
			defer srv.Close()
			m := metrics.New()
			c := &listClient{source: "disputeapi", url: srv.URL + listPath, token: []byte("secret"), hc: srv.Client(),
				metrics: m, logger: slog.New(slog.DiscardHandler), attempts: 4, backoff: time.Millisecond, maxDelay: 2 * time.Millisecond}
			now := time.Now()
			p, err := c.list(context.Background(), ListPeriod, now.Add(-time.Hour), now, 2)
			switch {
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err %v, want %v", err, tc.wantErr)
			case tc.anyErr && err == nil:
				t.Error("no error")
			case tc.wantErr == nil && !tc.anyErr && (err != nil || len(p.Records) != 1 || p.Records[0].DisputeID != "D100"):
				t.Errorf("page %+v, err %v", p, err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the token: %v", err)
			}
			if int(calls.Load()) != tc.calls {
				t.Errorf("%d calls, want %d", calls.Load(), tc.calls)
			}
			for result, want := range tc.results {
				if got := counterSum(t, m, "disputesync_poll_pages_total", "result", result); got != want {
					t.Errorf("poll_pages_total{result=%q} = %v, want %v", result, got, want)
				}
			}
			if total := counterSum(t, m, "disputesync_poll_pages_total", "", ""); int(total) != tc.calls {
				t.Errorf("poll_pages_total = %v, want one per call (%d)", total, tc.calls)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-4", 0},
		{"soon", 0},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{"86400", maxRetryAfter},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Retry-After", tt.header)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("Retry-After %q: %v, want %v", tt.header, got, tt.want)
		}
	}
}

// TestListRateAdapts: a 429 is retried after the provider's Retry-After
// and halves the list rate; successes win it back up to the configured
// rate, never beyond.
func TestListRateAdapts(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = io.WriteString(w, okPage(goodRecord))
	}))
	defer srv.Close()
	const configured = 1000
	c := &listClient{source: "disputeapi", url: srv.URL + listPath, hc: srv.Client(), metrics: metrics.New(),
		logger: slog.New(slog.DiscardHandler), attempts: 3, backoff: time.Millisecond, maxDelay: 2 * time.Millisecond,
		maxRate: configured, limiter: rate.NewLimiter(configured, 1)}
	now := time.Now()
	start := time.Now()
	if _, err := c.list(context.Background(), ListDispute, now.Add(-time.Hour), now, 1); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before the provider's Retry-After of 1s", waited)
	}
	// One 429 halved the rate, the success won back 5%.
	if got, want := c.limiter.Limit(), rate.Limit(configured/2*1.05); got != want {
		t.Errorf("rate after a 429 and a success %v, want %v", got, want)
	}
	for range 40 {
		if _, err := c.list(context.Background(), ListDispute, now.Add(-time.Hour), now, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.limiter.Limit(); got != configured {
		t.Errorf("rate after 40 successes %v, want the configured %v", got, configured)
	}
}
