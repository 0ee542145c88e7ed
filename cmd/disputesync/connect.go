package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
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
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w%s", redactURL(c.NATSURL), err, tlsHint(err, "nats"))
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

// redisClientOptions is every Redis setting of c: the URL, the TLS files and
// Sentinel's own credentials.
func redisClientOptions(c *config) (*redis.UniversalOptions, error) {
	opts, err := redisOptions(string(c.RedisURL))
	if err != nil {
		return nil, err
	}
	if err := redisTLS(opts, c); err != nil {
		return nil, err
	}
	opts.SentinelUsername, opts.SentinelPassword = c.RedisSentinelUser, string(c.RedisSentinelPassword)
	return opts, nil
}

func connectRedis(ctx context.Context, c *config, log *slog.Logger) (redis.UniversalClient, error) {
	opts, err := redisClientOptions(c)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewUniversalClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w%s", redactURL(string(c.RedisURL)), err, tlsHint(err, "redis"))
	}
	return rdb, nil
}

// redisTLS applies --redis-tls-ca, --redis-tls-cert and --redis-tls-key:
// any of them turns TLS on, as rediss:// does.
func redisTLS(opts *redis.UniversalOptions, c *config) error {
	if c.RedisTLSCA == "" && c.RedisTLSCert == "" && c.RedisTLSKey == "" {
		return nil
	}
	if opts.TLSConfig == nil {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if len(opts.Addrs) == 1 {
			opts.TLSConfig.ServerName, _, _ = net.SplitHostPort(opts.Addrs[0])
		}
	}
	if c.RedisTLSCA != "" {
		pem, err := os.ReadFile(c.RedisTLSCA)
		if err != nil {
			return fmt.Errorf("--redis-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--redis-tls-ca %s: no PEM certificate in it", c.RedisTLSCA)
		}
		opts.TLSConfig.RootCAs = pool
	}
	if c.RedisTLSCert != "" || c.RedisTLSKey != "" {
		cert, err := tls.LoadX509KeyPair(c.RedisTLSCert, c.RedisTLSKey)
		if err != nil {
			return fmt.Errorf("--redis-tls-cert and --redis-tls-key: %w", err)
		}
		opts.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	return nil
}

// tlsHint names the flag to check when a TLS handshake failed because the
// server's certificate is not trusted or not for the name dialled.
func tlsHint(err error, server string) string {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case err == nil:
	// Some clients flatten the x509 error into their own message.
	case errors.As(err, &unknown) || (errors.As(err, &verify) && errors.As(verify.Err, &unknown)) ||
		strings.Contains(err.Error(), "certificate signed by unknown authority"):
		return fmt.Sprintf(" (the %s server's TLS certificate is not signed by a trusted CA: check --%s-tls-ca)", server, server)
	case errors.As(err, &hostname):
		return fmt.Sprintf(" (the %s server's TLS certificate is not for this host name: connect by a name the certificate lists)", server)
	case errors.As(err, &invalid):
		return fmt.Sprintf(" (the %s server's TLS certificate is invalid or expired)", server)
	}
	return ""
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
