package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// TestConnectNATSAuth logs in with each of --nats-user/--nats-password,
// --nats-token and --nats-nkey-seed against a server that requires it, and
// checks that a wrong secret is refused without being printed.
func TestConnectNATSAuth(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherFile := filepath.Join(t.TempDir(), "other.nk")
	if err := os.WriteFile(otherFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		server server.Options
		good   config
		bad    config
		secret string
	}{
		{"user and password", server.Options{Users: []*server.User{{Username: "worker", Password: "s3cret-pw"}}},
			config{NATSUser: "worker", NATSPassword: "s3cret-pw"}, config{NATSUser: "worker", NATSPassword: "wrong-pw"}, "wrong-pw"},
		{"token", server.Options{Authorization: "s3cret-token"},
			config{NATSToken: "s3cret-token"}, config{NATSToken: "wrong-token"}, "wrong-token"},
		{"nkey", server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}},
			config{NATSNkeySeed: seedFile}, config{NATSNkeySeed: otherFile}, string(otherSeed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.server
			opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
			srv, err := server.NewServer(&opts)
			if err != nil {
				t.Fatal(err)
			}
			go srv.Start()
			t.Cleanup(srv.Shutdown)
			if !srv.ReadyForConnections(10 * time.Second) {
				t.Fatal("server not ready")
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			good := tc.good
			good.NATSURL = srv.ClientURL()
			nc, _, err := connectNATS(&good, log, "test")
			if err != nil {
				t.Fatalf("connect with the right credentials: %v", err)
			}
			nc.Close()
			bad := tc.bad
			bad.NATSURL = srv.ClientURL()
			nc, _, err = connectNATS(&bad, log, "test")
			if err == nil {
				nc.Close()
				t.Fatal("connect with wrong credentials succeeded")
			}
			if !strings.Contains(strings.ToLower(err.Error()), "authorization") || strings.Contains(err.Error(), tc.secret) {
				t.Errorf("wrong credentials: %v; want an authorization error without the secret", err)
			}
		})
	}
}

// TestRedisTLSAndSentinelOptions checks that the TLS files turn TLS on for a
// redis:// URL, that a bad CA file is named, and that Sentinel's own
// credentials reach the client beside the data nodes'.
func TestRedisTLSAndSentinelOptions(t *testing.T) {
	certFile, keyFile := filepath.Join(t.TempDir(), "c.pem"), filepath.Join(t.TempDir(), "k.pem")
	for _, tc := range []struct {
		name string
		c    config
		err  string
		tls  bool
	}{
		{"plain", config{RedisURL: "redis://127.0.0.1:6379/0"}, "", false},
		{"rediss", config{RedisURL: "rediss://127.0.0.1:6379/0"}, "", true},
		{"bad CA file", config{RedisURL: "redis://127.0.0.1:6379/0", RedisTLSCA: filepath.Join(t.TempDir(), "missing.pem")}, "--redis-tls-ca", false},
		{"bad client pair", config{RedisURL: "redis://127.0.0.1:6379/0", RedisTLSCert: certFile, RedisTLSKey: keyFile}, "--redis-tls-cert", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := redisClientOptions(&tc.c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (opts.TLSConfig != nil) != tc.tls {
				t.Errorf("TLS %v, want %v", opts.TLSConfig != nil, tc.tls)
			}
		})
	}
	c := &config{RedisURL: "redis://u:p@127.0.0.1:26379/0?master_name=mymaster", RedisSentinelUser: "sentinel-user", RedisSentinelPassword: "sentinel-pw"}
	opts, err := redisClientOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	if fo := opts.Failover(); fo.SentinelUsername != "sentinel-user" || fo.SentinelPassword != "sentinel-pw" ||
		fo.Username != "u" || fo.Password != "p" || fo.MasterName != "mymaster" {
		t.Errorf("failover options: sentinel %q/%q, data %q/%q, master %q", fo.SentinelUsername, fo.SentinelPassword, fo.Username, fo.Password, fo.MasterName)
	}
}
