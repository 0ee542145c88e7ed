package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/internal/versions"
)

func newLogger(c *config, e env) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// connectNATS connects with every authentication option of docs/contract.md
// section 1 and logs, rather than fails on, disconnects and reconnects.
func connectNATS(c *config, log *slog.Logger, name string) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn("NATS error", "err", err) }),
	}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, string(c.NATSPassword)))
	}
	if c.NATSToken != "" {
		opts = append(opts, nats.Token(string(c.NATSToken)))
	}
	if c.NATSNkeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(c.NATSNkeySeed)
		if err != nil {
			return nil, nil, fmt.Errorf("--nats-nkey-seed %s: cannot read an nkey seed from it", c.NATSNkeySeed)
		}
		opts = append(opts, o)
	}
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" || c.NATSTLSKey != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	nc, err := nats.Connect(c.NATSURL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redactURL(c.NATSURL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// redisOptions turns --redis-url into universal options: one address is a
// single server, several a cluster, and ?master_name=NAME a sentinel group.
func redisOptions(raw string) (*redis.UniversalOptions, error) {
	if !strings.Contains(raw, "://") {
		raw = "redis://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--redis-url is not a URL")
	}
	hosts := strings.Split(u.Host, ",")
	first := *u
	first.Host = hosts[0]
	q := first.Query()
	master := q.Get("master_name")
	q.Del("master_name")
	first.RawQuery = q.Encode()
	single, err := redis.ParseURL(first.String())
	if err != nil {
		// go-redis errors can quote the URL; never print its password.
		return nil, fmt.Errorf("--redis-url %s: %s", u.Redacted(), strings.ReplaceAll(err.Error(), raw, u.Redacted()))
	}
	if single.TLSConfig != nil && len(hosts) > 1 {
		// ParseURL named the first host; each node presents its own name.
		single.TLSConfig.ServerName = ""
	}
	return &redis.UniversalOptions{
		Addrs: hosts, MasterName: master, DB: single.DB,
		Username: single.Username, Password: single.Password, TLSConfig: single.TLSConfig,
		// Idempotency scripts are retried by go-redis on network errors;
		// they are written to give the same answer when run twice.
		MaxRetries: 3, ContextTimeoutEnabled: true,
	}, nil
}

func connectRedis(ctx context.Context, c *config, log *slog.Logger) (redis.UniversalClient, error) {
	opts, err := redisOptions(string(c.RedisURL))
	if err != nil {
		return nil, err
	}
	rdb := redis.NewUniversalClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w", redactURL(string(c.RedisURL)), err)
	}
	return rdb, nil
}

// checkServers refuses servers that are too old and warns about a Redis
// that may evict idempotency records.
func checkServers(ctx context.Context, nc *nats.Conn, rdb redis.UniversalClient, log *slog.Logger) error {
	var errs []error
	if nc != nil {
		errs = append(errs, versions.CheckNATS(nc))
	}
	if rdb != nil {
		errs = append(errs, versions.CheckRedis(ctx, rdb))
		if p := versions.EvictionPolicy(ctx, rdb); p != "" && p != "noeviction" {
			log.Warn("Redis may evict idempotency records and leases: set maxmemory-policy noeviction", "maxmemory-policy", p)
		}
	}
	return errors.Join(errs...)
}
