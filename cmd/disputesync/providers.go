package main

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipay"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/handlers/disputeapi"
	"github.com/disputesync/disputesync/handlers/ingenico"
	"github.com/disputesync/disputesync/internal/alipaysig"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/sandbox"
)

// credentials are the provider secrets, loaded from files. A provider whose
// base URL is on this machine (a sandbox) falls back to the sandbox's
// published test keys, so a sandbox and a worker started separately work
// together with no set-up; a provider elsewhere without credentials is not
// configured at all (its commands are rejected), never signed with test keys.
type credentials struct {
	alipayID, alipayPlusID                 string
	alipayKey, alipayPlusKey               *rsa.PrivateKey
	alipayPub, alipayPlusPub               *rsa.PublicKey
	ingenicoMerchant, ingenicoKeyID        string
	ingenicoSecret, disputeAPIToken        []byte
	webhookSecret                          []byte
	alipayOK, alipayPlusOK, ingenicoOK     bool
	alipayTest, alipayPlusTest, ingenicoTe bool
}

func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func readSecretFile(flag, path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// The path is named, never the contents.
		return nil, fmt.Errorf("--%s: cannot read %s: %w", flag, path, errors.Unwrap(err))
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

func loadCredentials(c *config, log *slog.Logger) (*credentials, error) {
	k := sandbox.TestKeys
	cr := &credentials{}
	// A sandbox is a provider on this machine, or on a host named by
	// --sandbox-hosts (a sandbox container beside this one).
	isSandbox := func(raw string) bool {
		if isLoopbackURL(raw) {
			return true
		}
		u, err := url.Parse(raw)
		return err == nil && u.Hostname() != "" && slices.Contains(c.SandboxHosts, u.Hostname())
	}
	var err error
	var errs []error
	load := func(flag, path string) []byte {
		b, e := readSecretFile(flag, path)
		if e != nil {
			errs = append(errs, e)
		}
		return b
	}
	// Alipay and Alipay+ share the key scheme.
	rsaPair := func(name, idFlag, id, privFlag, privPath, pubFlag, pubPath, baseURL, testID, testPriv, testPub string) (string, *rsa.PrivateKey, *rsa.PublicKey, bool, bool) {
		if privPath == "" && pubPath == "" && id == "" {
			if isSandbox(baseURL) {
				priv, _ := alipaysig.ParsePrivateKey([]byte(testPriv))
				pub, _ := alipaysig.ParsePublicKey([]byte(testPub))
				return testID, priv, pub, true, true
			}
			return "", nil, nil, false, false
		}
		if id == "" || privPath == "" || pubPath == "" {
			errs = append(errs, fmt.Errorf("%s needs --%s, --%s and --%s together", name, idFlag, privFlag, pubFlag))
			return "", nil, nil, false, false
		}
		priv, e := alipaysig.ParsePrivateKey(load(privFlag, privPath))
		if e != nil {
			errs = append(errs, fmt.Errorf("--%s %s: %v", privFlag, privPath, e))
		}
		pub, e := alipaysig.ParsePublicKey(load(pubFlag, pubPath))
		if e != nil {
			errs = append(errs, fmt.Errorf("--%s %s: %v", pubFlag, pubPath, e))
		}
		return id, priv, pub, priv != nil && pub != nil, false
	}
	cr.alipayID, cr.alipayKey, cr.alipayPub, cr.alipayOK, cr.alipayTest = rsaPair("alipay",
		"alipay-client-id", c.AlipayClientID, "alipay-private-key-file", c.AlipayPrivateKeyFile,
		"alipay-public-key-file", c.AlipayPublicKeyFile, c.AlipayURL,
		k.AlipayClientID, k.AlipayMerchantPrivatePEM, k.AlipayProviderPublicPEM)
	cr.alipayPlusID, cr.alipayPlusKey, cr.alipayPlusPub, cr.alipayPlusOK, cr.alipayPlusTest = rsaPair("alipayplus",
		"alipayplus-client-id", c.AlipayPlusClientID, "alipayplus-private-key-file", c.AlipayPlusPrivateKeyFile,
		"alipayplus-public-key-file", c.AlipayPlusPublicKeyFile, c.AlipayPlusURL,
		k.AlipayPlusClientID, k.AlipayPlusMerchantPrivatePEM, k.AlipayPlusProviderPublicPEM)

	switch {
	case c.IngenicoMerchantID == "" && c.IngenicoAPIKeyID == "" && c.IngenicoSecretAPIKeyFile == "":
		if isSandbox(c.IngenicoURL) {
			cr.ingenicoMerchant, cr.ingenicoKeyID, cr.ingenicoSecret = k.IngenicoMerchantID, k.IngenicoAPIKeyID, []byte(k.IngenicoSecretAPIKey)
			cr.ingenicoOK, cr.ingenicoTe = true, true
		}
	case c.IngenicoMerchantID == "" || c.IngenicoAPIKeyID == "" || c.IngenicoSecretAPIKeyFile == "":
		errs = append(errs, errors.New("ingenico needs --ingenico-merchant-id, --ingenico-api-key-id and --ingenico-secret-api-key-file together"))
	default:
		cr.ingenicoMerchant, cr.ingenicoKeyID = c.IngenicoMerchantID, c.IngenicoAPIKeyID
		cr.ingenicoSecret = load("ingenico-secret-api-key-file", c.IngenicoSecretAPIKeyFile)
		cr.ingenicoOK = len(cr.ingenicoSecret) > 0
	}
	cr.disputeAPIToken = load("disputeapi-token-file", c.DisputeAPITokenFile)
	if cr.disputeAPIToken == nil && isSandbox(c.DisputeAPIURL) {
		cr.disputeAPIToken = []byte(k.DisputeAPIToken)
	}
	cr.webhookSecret = load("disputeapi-webhook-secret-file", c.DisputeAPIWebhookSecretFile)
	// Outbound calls may use the published test keys toward a provider on
	// this machine, but inbound notifications trust them only in dev: a
	// production process behind a local proxy must never accept what anyone
	// holding the public test keys can sign.
	if cr.webhookSecret == nil && c.dev {
		cr.webhookSecret = []byte(k.DisputeAPIWebhookSecret)
	}
	if err = errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	for _, p := range []struct {
		name     string
		ok, test bool
	}{{"alipay", cr.alipayOK, cr.alipayTest}, {"alipayplus", cr.alipayPlusOK, cr.alipayPlusTest}, {"ingenico", cr.ingenicoOK, cr.ingenicoTe}} {
		switch {
		case p.test:
			log.Info("provider uses the sandbox's published test keys (its URL is on this machine)", "provider", p.name)
		case !p.ok:
			log.Warn("provider not configured: its commands will be rejected with PROVIDER_NOT_CONFIGURED", "provider", p.name)
		}
	}
	return cr, nil
}

// providerMux registers a handler for every configured provider.
func providerMux(c *config, cr *credentials, rdb redis.UniversalClient, names topology.Names, ev handlers.Evidence, m *metrics.Metrics, log *slog.Logger) (*handlers.Mux, error) {
	mux := handlers.NewMux()
	if cr.alipayOK {
		cl, err := alipay.New(alipay.Config{BaseURL: c.AlipayURL, ClientID: cr.alipayID, PrivateKey: cr.alipayKey,
			ProviderPublicKey: cr.alipayPub, Timeout: c.ProviderTimeout, RateLimit: c.ProviderRateLimit,
			Evidence: ev, Metrics: m, Logger: log})
		if err != nil {
			return nil, err
		}
		cl.Register(mux)
	}
	if cr.alipayPlusOK {
		// Without Redis (a dry run) there is no escalation ledger: the
		// provider's own rules still apply.
		var ledger alipayplus.Ledger
		if rdb != nil {
			ledger = alipayplus.NewRedisLedger(rdb, names)
		}
		cl, err := alipayplus.New(alipayplus.Config{BaseURL: c.AlipayPlusURL, ClientID: cr.alipayPlusID, PrivateKey: cr.alipayPlusKey,
			ProviderPublicKey: cr.alipayPlusPub, Timeout: c.ProviderTimeout, RateLimit: c.ProviderRateLimit,
			Evidence: ev, Metrics: m, Logger: log, Ledger: ledger,
			SpecialMerchants: c.SpecialMerchants})
		if err != nil {
			return nil, err
		}
		cl.Register(mux)
	}
	if cr.ingenicoOK {
		cl, err := ingenico.New(ingenico.Config{BaseURL: c.IngenicoURL, MerchantID: cr.ingenicoMerchant, APIKeyID: cr.ingenicoKeyID,
			SecretAPIKey: cr.ingenicoSecret, Timeout: c.ProviderTimeout, RateLimit: c.ProviderRateLimit,
			Evidence: ev, Metrics: m, Logger: log})
		if err != nil {
			return nil, err
		}
		cl.Register(mux)
	}
	cl, err := disputeapi.New(disputeapi.Config{BaseURL: c.DisputeAPIURL, Token: cr.disputeAPIToken,
		Timeout: c.ProviderTimeout, RateLimit: c.ProviderRateLimit, Evidence: ev, Metrics: m, Logger: log})
	if err != nil {
		return nil, err
	}
	cl.Register(mux)
	return mux, nil
}

// validationMux has every action's local validation and no provider access:
// what "disputesync action" checks before publishing.
func validationMux() *handlers.Mux {
	mux := handlers.NewMux()
	alipay.Validators(mux)
	alipayplus.Validators(mux)
	ingenico.Validators(mux)
	disputeapi.Validators(mux)
	return mux
}
