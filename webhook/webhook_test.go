package webhook_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/disputesync/disputesync/internal/alipaysig"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/poller"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/webhook"
)

// kinds builds one valid notification per endpoint from the sandbox.
var kinds = []struct {
	provider string
	path     string
	build    func(t *testing.T, sb *sandbox.Server) sandbox.Notification
	want     []string // source/type of the events it gives, in order
	success  string   // the success answer of docs/contract.md section 6
}{
	{
		provider: webhook.ProviderDisputeAPI, path: webhook.PathDisputeAPINotify,
		build: func(t *testing.T, sb *sandbox.Server) sandbox.Notification {
			id := sb.CreateDispute(sandbox.Record{}).Disputes.DisputesID
			n, err := sb.DisputeAPINotification(id, "")
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
		want:    []string{"disputeapi/dispute.opened", "disputeapi/dispute.notified"},
		success: `{"code":"200","msg":"SUCCESS"}`,
	},
	{
		provider: webhook.ProviderAlipay, path: webhook.PathAlipayNotifyDispute,
		build: func(t *testing.T, sb *sandbox.Server) sandbox.Notification {
			n, err := sb.AlipayNotification(sb.CreateAlipayDispute(sandbox.AlipayDispute{}).DisputeID, webhook.AlipayDefenseDueAlert)
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
		want:    []string{"alipay/dispute.notified"},
		success: `{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}`,
	},
	{
		// An escalation disputesync did not start: still accepted (the
		// ledger knows nothing to close).
		provider: webhook.ProviderAlipayPlus, path: webhook.PathAlipayPlusResponseEscalation,
		build: func(*testing.T, *sandbox.Server) sandbox.Notification {
			return sandbox.Notification{Kind: sandbox.NotifyAlipayPlus, DisputeID: "2026000000000000000000000001", Type: webhook.RefundRefuse,
				Body: json.RawMessage(`{"disputeRequestId":"console-1","disputeId":"2026000000000000000000000001","refundType":"REFUSE_REFUND","remarks":"no refund"}`)}
		},
		want:    []string{"alipayplus/dispute.notified"},
		success: `{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}`,
	},
}

// TestValidNotificationOnce: each endpoint gives its events once, however
// often the provider sends the notification.
// Without Redis JetStream's answer (within its window) tells the repeat.
func TestValidNotificationOnce(t *testing.T) {
	for _, k := range kinds {
		for _, withRedis := range []bool{true, false} {
			t.Run(k.provider+map[bool]string{true: "", false: "/no-redis"}[withRedis], func(t *testing.T) {
				t.Parallel()
				b := newBundle(t, topology.Options{}, func(c *webhook.Config) {
					if !withRedis {
						c.Redis = nil
					}
				})
				n := k.build(t, b.sb)
				for i := range 5 {
					if d := b.once(t, n); !d.Delivered || d.LastStatus != http.StatusOK {
						t.Fatalf("delivery %d: %+v", i+1, d)
					}
				}
				evs := events(t, b.js, b.names)
				if got := types(evs); !slices.Equal(got, k.want) {
					t.Fatalf("events %v, want %v", got, k.want)
				}
				last := evs[len(evs)-1]
				var data poller.NotifiedData
				if err := json.Unmarshal(last.Data, &data); err != nil {
					t.Fatal(err)
				}
				var gotN, wantN any
				_ = json.Unmarshal(data.Notification, &gotN)
				_ = json.Unmarshal(n.Body, &wantN)
				if last.Subject != n.DisputeID || data.DisputeID != n.DisputeID || data.NotificationType == "" || !reflect.DeepEqual(gotN, wantN) {
					t.Fatalf("notified event %+v data %+v, want subject %s and the body", last, data, n.DisputeID)
				}
				if a, d := count(b.m, k.provider, webhook.ResultAccepted), count(b.m, k.provider, webhook.ResultDuplicate); a != 1 || d != 4 {
					t.Fatalf("accepted %d duplicate %d, want 1 and 4", a, d)
				}
				// The answer itself, byte for byte (a sixth, repeated, delivery).
				resp, body := post(t, b.url+k.path, n.Body, signedHeaders(t, b.keys, k.provider, k.path, n.Body))
				if resp.StatusCode != http.StatusOK || string(body) != k.success {
					t.Fatalf("answer HTTP %d %s, want 200 %s", resp.StatusCode, body, k.success)
				}
				if k.provider == webhook.ProviderAlipayPlus {
					err := alipaysig.Verify(b.keys.alipayPlusMerchantPub, http.MethodPost, k.path, sandbox.TestKeys.AlipayPlusClientID,
						resp.Header.Get("Response-Time"), body, resp.Header.Get("Signature"))
					if err != nil || resp.Header.Get("Client-Id") != sandbox.TestKeys.AlipayPlusClientID {
						t.Fatalf("answer not signed with the merchant key: %v", err)
					}
				}
				if got := types(events(t, b.js, b.names)); !slices.Equal(got, k.want) {
					t.Fatalf("events after the sixth delivery %v", got)
				}
			})
		}
	}
}

// TestUnauthenticated: forged, unsigned or tampered notifications get 401
// and publish nothing.
func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	b := newBundle(t, topology.Options{}, nil)
	k := sandbox.TestKeys
	dapiBody := func() []byte {
		n, err := b.sb.DisputeAPINotification(b.sb.CreateDispute(sandbox.Record{}).Disputes.DisputesID, "")
		if err != nil {
			t.Fatal(err)
		}
		return n.Body
	}()
	alipayBody := []byte(`{"disputeId":"A1","paymentRequestId":"P1","disputeNotificationType":"DISPUTE_CREATED"}`)
	apBody := []byte(`{"disputeRequestId":"r1","disputeId":"E1","refundType":"ACCEPT_REFUND"}`)
	tampered := func(b []byte) []byte { return []byte(strings.Replace(string(b), `"`, `"x`, 1)) }

	cases := []struct {
		name     string
		provider string
		path     string
		body     []byte
		header   http.Header
	}{
		{"disputeapi unsigned", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, dapiBody, nil},
		{"disputeapi wrong secret", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, dapiBody,
			http.Header{"X-Dispute-Signature": {webhook.SignDisputeAPI([]byte("guess"), dapiBody)}}},
		{"disputeapi tampered", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, tampered(dapiBody),
			http.Header{"X-Dispute-Signature": {webhook.SignDisputeAPI([]byte(k.DisputeAPIWebhookSecret), dapiBody)}}},
		{"disputeapi not hex", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, dapiBody,
			http.Header{"X-Dispute-Signature": {"sha256=zz"}}},
		{"alipay unsigned", webhook.ProviderAlipay, webhook.PathAlipayNotifyDispute, alipayBody, nil},
		{"alipay signed by another key", webhook.ProviderAlipay, webhook.PathAlipayNotifyDispute, alipayBody,
			alipayHeaders(t, b.keys.alipayPlusProviderPriv, webhook.PathAlipayNotifyDispute, k.AlipayClientID, alipayBody)},
		{"alipay other client", webhook.ProviderAlipay, webhook.PathAlipayNotifyDispute, alipayBody,
			alipayHeaders(t, b.keys.alipayProviderPriv, webhook.PathAlipayNotifyDispute, "SOMEONE", alipayBody)},
		{"alipay signed for another path", webhook.ProviderAlipay, webhook.PathAlipayNotifyDispute, alipayBody,
			alipayHeaders(t, b.keys.alipayProviderPriv, "/elsewhere", k.AlipayClientID, alipayBody)},
		{"alipay tampered", webhook.ProviderAlipay, webhook.PathAlipayNotifyDispute, tampered(alipayBody),
			alipayHeaders(t, b.keys.alipayProviderPriv, webhook.PathAlipayNotifyDispute, k.AlipayClientID, alipayBody)},
		{"alipayplus unsigned", webhook.ProviderAlipayPlus, webhook.PathAlipayPlusResponseEscalation, apBody, nil},
		{"alipayplus signed by the merchant key", webhook.ProviderAlipayPlus, webhook.PathAlipayPlusResponseEscalation, apBody,
			alipayHeaders(t, b.keys.alipayPlusMerchantPriv, webhook.PathAlipayPlusResponseEscalation, k.AlipayPlusClientID, apBody)},
		{"alipayplus tampered", webhook.ProviderAlipayPlus, webhook.PathAlipayPlusResponseEscalation, tampered(apBody),
			alipayHeaders(t, b.keys.alipayPlusProviderPriv, webhook.PathAlipayPlusResponseEscalation, k.AlipayPlusClientID, apBody)},
	}
	want := map[string]int{}
	for _, c := range cases {
		resp, body := post(t, b.url+c.path, c.body, c.header)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d %s, want 401", c.name, resp.StatusCode, body)
		}
		if c.provider == webhook.ProviderAlipayPlus {
			// Even a refusal is signed with the merchant key.
			err := alipaysig.Verify(b.keys.alipayPlusMerchantPub, http.MethodPost, c.path, k.AlipayPlusClientID,
				resp.Header.Get("Response-Time"), body, resp.Header.Get("Signature"))
			if err != nil || !strings.Contains(string(body), `"INVALID_SIGNATURE"`) {
				t.Errorf("%s: answer %s not signed (%v)", c.name, body, err)
			}
		}
		want[c.provider]++
	}
	if evs := events(t, b.js, b.names); len(evs) != 0 {
		t.Fatalf("unauthenticated notifications published %v", types(evs))
	}
	for p, n := range want {
		if got := count(b.m, p, webhook.ResultUnauthenticated); got != n {
			t.Errorf("%s unauthenticated = %d, want %d", p, got, n)
		}
		if got := count(b.m, p, webhook.ResultAccepted); got != 0 {
			t.Errorf("%s accepted = %d", p, got)
		}
	}
}

// TestInvalid: authentic but malformed bodies get 400 and publish nothing.
func TestInvalid(t *testing.T) {
	t.Parallel()
	b := newBundle(t, topology.Options{}, func(c *webhook.Config) { c.MaxBodyBytes = 4096 })
	k := sandbox.TestKeys
	dapi := func(body string) http.Header {
		return http.Header{"X-Dispute-Signature": {webhook.SignDisputeAPI([]byte(k.DisputeAPIWebhookSecret), []byte(body))}}
	}
	big := `{"notify_id":"n1","event_code":"CHARGEBACK","data":{"pad":"` + strings.Repeat("x", 5000) + `"}}`
	cases := []struct {
		name, provider, path, body string
		status                     int
	}{
		{"disputeapi not JSON", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, `notify_id=1`, 400},
		{"disputeapi number id", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, `{"notify_id":1,"event_code":"CHARGEBACK","data":{}}`, 400},
		{"disputeapi no data", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, `{"notify_id":"n1","event_code":"CHARGEBACK"}`, 400},
		{"disputeapi record without id", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify,
			`{"notify_id":"n1","event_code":"CHARGEBACK","data":{"status":"pending","disputes":{"disputes_date":"2026-04-02T16:28:09+08:00"}}}`, 400},
		{"disputeapi trailing data", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, `{"notify_id":"n1"} {}`, 400},
		{"disputeapi too large", webhook.ProviderDisputeAPI, webhook.PathDisputeAPINotify, big, 413},
		{"alipay no type", webhook.ProviderAlipay, webhook.PathAlipayNotifyDispute, `{"disputeId":"A1"}`, 400},
		{"alipay empty optional", webhook.ProviderAlipay, webhook.PathAlipayNotifyDispute, `{"disputeId":"A1","disputeNotificationType":"DISPUTE_CREATED","paymentRequestId":""}`, 400},
		{"alipay bad time", webhook.ProviderAlipay, webhook.PathAlipayNotifyDispute, `{"disputeId":"A1","disputeNotificationType":"DEFENSE_DUE_ALERT","defenseDueTime":"tomorrow"}`, 400},
		{"alipayplus numeric amount", webhook.ProviderAlipayPlus, webhook.PathAlipayPlusResponseEscalation,
			`{"disputeRequestId":"r1","disputeId":"E1","refundType":"ACCEPT_REFUND","refundAmount":{"currency":"USD","value":100}}`, 400},
		{"alipayplus no disputeId", webhook.ProviderAlipayPlus, webhook.PathAlipayPlusResponseEscalation, `{"disputeRequestId":"r1","refundType":"ACCEPT_REFUND"}`, 400},
	}
	for _, c := range cases {
		var h http.Header
		switch c.provider {
		case webhook.ProviderDisputeAPI:
			h = dapi(c.body)
		case webhook.ProviderAlipay:
			h = alipayHeaders(t, b.keys.alipayProviderPriv, c.path, k.AlipayClientID, []byte(c.body))
		default:
			h = alipayHeaders(t, b.keys.alipayPlusProviderPriv, c.path, k.AlipayPlusClientID, []byte(c.body))
		}
		resp, body := post(t, b.url+c.path, []byte(c.body), h)
		if resp.StatusCode != c.status {
			t.Errorf("%s: HTTP %d %s, want %d", c.name, resp.StatusCode, body, c.status)
		}
	}
	if evs := events(t, b.js, b.names); len(evs) != 0 {
		t.Fatalf("invalid notifications published %v", types(evs))
	}
	if got := count(b.m, webhook.ProviderDisputeAPI, webhook.ResultInvalid); got != 6 {
		t.Errorf("disputeapi invalid = %d, want 6", got)
	}
}

// TestPushAndPollOneState: a state seen by the poller and pushed by the
// PSP (in either order) gives one state event; every push its notified one.
func TestPushAndPollOneState(t *testing.T) {
	t.Parallel()
	b := newBundle(t, topology.Options{}, nil)
	ctx := testenv.Context(t)
	poll := func(id string) {
		t.Helper()
		pr, raw := sandboxRecord(t, b.sb, id)
		if _, err := b.det.Observe(ctx, webhook.ProviderDisputeAPI, poller.ListDispute, pr, raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	push := func(id string) {
		t.Helper()
		n, err := b.sb.DisputeAPINotification(id, "")
		if err != nil {
			t.Fatal(err)
		}
		if d := b.once(t, n); !d.Delivered {
			t.Fatalf("push: %+v", d)
		}
	}
	id := b.sb.CreateDispute(sandbox.Record{}).Disputes.DisputesID
	poll(id) // poll first
	push(id)
	b.sb.CloseDispute(id)
	push(id) // push first
	poll(id)
	push(id) // the same state pushed again under a new notify_id
	want := []string{"disputeapi/dispute.opened", "disputeapi/dispute.notified", "disputeapi/dispute.closed",
		"disputeapi/dispute.notified", "disputeapi/dispute.notified"}
	if got := types(events(t, b.js, b.names)); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// TestRepeatAfterDuplicateWindow: past JetStream's duplicate window, the
// Redis marker still recognises a repeat; without it only the state event
// is protected (by the snapshot) and dispute.notified comes again.
func TestRepeatAfterDuplicateWindow(t *testing.T) {
	for _, tc := range []struct {
		name      string
		withRedis bool
		want      []string
	}{
		{"redis marker", true, []string{"disputeapi/dispute.opened", "disputeapi/dispute.notified"}},
		{"window only", false, []string{"disputeapi/dispute.opened", "disputeapi/dispute.notified", "disputeapi/dispute.notified"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const window = 200 * time.Millisecond
			b := newBundle(t, topology.Options{EventsDuplicates: window}, func(c *webhook.Config) {
				if !tc.withRedis {
					c.Redis = nil
				}
			})
			n := kinds[0].build(t, b.sb)
			if d := b.once(t, n); !d.Delivered {
				t.Fatalf("first: %+v", d)
			}
			// Let JetStream forget the ids: a time, not an event. The server
			// purges them on a timer that fires late on a loaded machine, so
			// the wait is ten windows, not just over one.
			time.Sleep(10 * window)
			if d := b.once(t, n); !d.Delivered {
				t.Fatalf("repeat: %+v", d)
			}
			if got := types(events(t, b.js, b.names)); !slices.Equal(got, tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRoutes: unconfigured endpoints are not served; only POST is.
func TestRoutes(t *testing.T) {
	t.Parallel()
	b := newBundle(t, topology.Options{}, func(c *webhook.Config) { c.AlipayPublicKey = nil })
	resp, _ := post(t, b.url+webhook.PathAlipayNotifyDispute, []byte(`{}`), nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unconfigured alipay endpoint: HTTP %d, want 404", resp.StatusCode)
	}
	r, err := http.Get(b.url + webhook.PathDisputeAPINotify)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: HTTP %d, want 405", r.StatusCode)
	}
	if _, err := webhook.New(webhook.Config{Detector: b.det}); err == nil {
		t.Error("New without any credentials succeeded")
	}
}

// TestSandboxNotifyControl drives the sandbox's control endpoint as `dev`
// mounts it: a waited delivery, a background one, and the list.
func TestSandboxNotifyControl(t *testing.T) {
	t.Parallel()
	b := newBundle(t, topology.Options{}, nil)
	ctl := httptest.NewServer(b.sb.NotifyHandler(b.url))
	t.Cleanup(ctl.Close)
	alipayID := b.sb.CreateAlipayDispute(sandbox.AlipayDispute{}).DisputeID
	dapiID := b.sb.CreateDispute(sandbox.Record{}).Disputes.DisputesID

	resp, body := post(t, ctl.URL, []byte(`{"kind":"alipay","disputeId":"`+alipayID+`","wait":true}`), nil)
	var d sandbox.Delivery
	if err := json.Unmarshal(body, &d); err != nil || resp.StatusCode != http.StatusOK || !d.Delivered || d.Type != "DISPUTE_CREATED" {
		t.Fatalf("waited delivery: HTTP %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, ctl.URL, []byte(`{"kind":"disputeapi","disputeId":"`+dapiID+`","type":"RETRIEVAL_REQUEST"}`), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("background delivery: HTTP %d %s", resp.StatusCode, body)
	}
	b.sb.WaitNotifications()
	for _, bad := range []string{`{"kind":"fax","disputeId":"x"}`, `{"kind":"alipay","disputeId":"nope"}`, `{"kind":"alipay","disputeId":"` + alipayID + `","url":"not a url"}`} {
		if resp, body := post(t, ctl.URL, []byte(bad), nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
	r, err := http.Get(ctl.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var list []sandbox.Delivery
	if err := json.NewDecoder(r.Body).Decode(&list); err != nil || len(list) != 2 || !list[0].Delivered || !list[1].Delivered {
		t.Fatalf("deliveries %+v %v", list, err)
	}
	want := []string{"alipay/dispute.notified", "disputeapi/dispute.opened", "disputeapi/dispute.notified"}
	if got := types(events(t, b.js, b.names)); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// TestRunShutdown: Serve answers on its listener and returns cleanly when
// its context ends; a Server built from JetStream alone makes its own
// detector.
func TestRunShutdown(t *testing.T) {
	t.Parallel()
	b := newBundle(t, topology.Options{}, nil)
	cfg := config(t, b.keys, nil, b.m)
	cfg.JS, cfg.Names = b.js, b.names
	srv, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	n := kinds[1].build(t, b.sb)
	if d := b.sb.SendNotification(ctx, n, "http://"+ln.Addr().String(), sandbox.NotifyPolicy{MaxAttempts: 1}); !d.Delivered {
		t.Fatalf("delivery: %+v", d)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if got := types(events(t, b.js, b.names)); !slices.Equal(got, kinds[1].want) {
		t.Fatalf("events %v", got)
	}
}

// TestPollPageOlderThanPush: a poll page requested before a pushed change
// and observed after it is stale, even when the page request and the push
// are less than a millisecond apart (issue 12: the push's receipt time was
// kept in milliseconds, so such a page looked newer than the push and its
// older state was published again: A, B, A, B).
func TestPollPageOlderThanPush(t *testing.T) {
	t.Parallel()
	base := time.Now().Truncate(time.Millisecond)
	pageAt := base.Add(400 * time.Microsecond)     // the poll page request
	receivedAt := base.Add(800 * time.Microsecond) // the push, after the change
	b := newBundle(t, topology.Options{}, func(c *webhook.Config) {
		c.Now = func() time.Time { return receivedAt }
	})
	ctx := testenv.Context(t)
	observe := func(rec poller.Record, raw json.RawMessage, asOf time.Time) {
		t.Helper()
		if _, err := b.det.ObserveAt(ctx, webhook.ProviderDisputeAPI, poller.ListDispute, rec, raw, asOf, nil); err != nil {
			t.Fatal(err)
		}
	}

	id := b.sb.CreateDispute(sandbox.Record{}).Disputes.DisputesID
	opened, openedRaw := sandboxRecord(t, b.sb, id)
	observe(opened, openedRaw, base.Add(-time.Second)) // an earlier cycle
	b.sb.CloseDispute(id)                              // after the page was read
	n, err := b.sb.DisputeAPINotification(id, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := b.once(t, n); !d.Delivered {
		t.Fatalf("push: %+v", d)
	}
	observe(opened, openedRaw, pageAt) // the page, observed after the push
	closed, closedRaw := sandboxRecord(t, b.sb, id)
	observe(closed, closedRaw, receivedAt.Add(time.Second)) // the next cycle
	want := []string{"disputeapi/dispute.opened", "disputeapi/dispute.closed", "disputeapi/dispute.notified"}
	if got := types(events(t, b.js, b.names)); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}
