package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func ctl(t *testing.T, ts *httptest.Server, method, path, body string, wantStatus int, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: HTTP %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func TestControlDisputes(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: 50})
	var rec Record
	ctl(t, ts, "POST", "/_sandbox/disputes", `{"amount":"9.99","disputes":{"disputes_id":"CTL1","disputes_reason":"return"}}`, 201, &rec)
	if rec.Disputes.DisputesID != "CTL1" || rec.Amount != "9.99" || rec.Status != StatusPending || rec.Disputes.DisputesDate != FormatTime(fixedNow) {
		t.Fatalf("created %+v", rec)
	}
	ctl(t, ts, "PATCH", "/_sandbox/disputes/CTL1", `{"disputes":{"disputes_comment":"hello"}}`, 200, &rec)
	if rec.Disputes.DisputesComment != "hello" || rec.Disputes.DisputesReason != "return" || rec.Amount != "9.99" {
		t.Fatalf("patched %+v", rec)
	}
	ctl(t, ts, "PATCH", "/_sandbox/disputes/CTL1", `{"disputes":`, 400, nil)
	ctl(t, ts, "GET", "/_sandbox/disputes/CTL1", "", 200, &rec)
	if rec.Disputes.DisputesComment != "hello" {
		t.Fatalf("get %+v", rec)
	}
	ctl(t, ts, "POST", "/_sandbox/disputes/CTL1/close", "", 200, &rec)
	if rec.Status != StatusClose || rec.Disputes.DisputesStatus != "closed" {
		t.Fatalf("closed %+v", rec)
	}

	// The NDJSON ground truth equals Disputes(), newest first.
	resp, err := ts.Client().Get(ts.URL + "/_sandbox/disputes")
	if err != nil {
		t.Fatal(err)
	}
	var lines []Record
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, r)
	}
	resp.Body.Close()
	truth := s.Disputes()
	if len(lines) != 51 || len(truth) != 51 || lines[0].Disputes.DisputesID != "CTL1" {
		t.Fatalf("%d lines, %d truth, first %s", len(lines), len(truth), lines[0].Disputes.DisputesID)
	}
	for i := range truth {
		if truth[i] != lines[i] {
			t.Fatalf("line %d differs", i)
		}
	}

	ctl(t, ts, "DELETE", "/_sandbox/disputes/CTL1", "", 204, nil)
	ctl(t, ts, "GET", "/_sandbox/disputes/CTL1", "", 404, nil)
	ctl(t, ts, "DELETE", "/_sandbox/disputes/CTL1", "", 404, nil)
	ctl(t, ts, "POST", "/_sandbox/disputes/CTL1/close", "", 404, nil)
	ctl(t, ts, "PATCH", "/_sandbox/disputes/CTL1", `{}`, 404, nil)
	if _, ok := s.Dispute("CTL1"); ok {
		t.Fatal("still there")
	}

	before := len(s.Disputes())
	ctl(t, ts, "POST", "/_sandbox/tick", "", 204, nil)
	if after := len(s.Disputes()); after <= before {
		t.Fatalf("tick created nothing: %d -> %d", before, after)
	}
}

func TestControlFaultsEffectsAndObjects(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: 5})
	ctl(t, ts, "PUT", "/_sandbox/faults", `{"provider":"disputeapi","endpoint":"list","faults":{"errorRate":1,"latency":"1ms"}}`, 204, nil)
	ctl(t, ts, "PUT", "/_sandbox/faults", `{"provider":"disputeapi","faults":{"latency":"soon"}}`, 400, nil)
	ctl(t, ts, "PUT", "/_sandbox/faults", `{"provider":"disputeapi","faults":{"errorRate":2}}`, 400, nil)
	var faults map[string]Faults
	ctl(t, ts, "GET", "/_sandbox/faults", "", 200, &faults)
	if f := faults["disputeapi.list"]; f != (Faults{ErrorRate: 1, Latency: time.Millisecond}) {
		t.Fatalf("faults %+v", faults)
	}
	// Faults round-trip through JSON, and a number is nanoseconds.
	var f Faults
	if err := json.Unmarshal([]byte(`{"latency":2000000,"rateLimit":3}`), &f); err != nil || f != (Faults{Latency: 2 * time.Millisecond, RateLimit: 3}) {
		t.Fatalf("%+v %v", f, err)
	}
	if b, _ := json.Marshal(Faults{ThrottleRate: 0.5, Latency: time.Second}); string(b) != `{"throttleRate":0.5,"latency":"1s"}` {
		t.Fatalf("%s", b)
	}
	p := newProbe(t, s, ts.URL)
	if got := p.disputeAPI(); got != "500 INTERNAL_ERROR" {
		t.Fatalf("with fault: %s", got)
	}
	ctl(t, ts, "DELETE", "/_sandbox/faults", "", 204, nil)
	if got := p.disputeAPI(); got != "200 SUCCESS" {
		t.Fatalf("cleared: %s", got)
	}

	var ad AlipayDispute
	ctl(t, ts, "POST", "/_sandbox/alipay/disputes", `{"disputeId":"AD1"}`, 201, &ad)
	if ad.Status != AlipayStatusWaitDefense || !ad.DefenseDueTime.After(fixedNow) {
		t.Fatalf("alipay dispute %+v", ad)
	}
	ctl(t, ts, "GET", "/_sandbox/alipay/disputes/AD1", "", 200, &ad)
	ctl(t, ts, "GET", "/_sandbox/alipay/disputes/none", "", 404, nil)
	postAlipay(t, ts, acceptPath, alipayMerchant(t), nil, map[string]string{"disputeId": "AD1"})

	var pay AlipayPlusPayment
	ctl(t, ts, "POST", "/_sandbox/alipayplus/payments", `{"paymentRequestId":"PAY1","amount":{"currency":"HKD","value":500},"merchant":"APPLE"}`, 201, &pay)
	if pay.AvailableDisputeAmount != 500 || pay.Merchant != "APPLE" {
		t.Fatalf("payment %+v", pay)
	}
	body := specialFields(escalation("ctl-1", "PAY1"))
	body["escalationAmount"] = map[string]any{"currency": "HKD", "value": "500"}
	got := postAlipay(t, ts, escalatePath, apMerchant(t), nil, body)
	if got.Result.ResultCode != "SUCCESS" {
		t.Fatalf("%+v", got.Result)
	}
	var es []AlipayPlusEscalation
	ctl(t, ts, "GET", "/_sandbox/alipayplus/escalations?paymentRequestId=PAY1", "", 200, &es)
	if len(es) != 1 || es[0].Status != EscalationOngoing {
		t.Fatalf("escalations %+v", es)
	}
	var e AlipayPlusEscalation
	ctl(t, ts, "POST", "/_sandbox/alipayplus/escalations/"+es[0].DisputeID+"/end", `{"status":"REPLIED"}`, 200, &e)
	if e.Status != EscalationReplied || !e.EndedAt.Equal(fixedNow) {
		t.Fatalf("ended %+v", e)
	}
	ctl(t, ts, "POST", "/_sandbox/alipayplus/escalations/"+es[0].DisputeID+"/end", `{"status":"CLOSED"}`, 409, nil)
	ctl(t, ts, "POST", "/_sandbox/alipayplus/escalations/x/end", `{"status":"SOMETHING"}`, 409, nil)

	var ing IngenicoDispute
	ctl(t, ts, "POST", "/_sandbox/ingenico/disputes", `{}`, 201, &ing)
	if ing.Status != IngenicoDraft || ing.MerchantID != TestKeys.IngenicoMerchantID {
		t.Fatalf("ingenico %+v", ing)
	}
	ctl(t, ts, "GET", "/_sandbox/ingenico/disputes/"+ing.ID, "", 200, &ing)

	var effects []Effect
	ctl(t, ts, "GET", "/_sandbox/effects?provider=alipayplus&disputeRequestId=ctl-1", "", 200, &effects)
	if len(effects) != 1 || effects[0].DisputeRequestID != "ctl-1" {
		t.Fatalf("effects %+v", effects)
	}
	ctl(t, ts, "GET", "/_sandbox/effects?disputeId=AD1", "", 200, &effects)
	if len(effects) != 1 || effects[0].Provider != ProviderAlipay {
		t.Fatalf("effects %+v", effects)
	}
	ctl(t, ts, "GET", "/_sandbox/effects?provider=ingenico", "", 200, &effects)
	if len(effects) != 0 {
		t.Fatalf("effects %+v", effects)
	}
	var reqs map[string]int
	ctl(t, ts, "GET", "/_sandbox/requests", "", 200, &reqs)
	if reqs["disputeapi.list"] != 2 || reqs["alipayplus.initiateEscalation"] != 1 {
		t.Fatalf("requests %v", reqs)
	}
}

func TestSampleIDsAreUsable(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{})
	var ids SampleIDs
	ctl(t, ts, "GET", "/_sandbox/ids", "", 200, &ids)
	if len(ids.DisputeAPI) == 0 || len(ids.Alipay) == 0 || len(ids.AlipayPlusPayments) == 0 || len(ids.AlipayPlusSpecial) == 0 || len(ids.Ingenico) == 0 {
		t.Fatalf("ids %+v", ids)
	}
	if got := postAlipay(t, ts, acceptPath, alipayMerchant(t), nil, map[string]string{"disputeId": ids.Alipay[0]}); got.Result.ResultCode != "SUCCESS" {
		t.Fatalf("alipay sample: %+v", got.Result)
	}
	if got := postAlipay(t, ts, escalatePath, apMerchant(t), nil, escalation("sample", ids.AlipayPlusPayments[0])); got.Result.ResultCode != "SUCCESS" {
		t.Fatalf("alipayplus sample: %+v", got.Result)
	}
	if env := dapiPost(t, ts, "/dispute-api/v1/abandon", map[string]string{"disputes_id": ids.DisputeAPI[0]}); env.Code != "200" {
		t.Fatalf("disputeapi sample: %+v", env)
	}
	if r := ingDoRaw(t, ts.URL, disputePath(ids.Ingenico[0], "submit"), "sample"); r != "OK" {
		t.Fatalf("ingenico sample: %s", r)
	}
	if len(s.Effects()) != 4 {
		t.Fatalf("effects %+v", s.Effects())
	}
}

func TestGeneratedPopulationIsDeterministic(t *testing.T) {
	a := New(Config{Disputes: 300, Seed: 7, Now: func() time.Time { return fixedNow }}).Disputes()
	b := New(Config{Disputes: 300, Seed: 7, Now: func() time.Time { return fixedNow }}).Disputes()
	c := New(Config{Disputes: 300, Seed: 8, Now: func() time.Time { return fixedNow }}).Disputes()
	if len(a) != 300 {
		t.Fatalf("%d disputes", len(a))
	}
	same, statuses := true, map[string]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 twice differs at %d", i)
		}
		same = same && a[i] == c[i]
		statuses[a[i].Status]++
	}
	if same {
		t.Fatal("seeds 7 and 8 gave the same population")
	}
	for _, st := range []string{StatusPending, StatusClose, StatusNoAction} {
		if statuses[st] == 0 {
			t.Fatalf("no %s dispute in %v", st, statuses)
		}
	}
}

func TestTickAndRun(t *testing.T) {
	s, _, c := newTestServer(t, Config{Disputes: 200, Tick: time.Millisecond})
	c.t = fixedNow.Add(time.Hour)
	before := s.Disputes()
	s.Tick()
	after := s.Disputes()
	if len(after) != len(before)+2 || after[0].Disputes.DisputesDate != FormatTime(c.t) {
		t.Fatalf("tick: %d -> %d, newest %s", len(before), len(after), after[0].Disputes.DisputesDate)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Disputes()) < len(after)+2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling an external condition with a deadline
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(s.Disputes()) < len(after)+2 {
		t.Fatal("Run did not tick")
	}
}
