// Package embedded runs the real nats-server (as a library) and a
// Redis-protocol server in process, for "disputesync dev" and for tests on
// machines without the services.
package embedded

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// NATSOptions configure an embedded nats-server.
type NATSOptions struct {
	Host     string // default 127.0.0.1
	Port     int    // 0 picks a free port
	StoreDir string // JetStream file store; required
	// MaxPayload raises the server's message limit (default 1 MiB).
	MaxPayload int32
	// Problems, if set, receives the server's warnings and errors. The
	// server's API answers replace some causes by a generic text (a failed
	// stream store is answered "error creating store for stream", 10049);
	// its log line is the only place that says why.
	Problems func(line string)
}

// NATS is a running embedded nats-server with JetStream.
type NATS struct {
	srv *server.Server
}

// StartNATS starts a nats-server with JetStream on opts.StoreDir and waits
// until it accepts connections.
func StartNATS(opts NATSOptions) (*NATS, error) {
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	sopts := &server.Options{
		ServerName: "disputesync-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: opts.MaxPayload,
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if opts.Problems != nil {
		srv.SetLogger(problemLogger(opts.Problems), false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 10s (port %d taken?)", opts.Port)
	}
	return &NATS{srv: srv}, nil
}

// problemLogger is a server.Logger passing on warnings and errors only.
type problemLogger func(line string)

func (l problemLogger) Noticef(string, ...any) {}
func (l problemLogger) Debugf(string, ...any)  {}
func (l problemLogger) Tracef(string, ...any)  {}
func (l problemLogger) Warnf(format string, v ...any) {
	l("[WRN] " + fmt.Sprintf(format, v...))
}
func (l problemLogger) Errorf(format string, v ...any) {
	l("[ERR] " + fmt.Sprintf(format, v...))
}
func (l problemLogger) Fatalf(format string, v ...any) {
	l("[FTL] " + fmt.Sprintf(format, v...))
}

// URL is the client URL of the server.
func (n *NATS) URL() string { return n.srv.ClientURL() }

// Version is the nats-server version.
func (n *NATS) Version() string { return server.VERSION }

// Shutdown stops the server and waits for it.
func (n *NATS) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// Redis is an in-memory Redis-protocol server (miniredis). Its state lives
// in memory only.
type Redis struct {
	mr *miniredis.Miniredis
}

// StartRedis starts an in-memory Redis-protocol server on addr ("" picks a
// free port on 127.0.0.1).
func StartRedis(addr string) (*Redis, error) {
	mr := miniredis.NewMiniRedis()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := mr.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	return &Redis{mr: mr}, nil
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.mr.Addr() + "/0" }

// Close stops the server.
func (r *Redis) Close() { r.mr.Close() }
