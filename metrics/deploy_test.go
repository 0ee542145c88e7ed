package metrics

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/internal/promexpr"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
)

const (
	dashboardFile = "../deploy/grafana/dashboards/disputesync.json"
	rulesFile     = "../deploy/prometheus/rules/disputesync.rules.yml"
)

// TestDeployNamesOnlyExportedMetrics checks that every PromQL expression of
// the dashboard and the alert rules names only metrics that a scrape of
// Handler returns (or Prometheus' own up).
func TestDeployNamesOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := scrapeNames(t)

	exprs := map[string][]string{
		dashboardFile: dashboardExprs(t, dashboardFile),
		rulesFile:     ruleExprs(t, rulesFile),
	}
	for file, list := range exprs {
		// Guards the extraction itself: a parser that finds nothing would
		// make this test pass vacuously.
		if len(list) < 10 {
			t.Fatalf("%s: only %d expressions extracted", file, len(list))
		}
		for _, e := range list {
			names := metricNames(e)
			if len(names) == 0 {
				t.Errorf("%s: no metric name found in %q", file, e)
			}
			for _, n := range names {
				if n != "up" && !exported[n] {
					t.Errorf("%s: %s is not exported (expression %q)", file, n, e)
				}
			}
		}
	}
}

// scrapeNames returns the series names a scrape of Handler exposes after
// every vector of Metrics was touched once and the consumer collector
// watches a real consumer. Histograms expose _bucket, _sum and _count.
func scrapeNames(t *testing.T) map[string]bool {
	t.Helper()
	env := testenv.New(t)
	env.Setup(t, topology.Options{})
	m := New()
	m.WatchConsumers(env.JS, []ConsumerTarget{{Stream: env.Names.ActionsStream(), Consumer: env.Names.WorkerConsumer()}})
	touchAll(t, m)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		names[name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"disputesync_consumer_pending_messages", "disputesync_provider_request_duration_seconds_bucket", "go_goroutines"} {
		if !names[want] {
			t.Fatalf("the scrape lacks %s; got %v", want, slices.Sorted(func(yield func(string) bool) {
				for n := range names {
					if !yield(n) {
						return
					}
				}
			}))
		}
	}
	return names
}

// touchAll creates one child of every vector field of m, whatever its label
// count, so that a vector added later is covered without editing this test.
func touchAll(t *testing.T, m *Metrics) {
	t.Helper()
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanInterface() {
			continue
		}
		var touched bool
		switch vec := f.Interface().(type) {
		case *prometheus.CounterVec:
			touched = tryLabels(func(l []string) error { _, err := vec.GetMetricWithLabelValues(l...); return err })
		case *prometheus.GaugeVec:
			touched = tryLabels(func(l []string) error { _, err := vec.GetMetricWithLabelValues(l...); return err })
		case *prometheus.HistogramVec:
			touched = tryLabels(func(l []string) error {
				o, err := vec.GetMetricWithLabelValues(l...)
				if err == nil {
					o.Observe(0.2)
				}
				return err
			})
		default:
			continue
		}
		if !touched {
			t.Fatalf("could not touch %s", v.Type().Field(i).Name)
		}
	}
}

func tryLabels(get func([]string) error) bool {
	for n := 0; n <= 8; n++ {
		if get(slices.Repeat([]string{"x"}, n)) == nil {
			return true
		}
	}
	return false
}

func dashboardExprs(t *testing.T, file string) []string {
	t.Helper()
	exprs, err := promexpr.DashboardExprs(file)
	if err != nil {
		t.Fatal(err)
	}
	return exprs
}

func ruleExprs(t *testing.T, file string) []string {
	t.Helper()
	exprs, err := promexpr.RuleExprs(file)
	if err != nil {
		t.Fatal(err)
	}
	return exprs
}

func parseRuleExprs(t *testing.T, r io.Reader) []string {
	t.Helper()
	exprs, err := promexpr.ParseRuleExprs(r)
	if err != nil {
		t.Fatal(err)
	}
	return exprs
}

func metricNames(expr string) []string { return promexpr.MetricNames(expr) }

func TestMetricNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		want []string
	}{
		{`up{job="disputesync"} == 0 or disputesync_ready == 0`, []string{"up", "disputesync_ready"}},
		{`sum by (provider) (rate(a_total{result!~"ok|refused"}[5m])) / sum by (provider) (rate(a_total[5m])) > 0.05`, []string{"a_total", "a_total"}},
		{`label_replace(sum by (provider) (increase(x[6h])) > 0, "source", "$1", "provider", "(.*)")`, []string{"x"}},
		{`x unless x offset 10m`, []string{"x", "x"}},
		{`time() - max by (source) (y) > 3 * 60`, []string{"y"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))`, []string{"h_bucket"}},
		{`a >= on (stream, consumer) group_left () (b > 0)`, []string{"a", "b"}},
		{`clamp_min(sum(rate(c[5m])), 1e-3)`, []string{"c"}},
	}
	for _, tc := range tests {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestParseRuleExprs(t *testing.T) {
	t.Parallel()
	in := `groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        for: 1m
      - alert: B
        expr: |
          sum(x)
          > 0
        labels:
          severity: warning
      - record: c
        expr: "rate(y{a=\"b\"}[5m])"
`
	got := parseRuleExprs(t, strings.NewReader(in))
	want := []string{"up == 0", "sum(x) > 0", `rate(y{a=\"b\"}[5m])`}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDeployFilesExist(t *testing.T) {
	t.Parallel()
	for _, f := range []string{
		"../deploy/grafana/provisioning/dashboards/disputesync.yaml",
		"../deploy/grafana/provisioning/datasources/prometheus.yaml",
		"../deploy/prometheus/prometheus.yml",
		"../deploy/prometheus/rules/disputesync.rules.test.yml",
	} {
		if _, err := os.Stat(filepath.FromSlash(f)); err != nil {
			t.Error(err)
		}
	}
}
