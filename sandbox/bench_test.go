package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

const benchDisputes = 100000

func benchServer(b *testing.B) *Server {
	b.Helper()
	return New(Config{Disputes: benchDisputes, Now: func() time.Time { return fixedNow }})
}

func scanBody(page int) []byte {
	return fmt.Appendf(nil, `{"from_created_at":"%s","to_created_at":"%s","type":"dispute","page":"%d","limit":"100"}`,
		FormatTime(fixedNow.Add(-populationWindow-time.Hour)), FormatTime(fixedNow), page)
}

// BenchmarkFullScan serves 100 000 disputes and scans them at limit 100
// through an httptest server with a client that decodes every page, as the
// poller does. It reports the process CPU per scan (client, HTTP stack and
// sandbox together) and the wall time spent inside the sandbox's handler, an
// upper bound of its share (it includes waiting for the socket and the
// scheduler on a shared machine). BenchmarkListHandler gives the sandbox's
// own CPU for the same scan; their ratio is the sandbox's CPU share.
func BenchmarkFullScan(b *testing.B) {
	s := benchServer(b)
	var inHandler atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.ServeHTTP(w, r)
		inHandler.Add(int64(time.Since(start)))
	}))
	defer ts.Close()
	hc := ts.Client()
	scan := func() int {
		n := 0
		for page := 1; ; page++ {
			req, _ := http.NewRequest("POST", ts.URL+"/dispute-api/v1/list", bytes.NewReader(scanBody(page)))
			req.Header.Set("Authorization", "Bearer "+TestKeys.DisputeAPIToken)
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var env struct {
				Code string   `json:"code"`
				Data listData `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&env)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || env.Code != "200" {
				b.Fatalf("page %d: %v %s", page, err, env.Code)
			}
			if len(env.Data.Lists) == 0 {
				return n
			}
			n += len(env.Data.Lists)
		}
	}
	if n := scan(); n != benchDisputes { // warm: every record's JSON cached once
		b.Fatalf("scanned %d", n)
	}
	inHandler.Store(0)
	b.ResetTimer()
	start, cpu := time.Now(), processCPU()
	for b.Loop() {
		scan()
	}
	total, cpu := time.Since(start), processCPU()-cpu
	b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/scan")
	b.ReportMetric(float64(inHandler.Load())/float64(b.N)/1e6, "handler-wall-ms/scan")
	b.ReportMetric(100*float64(inHandler.Load())/float64(total), "handler-wall-%")
}

// BenchmarkListHandler is the sandbox alone: the same full scan straight
// into the handler, no network and no client decoding.
func BenchmarkListHandler(b *testing.B) {
	s := benchServer(b)
	bodies := make([][]byte, benchDisputes/100+1)
	for i := range bodies {
		bodies[i] = scanBody(i + 1)
	}
	cpu := processCPU()
	for b.Loop() {
		for _, body := range bodies {
			req := httptest.NewRequest("POST", "/dispute-api/v1/list", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+TestKeys.DisputeAPIToken)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/1e6, "cpu-ms/scan")
}

// BenchmarkNew is the cost of generating the 100 000-dispute population.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		benchServer(b)
	}
}
