package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
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

	credsGood, credsBad, resolver, operator := userCreds(t)

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
		{"creds", server.Options{TrustedOperators: []*jwt.OperatorClaims{operator}, AccountResolver: resolver},
			config{NATSCreds: credsGood}, config{NATSCreds: credsBad}, "SUA"},
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

// userCreds makes an operator, an account it signs and two users: one the
// account signed (its creds file is good), one signed by an account the
// server does not know.
func userCreds(t *testing.T) (good, bad string, resolver *server.MemAccResolver, operator *jwt.OperatorClaims) {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	operator = jwt.NewOperatorClaims(opub)
	opJWT, err := operator.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	if operator, err = jwt.DecodeOperatorClaims(opJWT); err != nil {
		t.Fatal(err)
	}
	resolver = &server.MemAccResolver{}
	creds := func(name string, known bool) string {
		akp, _ := nkeys.CreateAccount()
		apub, _ := akp.PublicKey()
		acJWT, err := jwt.NewAccountClaims(apub).Encode(okp)
		if err != nil {
			t.Fatal(err)
		}
		if known {
			if err := resolver.Store(apub, acJWT); err != nil {
				t.Fatal(err)
			}
		}
		ukp, _ := nkeys.CreateUser()
		upub, _ := ukp.PublicKey()
		useed, _ := ukp.Seed()
		uJWT, err := jwt.NewUserClaims(upub).Encode(akp)
		if err != nil {
			t.Fatal(err)
		}
		b, err := jwt.FormatUserConfig(uJWT, useed)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name+".creds")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return creds("good", true), creds("bad", false), resolver, operator
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
