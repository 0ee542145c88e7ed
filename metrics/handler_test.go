package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func TestHandlerNegotiatesFormats(t *testing.T) {
	t.Parallel()
	m := New()
	m.ObserveProvider("disputeapi", "accept", "ok", 200*time.Millisecond)
	m.SetReady("worker", true)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	get := func(t *testing.T, accept string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	tests := []struct {
		name, accept, wantType, wantBody string
	}{
		{"text", "", "text/plain; version=0.0.4", "disputesync_ready{component=\"worker\"} 1\n"},
		{"openmetrics", "application/openmetrics-text; version=1.0.0", "application/openmetrics-text", "# EOF\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(t, tc.accept)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Fatalf("Content-Type %q, want %q", ct, tc.wantType)
			}
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("body lacks %q:\n%s", tc.wantBody, b)
			}
		})
	}

	// Prometheus with native histograms asks for protobuf; the provider
	// histogram then carries native buckets as well as the classic ones.
	t.Run("protobuf native histogram", func(t *testing.T) {
		resp := get(t, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
		dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); err != nil {
				if errors.Is(err, io.EOF) {
					t.Fatal("no disputesync_provider_request_duration_seconds in the protobuf scrape")
				}
				t.Fatal(err)
			}
			if mf.GetName() != "disputesync_provider_request_duration_seconds" {
				continue
			}
			h := mf.GetMetric()[0].GetHistogram()
			if len(h.GetPositiveSpan()) == 0 || len(h.GetBucket()) != len(ProviderBuckets) {
				t.Fatalf("want native spans and %d classic buckets, got spans %v buckets %d",
					len(ProviderBuckets), h.GetPositiveSpan(), len(h.GetBucket()))
			}
			return
		}
	})
}

func TestPresetExportsZeroSeries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		k      Known
		metric string
		want   int
	}{
		{"idempotency preset by New", Known{}, "disputesync_idempotency_total", 4},
		{"nothing known", Known{}, "disputesync_actions_total", 0},
		{"actions", Known{Actions: map[string][]string{"disputeapi": {"accept", "defend"}, "alipay": {"acceptDispute"}}},
			"disputesync_actions_total", 9},
		{"dead letters", Known{Actions: map[string][]string{"disputeapi": {"accept", "defend"}}, DLQReasons: []string{"invalid", "rule"}},
			"disputesync_dlq_messages_total", 4},
		{"webhooks", Known{WebhookProviders: []string{"alipay", "disputeapi"}}, "disputesync_webhook_notifications_total", 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New()
			m.Preset(tc.k)
			if n := testutil.CollectAndCount(m.Registry, tc.metric); n != tc.want {
				t.Fatalf("%d %s series, want %d", n, tc.metric, tc.want)
			}
			mfs, err := m.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != tc.metric {
					continue
				}
				for _, s := range mf.GetMetric() {
					if v := s.GetCounter().GetValue(); v != 0 {
						t.Fatalf("preset series at %g, want 0", v)
					}
				}
			}
		})
	}
}

func TestActionsFromKeys(t *testing.T) {
	t.Parallel()
	got := ActionsFromKeys([]string{"alipay.accept_dispute", "alipay.supply_defense_document", "ingenico.accept", "bad", ".x", "y."})
	want := map[string][]string{"alipay": {"accept_dispute", "supply_defense_document"}, "ingenico": {"accept"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
