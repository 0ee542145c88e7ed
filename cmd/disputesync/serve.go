package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/internal/health"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
)

// readiness answers /readyz: NATS connected, Redis answering, streams
// there, and each role able to do its work as the role itself reports it on
// the board (a poller whose source stopped or that cannot hold its lease, a
// role refused a subject or a Redis command). Server checks are cached for a
// second so probes cannot hammer the servers; the board is read fresh.
type readiness struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	rdb   redis.UniversalClient
	names topology.Names
	m     *metrics.Metrics
	board *health.Board

	mu      sync.Mutex
	checked time.Time
	last    map[string]string
}

func (r *readiness) check(ctx context.Context) (bool, map[string]string) {
	res := maps.Clone(r.servers(ctx))
	maps.Copy(res, r.board.Status())
	return ready(res), res
}

// servers checks NATS, Redis and the streams, at most once a second.
func (r *readiness) servers(ctx context.Context) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < time.Second && r.last != nil {
		return r.last
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res := map[string]string{"nats": "ok", "redis": "ok", "streams": "ok"}
	if r.nc == nil || !r.nc.IsConnected() {
		res["nats"] = "not connected"
	}
	if r.rdb != nil {
		if err := r.rdb.Ping(ctx).Err(); err != nil {
			res["redis"] = "unavailable"
		}
	}
	if res["nats"] == "ok" {
		for _, s := range []string{r.names.EventsStream(), r.names.ActionsStream(), r.names.ResultsStream(), r.names.DLQStream()} {
			if _, err := r.js.Stream(ctx, s); err != nil {
				res["streams"] = "missing " + s
				break
			}
		}
		if _, err := r.js.Consumer(ctx, r.names.ActionsStream(), r.names.WorkerConsumer()); err != nil && res["streams"] == "ok" {
			res["streams"] = "missing consumer " + r.names.WorkerConsumer()
		}
	} else {
		res["streams"] = "unknown"
	}
	r.checked, r.last = time.Now(), res
	for component, v := range res {
		r.m.SetReady(component, v == "ok")
	}
	return res
}

// watch keeps disputesync_ready current between probes.
func (r *readiness) watch(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		r.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func ready(res map[string]string) bool {
	for _, v := range res {
		if v != "ok" {
			return false
		}
	}
	return true
}

// serveMetrics serves /metrics, /healthz and /readyz until ctx ends.
func serveMetrics(ctx context.Context, addr string, m *metrics.Metrics, r *readiness, log *slog.Logger) (string, func() error, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		ok, res := r.check(req.Context())
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "checks": res})
	})
	return serveHTTP(ctx, addr, mux, log, "metrics")
}

// serveHTTP listens on addr and serves h until ctx ends; wait returns
// when the server has shut down.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger, what string) (string, func() error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() {
		err := srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Debug("listening", "what", what, "addr", l.Addr().String())
	return l.Addr().String(), func() error { return <-errc }, nil
}
