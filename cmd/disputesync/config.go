package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/poller"
)

// config is the one struct every subcommand reads; this file is the only
// place that reads flags and the environment.
type config struct {
	// Connections.
	NATSURL      string
	NATSCreds    string
	NATSUser     string
	NATSPassword secret
	NATSToken    secret
	NATSNkeySeed string
	NATSTLSCA    string
	NATSTLSCert  string
	NATSTLSKey   string
	RedisURL     secret // may carry a password
	RedisTLSCA   string
	RedisTLSCert string
	RedisTLSKey  string
	// Sentinel's own authentication, which may differ from the data
	// nodes' (the URL's user and password).
	RedisSentinelUser     string
	RedisSentinelPassword secret
	Prefix                string

	// Endpoints.
	MetricsAddr string
	WebhookAddr string

	// Providers.
	DisputeAPIURL               string
	AlipayURL                   string
	AlipayPlusURL               string
	IngenicoURL                 string
	DisputeAPITokenFile         string
	DisputeAPIWebhookSecretFile string
	AlipayClientID              string
	AlipayPrivateKeyFile        string
	AlipayPublicKeyFile         string
	AlipayPlusClientID          string
	AlipayPlusPrivateKeyFile    string
	AlipayPlusPublicKeyFile     string
	IngenicoMerchantID          string
	IngenicoAPIKeyID            string
	IngenicoSecretAPIKeyFile    string
	ProviderTimeout             time.Duration
	ProviderRateLimit           float64
	SpecialMerchants            []string
	SandboxHosts                []string

	// Poller.
	PollInterval     time.Duration
	PollLookback     time.Duration
	PollFullRescan   time.Duration
	PollRateLimit    float64
	DeadlineWarnings []time.Duration

	// Worker.
	Roles         []string
	Concurrency   int
	MaxAckPending int
	AckWait       time.Duration
	MaxDeliver    int
	MaxAttempts   int
	RetryDeadline time.Duration
	Lease         time.Duration
	Retention     time.Duration
	Replicas      int

	// Logging.
	LogLevel  string
	LogFormat string

	// embeddedRedis is set by "dev" when it runs its in-memory Redis, whose
	// version cannot be checked (it speaks the protocol, not INFO).
	embeddedRedis bool
	// dev is set by "dev": only then do inbound notifications trust the
	// sandbox's published test keys.
	dev bool
	// rolesGiven is set by "run" when --roles (or DISPUTESYNC_ROLES) was
	// given: a role asked for by name runs, or the process does not start.
	rolesGiven bool
}

// secret is a string that never prints.
type secret string

func (s secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString keeps %#v from printing it.
func (s secret) GoString() string { return s.String() }

// option describes one flag: its name, its environment variable (derived),
// its default and its help. secret options also accept *_FILE.
type option struct {
	name    string
	meta    string // the value's placeholder in --help
	usage   string
	def     string
	secret  bool
	set     func(string) error
	display func() string // the value as --print-config shows it
}

// options is a flag set that knows each flag's environment variable.
type options struct {
	fs         *flag.FlagSet
	opts       []*option
	positional []string
	getenv     func(string) string // the environment parse read
}

func newOptions(cmd string) *options {
	o := &options{fs: flag.NewFlagSet(cmd, flag.ContinueOnError)}
	o.fs.SetOutput(io.Discard)
	o.fs.Usage = func() {}
	return o
}

func envName(flagName string) string {
	return "DISPUTESYNC_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (o *options) add(opt *option) {
	o.opts = append(o.opts, opt)
	o.fs.Func(opt.name, opt.usage, opt.set)
	if opt.secret {
		name := opt.name + "-file"
		o.opts = append(o.opts, &option{name: name, meta: "PATH", usage: "read --" + opt.name + " from this file", set: func(path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("cannot read the file given for --%s: %w", opt.name, err)
			}
			return opt.set(strings.TrimSpace(string(b)))
		}})
		o.fs.Func(name, "", o.opts[len(o.opts)-1].set)
	}
}

func (o *options) str(p *string, name, meta, def, usage string) {
	*p = def
	o.add(&option{name: name, meta: meta, usage: usage, def: def,
		set:     func(v string) error { *p = v; return nil },
		display: func() string { return *p }})
}

func (o *options) secretStr(p *secret, name, meta, def, usage string) {
	*p = secret(def)
	o.add(&option{name: name, meta: meta, usage: usage, def: def, secret: true,
		set:     func(v string) error { *p = secret(v); return nil },
		display: func() string { return redactSecret(string(*p)) }})
}

// redactSecret shows a URL without its password, and nothing of any other
// secret.
func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Host != "" {
		return u.Redacted()
	}
	return "[redacted]"
}

func (o *options) duration(p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	o.add(&option{name: name, meta: "DURATION", usage: usage, def: formatDuration(def),
		set: func(v string) error {
			d, err := parseDuration(v)
			if err != nil {
				return err
			}
			*p = d
			return nil
		},
		display: func() string { return formatDuration(*p) }})
}

func (o *options) integer(p *int, name string, def int, usage string) {
	*p = def
	o.add(&option{name: name, meta: "N", usage: usage, def: strconv.Itoa(def),
		set: func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			*p = n
			return nil
		},
		display: func() string { return strconv.Itoa(*p) }})
}

func (o *options) float(p *float64, name string, def float64, usage string) {
	*p = def
	o.add(&option{name: name, meta: "N", usage: usage, def: strconv.FormatFloat(def, 'f', -1, 64),
		set: func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			*p = f
			return nil
		},
		display: func() string { return strconv.FormatFloat(*p, 'f', -1, 64) }})
}

func (o *options) list(p *[]string, name, def, usage string) {
	*p = splitList(def)
	o.add(&option{name: name, meta: "A,B", usage: usage, def: def,
		set:     func(v string) error { *p = splitList(v); return nil },
		display: func() string { return strings.Join(*p, ",") }})
}

// multi is a flag that may be repeated; its environment variable holds the
// values separated by ";".
func (o *options) multi(p *[]string, name, meta, usage string) {
	o.add(&option{name: name, meta: meta, usage: usage + " (repeatable; in the environment separated by ;)",
		set: func(v string) error {
			for _, part := range strings.Split(v, ";") {
				if part = strings.TrimSpace(part); part != "" {
					*p = append(*p, part)
				}
			}
			return nil
		},
		display: func() string { return strings.Join(*p, ";") }})
}

func (o *options) durations(p *[]time.Duration, name, def, usage string) {
	parse := func(v string) ([]time.Duration, error) {
		var out []time.Duration
		for _, s := range splitList(v) {
			d, err := parseDuration(s)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, nil
	}
	*p, _ = parse(def)
	o.add(&option{name: name, meta: "D1,D2", usage: usage, def: def,
		set: func(v string) error {
			ds, err := parse(v)
			if err != nil {
				return err
			}
			*p = ds
			return nil
		},
		display: func() string {
			var s []string
			for _, d := range *p {
				s = append(s, formatDuration(d))
			}
			return strings.Join(s, ",")
		}})
}

func (o *options) boolean(p *bool, name, usage string) {
	o.add(&option{name: name, usage: usage, def: "false",
		set: func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			*p = b
			return nil
		},
		display: func() string { return strconv.FormatBool(*p) }})
	// A bare --flag means true.
	o.fs.Lookup(name).Value = boolValue{p}
}

type boolValue struct{ p *bool }

func (b boolValue) String() string { return "" }
func (b boolValue) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not true or false", v)
	}
	*b.p = x
	return nil
}
func (b boolValue) IsBoolFlag() bool { return true }

// errUsage marks a configuration error: exit status 2.
var errUsage = errors.New("usage")

// errHelp is returned when --help was asked for.
var errHelp = errors.New("help requested")

// parse reads the environment (DISPUTESYNC_<FLAG>, and <FLAG>_FILE for
// secrets) and then the command line, which wins.
func (o *options) parse(args []string, getenv func(string) string) error {
	o.getenv = getenv
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return errHelp
		}
		if a == "--" {
			break
		}
	}
	for _, opt := range o.opts {
		if v := getenv(envName(opt.name)); v != "" {
			if err := opt.set(v); err != nil {
				return fmt.Errorf("%w: %s=%s: %v", errUsage, envName(opt.name), displayValue(opt, v), err)
			}
		}
	}
	// Flags may come before, between or after positional arguments.
	for {
		if err := o.fs.Parse(args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := o.fs.Args()
		if len(rest) == 0 {
			return nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			o.positional = append(o.positional, rest...)
			return nil
		}
		o.positional = append(o.positional, rest[0])
		args = rest[1:]
	}
}

// given reports whether a flag was set on the command line or in the
// environment, rather than left at its default.
func (o *options) given(name string) bool {
	set := o.getenv != nil && o.getenv(envName(name)) != ""
	o.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// args are the positional arguments.
func (o *options) args() []string { return o.positional }

func displayValue(opt *option, v string) string {
	if opt.secret || strings.HasSuffix(opt.name, "password") || strings.HasSuffix(opt.name, "token") {
		return "[redacted]"
	}
	return v
}

// usage writes the subcommand's help: every flag with its environment
// variable and default.
func (o *options) usage(w io.Writer, synopsis, description string) {
	fmt.Fprintf(w, "Usage: disputesync %s\n\n%s\n\nFlags (each also read from its environment variable; flags win):\n", synopsis, strings.TrimSpace(description))
	for _, opt := range o.opts {
		head := "  --" + opt.name
		if opt.meta != "" {
			head += " " + opt.meta
		}
		fmt.Fprintf(w, "%s\n      %s\n      env %s", head, opt.usage, envName(opt.name))
		if opt.def != "" {
			shown := opt.def
			if opt.secret {
				shown = redactSecret(opt.def)
			}
			fmt.Fprintf(w, "; default %s", shown)
		}
		fmt.Fprintln(w)
	}
}

// dump lists the effective configuration with secrets redacted.
func (o *options) dump(w io.Writer) {
	names := make([]string, 0, len(o.opts))
	byName := map[string]*option{}
	for _, opt := range o.opts {
		if opt.display != nil {
			names = append(names, opt.name)
			byName[opt.name] = opt
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s=%s\n", n, byName[n].display())
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseDuration accepts Go durations plus a "d" suffix for days.
func parseDuration(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 5m, 400d)", v)
		}
		return time.Duration(days * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 5m, 400d)", v)
	}
	return d, nil
}

func formatDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	s := d.String()
	// 1h0m0s reads better as 1h, and 5m0s as 5m.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// redactURL hides the password of a URL (redis://user:pass@host).
// Each of a comma-separated list is redacted on its own; a part that does
// not parse but may hold credentials is hidden whole.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, part := range parts {
		p := strings.TrimSpace(part)
		u, err := url.Parse(p)
		switch {
		case err == nil && u.User != nil:
			parts[i] = u.Redacted()
		case err != nil && strings.Contains(p, "@"):
			parts[i] = "[redacted]"
		case err == nil && u.Scheme != "" && u.Host == "" && strings.Contains(p, "@"):
			parts[i] = "[redacted]" // user:pw@host parsed as scheme:opaque
		}
	}
	return strings.Join(parts, ",")
}

// Flag groups: each subcommand takes the groups it needs.

func (o *options) connectionFlags(c *config) {
	o.str(&c.NATSURL, "nats-url", "URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	o.str(&c.NATSCreds, "nats-creds", "PATH", "", "NATS credentials file (JWT and nkey seed)")
	o.str(&c.NATSUser, "nats-user", "NAME", "", "NATS user name")
	o.secretStr(&c.NATSPassword, "nats-password", "PASSWORD", "", "NATS password")
	o.secretStr(&c.NATSToken, "nats-token", "TOKEN", "", "NATS authentication token")
	o.str(&c.NATSNkeySeed, "nats-nkey-seed", "PATH", "", "file holding an NATS nkey seed")
	o.str(&c.NATSTLSCA, "nats-tls-ca", "PATH", "", "CA certificate (PEM) to verify the NATS server")
	o.str(&c.NATSTLSCert, "nats-tls-cert", "PATH", "", "client certificate (PEM) for NATS TLS")
	o.str(&c.NATSTLSKey, "nats-tls-key", "PATH", "", "client key (PEM) for NATS TLS")
	o.secretStr(&c.RedisURL, "redis-url", "URL", "redis://127.0.0.1:6379/0",
		"Redis URL: redis://, rediss:// (TLS), or comma-separated host:port seeds of a cluster; ?master_name=NAME for sentinel")
	o.str(&c.RedisTLSCA, "redis-tls-ca", "PATH", "", "CA certificate (PEM) to verify Redis's TLS certificate (implies TLS); default: the system's CAs")
	o.str(&c.RedisTLSCert, "redis-tls-cert", "PATH", "", "client certificate (PEM) for Redis TLS (implies TLS)")
	o.str(&c.RedisTLSKey, "redis-tls-key", "PATH", "", "client key (PEM) for Redis TLS")
	o.str(&c.RedisSentinelUser, "redis-sentinel-user", "NAME", "", "user name for the Sentinels themselves (with ?master_name=)")
	o.secretStr(&c.RedisSentinelPassword, "redis-sentinel-password", "PASSWORD", "", "password for the Sentinels themselves (with ?master_name=)")
	o.str(&c.Prefix, "prefix", "NAME", "disputes",
		"subject root; upper-cased, the prefix of every stream, consumer, bucket and Redis key")
}

func (o *options) logFlags(c *config) {
	o.str(&c.LogLevel, "log-level", "LEVEL", "info", "debug, info, warn or error")
	o.str(&c.LogFormat, "log-format", "FORMAT", "text", "text or json")
}

func (o *options) topologyFlags(c *config) {
	o.duration(&c.AckWait, "ack-wait", 60*time.Second, "how long a delivered command may go unacknowledged; longer than any provider call")
	o.integer(&c.MaxAckPending, "max-ack-pending", 64, "commands delivered but not yet acknowledged, across all workers")
	o.integer(&c.MaxDeliver, "max-deliver", 100, "deliveries of one command before JetStream gives up (a backstop; --max-attempts bounds provider calls)")
	o.integer(&c.Replicas, "replicas", 1, "stream and bucket replicas (3 in a production cluster)")
	o.duration(&c.Retention, "retention", 30*24*time.Hour, "how long results and idempotency records are kept")
}

func (o *options) providerFlags(c *config) {
	o.str(&c.DisputeAPIURL, "disputeapi-url", "URL", "http://127.0.0.1:8086", "base URL of the list API PSP (disputeapi)")
	o.str(&c.AlipayURL, "alipay-url", "URL", "http://127.0.0.1:8086", "base URL of Alipay (AMS)")
	o.str(&c.AlipayPlusURL, "alipayplus-url", "URL", "http://127.0.0.1:8086", "base URL of Alipay+")
	o.str(&c.IngenicoURL, "ingenico-url", "URL", "http://127.0.0.1:8086", "base URL of Ingenico Connect")
	o.str(&c.DisputeAPITokenFile, "disputeapi-token-file", "PATH", "", "bearer token for the list API and its actions")
	o.str(&c.AlipayClientID, "alipay-client-id", "ID", "", "Alipay Client-Id (the sandbox's when unset)")
	o.str(&c.AlipayPrivateKeyFile, "alipay-private-key-file", "PATH", "", "merchant RSA private key (PEM, PKCS#1 or PKCS#8) signing Alipay requests")
	o.str(&c.AlipayPublicKeyFile, "alipay-public-key-file", "PATH", "", "Alipay's RSA public key (PEM) verifying its responses and notifications")
	o.str(&c.AlipayPlusClientID, "alipayplus-client-id", "ID", "", "Alipay+ Client-Id (the sandbox's when unset)")
	o.str(&c.AlipayPlusPrivateKeyFile, "alipayplus-private-key-file", "PATH", "", "RSA private key (PEM) signing Alipay+ requests")
	o.str(&c.AlipayPlusPublicKeyFile, "alipayplus-public-key-file", "PATH", "", "Alipay+'s RSA public key (PEM)")
	o.str(&c.IngenicoMerchantID, "ingenico-merchant-id", "ID", "", "Ingenico merchant id (the sandbox's when unset)")
	o.str(&c.IngenicoAPIKeyID, "ingenico-api-key-id", "ID", "", "Ingenico v1HMAC API key id")
	o.str(&c.IngenicoSecretAPIKeyFile, "ingenico-secret-api-key-file", "PATH", "", "file holding the Ingenico secret API key")
	o.duration(&c.ProviderTimeout, "provider-timeout", 20*time.Second, "timeout of one provider HTTP call")
	o.float(&c.ProviderRateLimit, "provider-rate-limit", 0, "provider calls per second per provider (0: unlimited)")
	o.list(&c.SpecialMerchants, "special-merchants", "", "merchant ids treated as Alipay+ Special Merchants besides APPLE and GOOGLE")
	o.list(&c.SandboxHosts, "sandbox-hosts", "", "hosts besides this machine that run the sandbox: calls to them use its published test keys when no credentials are given (e.g. sandbox in deploy/compose)")
}

func (o *options) pollerFlags(c *config) {
	o.duration(&c.PollInterval, "poll-interval", time.Minute, "time between poll cycles")
	o.duration(&c.PollLookback, "poll-lookback", 400*24*time.Hour, "how far back the full rescan reaches")
	o.duration(&c.PollFullRescan, "poll-full-rescan", poller.DefaultFullRescanInterval, "time between full rescans (closed disputes can reopen; a change to one is seen within this plus one rescan)")
	o.float(&c.PollRateLimit, "poll-rate-limit", poller.DefaultRateLimit, "list API calls per second at most; slowed on 429/Retry-After and errors, recovered on success")
	o.durations(&c.DeadlineWarnings, "deadline-warnings", "72h,24h", "dispute.deadline_approaching thresholds before a reply deadline")
}

func (o *options) workerFlags(c *config) {
	o.integer(&c.Concurrency, "concurrency", 8, "commands a worker handles at once")
	o.integer(&c.MaxAttempts, "max-attempts", 8, "provider calls per command before it fails")
	o.duration(&c.RetryDeadline, "retry-deadline", time.Hour, "time after a command's first attempt when retrying stops")
	o.duration(&c.Lease, "lease", 30*time.Second, "idempotency lease; renewed every third of it while a provider call runs")
}

func (o *options) endpointFlags(c *config) {
	o.str(&c.MetricsAddr, "metrics-addr", "ADDR", "127.0.0.1:9464", "serves /metrics, /healthz and /readyz")
	o.str(&c.WebhookAddr, "webhook-addr", "ADDR", "127.0.0.1:8087", "where provider notifications are received")
	o.str(&c.DisputeAPIWebhookSecretFile, "disputeapi-webhook-secret-file", "PATH", "", "shared secret authenticating the list API PSP's notifications")
}

// validate checks what the flags hold.
func (c *config) validate(used map[string]bool) error {
	var errs []string
	add := func(flag, format string, args ...any) {
		if used[flag] {
			errs = append(errs, "--"+flag+": "+fmt.Sprintf(format, args...))
		}
	}
	if _, err := topology.New(c.Prefix); err != nil {
		add("prefix", "%v", err)
	}
	positive := map[string]time.Duration{
		"poll-interval": c.PollInterval, "poll-lookback": c.PollLookback, "poll-full-rescan": c.PollFullRescan,
		"ack-wait": c.AckWait, "retention": c.Retention, "provider-timeout": c.ProviderTimeout,
		"retry-deadline": c.RetryDeadline, "lease": c.Lease,
	}
	for name, d := range positive {
		if d <= 0 {
			add(name, "must be a positive duration, got %s", d)
		}
	}
	for _, d := range c.DeadlineWarnings {
		if d <= 0 {
			add("deadline-warnings", "each threshold must be positive, got %s", d)
		}
	}
	if used["ack-wait"] && used["provider-timeout"] && c.ProviderTimeout >= c.AckWait {
		add("ack-wait", "must be longer than --provider-timeout (%s)", c.ProviderTimeout)
	}
	for name, n := range map[string]int{"concurrency": c.Concurrency, "max-ack-pending": c.MaxAckPending, "max-attempts": c.MaxAttempts, "replicas": c.Replicas} {
		if n <= 0 {
			add(name, "must be at least 1, got %d", n)
		}
	}
	if c.MaxDeliver < 2 && c.MaxDeliver != -1 {
		add("max-deliver", "must be at least 2 (or -1 for unlimited), got %d", c.MaxDeliver)
	}
	for _, r := range c.Roles {
		if r != "poller" && r != "worker" && r != "webhook" {
			add("roles", "unknown role %q (poller, worker, webhook)", r)
		}
	}
	for _, a := range []struct{ name, v string }{{"metrics-addr", c.MetricsAddr}, {"webhook-addr", c.WebhookAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			add(a.name, "must be host:port, got %q", a.v)
		}
	}
	if c.ProviderRateLimit < 0 || c.PollRateLimit < 0 {
		add("provider-rate-limit", "must not be negative")
		add("poll-rate-limit", "must not be negative")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log-level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("log-format", "must be text or json, got %q", c.LogFormat)
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%w: %s", errUsage, strings.Join(errs, "; "))
	}
	return nil
}

// usedFlags lists the flags a subcommand registered, for validate.
func (o *options) usedFlags() map[string]bool {
	m := map[string]bool{}
	for _, opt := range o.opts {
		m[opt.name] = true
	}
	return m
}
