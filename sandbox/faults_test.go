package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// probe sends one request per provider and describes the answer: the
// disputeapi code/msg, the Alipay-style resultCode, the Ingenico HTTP status,
// "malformed" for a body that is not JSON, or "dropped" for no answer.
type probe struct {
	t   *testing.T
	s   *Server
	url string
	hc  *http.Client
	n   int
}

func newProbe(t *testing.T, s *Server, url string) *probe {
	return &probe{t: t, s: s, url: url, hc: &http.Client{Timeout: 5 * time.Second}}
}

func (p *probe) do(req *http.Request) (int, []byte, error) {
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (p *probe) describe(status int, b []byte, err error, field string) string {
	if err != nil {
		return "dropped"
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return "malformed"
	}
	switch field {
	case "code":
		return m["code"].(string) + " " + m["msg"].(string)
	case "result":
		return m["result"].(map[string]any)["resultCode"].(string)
	}
	return http.StatusText(status)
}

func (p *probe) disputeAPI() string {
	body := `{"from_created_at":"2026-11-01T00:00:00+08:00","to_created_at":"2026-11-30T00:00:00+08:00","type":"dispute"}`
	req, _ := http.NewRequest("POST", p.url+"/dispute-api/v1/list", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+TestKeys.DisputeAPIToken)
	st, b, err := p.do(req)
	return p.describe(st, b, err, "code")
}

func (p *probe) alipay() string {
	id := p.s.CreateAlipayDispute(AlipayDispute{}).DisputeID
	st, b, err := p.signed(acceptPath, alipayMerchant(p.t), map[string]string{"disputeId": id})
	return p.describe(st, b, err, "result")
}

func (p *probe) alipayPlus() string {
	pay := p.s.CreateAlipayPlusPayment(AlipayPlusPayment{}).PaymentRequestID
	p.n++
	st, b, err := p.signed(escalatePath, apMerchant(p.t), escalation("probe-"+jsonInt(p.n), pay))
	return p.describe(st, b, err, "result")
}

func (p *probe) signed(path string, c alipayCall, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	rt := c.requestTime.Format(time.RFC3339)
	sig := mustSign(p.t, c, path, rt, b)
	req, _ := http.NewRequest("POST", p.url+path, strings.NewReader(string(b)))
	req.Header.Set("Client-Id", c.clientID)
	req.Header.Set("Request-Time", rt)
	req.Header.Set("Signature", sig)
	return p.do(req)
}

func (p *probe) ingenico() string {
	id := p.s.CreateIngenicoDispute(IngenicoDispute{}).ID
	req, _ := http.NewRequest("POST", p.url+disputePath(id, "submit"), nil)
	req.Header.Set("Date", fixedNow.Format(http.TimeFormat))
	signIngenico(req)
	st, b, err := p.do(req)
	return p.describe(st, b, err, "")
}

func TestFaultAnswers(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: 5})
	p := newProbe(t, s, ts.URL)
	tests := []struct {
		faults                             Faults
		dapi, alipay, alipayPlus, ingenico string
	}{
		{Faults{}, "200 SUCCESS", "SUCCESS", "SUCCESS", "OK"},
		{Faults{ErrorRate: 1}, "500 INTERNAL_ERROR", "UNKNOWN_EXCEPTION", "UNKNOWN_EXCEPTION", "Internal Server Error"},
		{Faults{ThrottleRate: 1}, "500 RATE_LIMITED", "REQUEST_TRAFFIC_EXCEED_LIMIT", "REQUEST_TRAFFIC_EXCEED_LIMIT", "Too Many Requests"},
		{Faults{MalformedRate: 1}, "malformed", "malformed", "malformed", "malformed"},
		{Faults{UnavailableRate: 1}, "malformed", "malformed", "malformed", "malformed"}, // a plain-text 503
	}
	for _, tt := range tests {
		for _, prov := range []string{ProviderDisputeAPI, ProviderAlipay, ProviderAlipayPlus, ProviderIngenico} {
			s.SetFaults(prov, "", tt.faults)
		}
		got := []string{p.disputeAPI(), p.alipay(), p.alipayPlus(), p.ingenico()}
		want := []string{tt.dapi, tt.alipay, tt.alipayPlus, tt.ingenico}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%+v: provider %d answered %q, want %q", tt.faults, i, got[i], want[i])
			}
		}
		s.ClearFaults()
	}
	// Only the fault-free round applied anything.
	if n := len(s.Effects()); n != 3 {
		t.Fatalf("%d effects, want 3: %+v", n, s.Effects())
	}
	if got := s.Requests()["alipay.acceptDispute"]; got != 5 {
		t.Fatalf("requests %v", s.Requests())
	}
}

func TestFaultAnswersAreSigned(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	s.SetFaults(ProviderAlipay, "acceptDispute", Faults{ErrorRate: 1})
	id := s.CreateAlipayDispute(AlipayDispute{}).DisputeID
	got := postAlipay(t, ts, acceptPath, alipayMerchant(t), mustPub(t, TestKeys.AlipayProviderPublicPEM), map[string]string{"disputeId": id})
	if got.Result.ResultCode != "UNKNOWN_EXCEPTION" || got.Result.ResultStatus != "U" {
		t.Fatalf("%+v", got.Result)
	}
	// The fault is per endpoint: supplyDefenseDocument still works.
	got = postAlipay(t, ts, supplyPath, alipayMerchant(t), nil, map[string]string{"disputeId": id, "disputeEvidence": "QUJD"})
	if got.Result.ResultCode != "SUCCESS" {
		t.Fatalf("other endpoint: %+v", got.Result)
	}
}

func TestFaultLatencyTimeoutAndRateLimit(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: 5})
	p := newProbe(t, s, ts.URL)

	s.SetFaults(ProviderDisputeAPI, "list", Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	if got := p.disputeAPI(); got != "200 SUCCESS" {
		t.Fatal(got)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("latency not added: %v", el)
	}

	// A timeout holds the request until the client gives up; the handler
	// returns then (ts.Close in Cleanup would block otherwise).
	s.SetFaults(ProviderAlipay, "*", Faults{TimeoutRate: 1})
	p.hc.Timeout = 100 * time.Millisecond
	if got := p.alipay(); got != "dropped" {
		t.Fatalf("timeout: %s", got)
	}
	p.hc.Timeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+acceptPath, strings.NewReader("{}"))
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context: %v", err)
	}
	if len(s.Effects()) != 0 {
		t.Fatal("a timed-out request applied")
	}

	s.ClearFaults()
	s.SetFaults(ProviderIngenico, "", Faults{RateLimit: 2})
	var got []string
	for range 4 {
		got = append(got, p.ingenico())
	}
	if strings.Join(got, ",") != "OK,OK,Too Many Requests,Too Many Requests" {
		t.Fatalf("rate limit: %v", got)
	}
}

// TestApplyThenFail proves the effect happens once while the client saw an
// error, and that each provider's own recovery path finds it.
func TestApplyThenFail(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	for _, prov := range []string{ProviderAlipay, ProviderAlipayPlus, ProviderIngenico, ProviderDisputeAPI} {
		s.SetFaults(prov, "*", Faults{ApplyThenFailRate: 1})
	}
	p := newProbe(t, s, ts.URL)
	apPub := mustPub(t, TestKeys.AlipayPlusProviderPublicPEM)

	// alipay: the client sees U or nothing; a retry answers REPEAT_REQUEST.
	id := s.CreateAlipayDispute(AlipayDispute{}).DisputeID
	st, b, err := p.signed(acceptPath, alipayMerchant(t), map[string]string{"disputeId": id})
	if d := p.describe(st, b, err, "result"); d != "UNKNOWN_EXCEPTION" && d != "dropped" {
		t.Fatalf("alipay client saw %s", d)
	}
	if e := s.EffectsFor(ProviderAlipay, "", id); len(e) != 1 {
		t.Fatalf("alipay effects %+v", e)
	}

	// alipayplus: a retry with the same disputeRequestId gets the stored S.
	pay := s.CreateAlipayPlusPayment(AlipayPlusPayment{}).PaymentRequestID
	st, b, err = p.signed(escalatePath, apMerchant(t), escalation("atf-1", pay))
	if d := p.describe(st, b, err, "result"); d != "UNKNOWN_EXCEPTION" && d != "dropped" {
		t.Fatalf("alipayplus client saw %s", d)
	}
	s.ClearFaults()
	retry := postAlipay(t, ts, escalatePath, apMerchant(t), apPub, escalation("atf-1", pay))
	effects := s.EffectsFor(ProviderAlipayPlus, "atf-1", "")
	if retry.Result.ResultCode != "SUCCESS" || len(effects) != 1 || effects[0].DisputeID != retry.raw["disputeId"] {
		t.Fatalf("alipayplus retry %+v, effects %+v", retry.Result, effects)
	}
	if got := postAlipay(t, ts, acceptPath, alipayMerchant(t), nil, map[string]string{"disputeId": id}); got.Result.ResultCode != "REPEAT_REQUEST" {
		t.Fatalf("alipay retry %+v", got.Result)
	}

	// ingenico: a retry with the same idempotence key gets the stored 200.
	s.SetFaults(ProviderIngenico, "submit", Faults{ApplyThenFailRate: 1})
	ing := s.CreateIngenicoDispute(IngenicoDispute{}).ID
	first := ingDoRaw(t, ts.URL, disputePath(ing, "submit"), "atf-2")
	if first != "Internal Server Error" && first != "dropped" {
		t.Fatalf("ingenico client saw %s", first)
	}
	s.ClearFaults()
	if again := ingDoRaw(t, ts.URL, disputePath(ing, "submit"), "atf-2"); again != "OK" {
		t.Fatalf("ingenico retry: %s", again)
	}
	if e := s.EffectsFor(ProviderIngenico, "atf-2", ing); len(e) != 1 {
		t.Fatalf("ingenico effects %+v", e)
	}
}

func ingDoRaw(t *testing.T, base, path, key string) string {
	req, _ := http.NewRequest("POST", base+path, nil)
	req.Header.Set("Date", fixedNow.Format(http.TimeFormat))
	req.Header.Set("X-GCS-Idempotence-Key", key)
	signIngenico(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "dropped"
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return http.StatusText(resp.StatusCode)
}

func TestFaultUnavailable(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: 5})
	s.SetFaults(ProviderDisputeAPI, "list", Faults{UnavailableRate: 1})
	status, b := postJSON(t, ts, "/dispute-api/v1/list", bearer, window(fixedNow.Add(-time.Hour), fixedNow, ListDispute, "", ""))
	if status != http.StatusServiceUnavailable || !strings.HasPrefix(string(b), "503") {
		t.Fatalf("HTTP %d %s", status, b)
	}
}
