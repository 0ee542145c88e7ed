package deploy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/sandbox"
	"github.com/disputesync/disputesync/worker"
)

// natsCluster is three nats-server processes started from the shipped
// deploy/nats files.
type natsCluster struct {
	urls      []string
	passwords map[string]string // role -> password
	nodes     []*proc
	opts      []nats.Option // for every client: TLS
}

// url lists every node, as a client configured for the cluster would.
func (c *natsCluster) url() string { return strings.Join(c.urls, ",") }

// connect logs in as role and records every asynchronous error (a
// permissions violation arrives that way).
func (c *natsCluster) connect(t testing.TB, role string) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	opts := append([]nats.Option{nats.UserInfo(role, c.passwords[role]), nats.Name("deploy-test-" + role),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		})}, c.opts...)
	nc, err := nats.Connect(c.url(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// startNATSCluster starts n nodes with conf (a file of deploy/nats, as
// shipped): ports, directories, routes and passwords come from the
// environment variables it names, plus env.
func startNATSCluster(t *testing.T, bin, conf string, n int, env []string, opts ...nats.Option) *natsCluster {
	t.Helper()
	conf = filepath.Join(repoRoot(t), "deploy", "nats", conf)
	c := &natsCluster{passwords: map[string]string{}, opts: opts}
	scheme := "nats"
	if len(opts) > 0 {
		scheme = "tls"
	}
	var pwEnv []string
	for _, role := range []string{"admin", "poller", "worker", "webhook", "operator", "subscriber"} {
		c.passwords[role] = randomHex(t)
		pwEnv = append(pwEnv, "NATS_"+strings.ToUpper(role)+"_PASSWORD="+c.passwords[role])
	}
	client, cluster, monitor := make([]int, n), make([]int, n), make([]int, n)
	var routes []string
	for i := range n {
		client[i], cluster[i], monitor[i] = freePort(t), freePort(t), freePort(t)
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cluster[i]))
		c.urls = append(c.urls, fmt.Sprintf("%s://127.0.0.1:%d", scheme, client[i]))
	}
	for i := range n {
		env := append(append([]string{
			"NATS_SERVER_NAME=nats-" + strconv.Itoa(i+1),
			"NATS_CLIENT_PORT=" + strconv.Itoa(client[i]),
			"NATS_CLUSTER_PORT=" + strconv.Itoa(cluster[i]),
			"NATS_MONITOR_PORT=" + strconv.Itoa(monitor[i]),
			"NATS_STORE_DIR=" + filepath.Join(t.TempDir(), "jetstream"),
			"NATS_ROUTES=[" + strings.Join(routes, ", ") + "]",
		}, pwEnv...), env...)
		c.nodes = append(c.nodes, start(t, "nats-"+strconv.Itoa(i+1), bin, env, "-c", conf))
	}
	// JetStream answers once the cluster has elected its meta leader.
	nc, _ := c.connect(t, "admin")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	await(t, "JetStream cluster", 45*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	}, c.nodes...)
	return c
}

func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestNATSClusterAsShipped runs the product on a three-node cluster from the
// shipped deploy/nats files, every role logged in as its own user: setup as
// admin, poller, worker and webhook as themselves, a command from operator
// and a downstream subscriber; then checks that what each user must not do
// is refused.
func TestNATSClusterAsShipped(t *testing.T) {
	bins := binaries(t, "nats-server", "disputesync")
	ds := bins["disputesync"]
	c := startNATSCluster(t, bins["nats-server"], "nats-server.conf", 3, nil)
	redisURL := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	as := func(role string, extra ...string) []string {
		return append([]string{
			"DISPUTESYNC_NATS_URL=" + c.url(),
			"DISPUTESYNC_NATS_USER=" + role,
			"DISPUTESYNC_NATS_PASSWORD=" + c.passwords[role],
			"DISPUTESYNC_REPLICAS=3",
		}, extra...)
	}

	// setup, as admin: every stream and bucket R3.
	setup := exec.CommandContext(ctx, ds, "setup")
	setup.Env = as("admin")
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("disputesync setup as admin: %v\n%s", err, out)
	}
	names := topology.MustNew("disputes")
	adminNC, _ := c.connect(t, "admin")
	adminJS, _ := jetstream.New(adminNC)
	for _, s := range []string{names.EventsStream(), names.ActionsStream(), names.ResultsStream(), names.DLQStream(),
		"KV_" + names.DisputesBucket(), "KV_" + names.PollerBucket(), "OBJ_" + names.EvidenceBucket()} {
		st, err := adminJS.Stream(ctx, s)
		if err != nil {
			t.Fatalf("stream %s: %v", s, err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", s, r)
		}
	}

	// The sandbox as every provider; the webhook role receives its
	// notifications.
	sandboxPort, webhookPort := freePort(t), freePort(t)
	sandboxURL := "http://" + addr(sandboxPort)
	start(t, "sandbox", ds, nil, "sandbox", "--addr", addr(sandboxPort), "--disputes", "20", "--tick", "0",
		"--webhook-url", "http://"+addr(webhookPort))
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte(sandbox.TestKeys.DisputeAPIWebhookSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	providers := []string{
		"DISPUTESYNC_REDIS_URL=" + redisURL,
		"DISPUTESYNC_DISPUTEAPI_URL=" + sandboxURL, "DISPUTESYNC_ALIPAY_URL=" + sandboxURL,
		"DISPUTESYNC_ALIPAYPLUS_URL=" + sandboxURL, "DISPUTESYNC_INGENICO_URL=" + sandboxURL,
		"DISPUTESYNC_POLL_INTERVAL=1s",
	}
	var procs []*proc
	metricsAddrs := map[string]string{}
	for _, role := range []string{"poller", "worker", "webhook"} {
		metricsAddrs[role] = addr(freePort(t))
		env := as(role, append(providers,
			"DISPUTESYNC_ROLES="+role,
			"DISPUTESYNC_METRICS_ADDR="+metricsAddrs[role],
			"DISPUTESYNC_WEBHOOK_ADDR="+addr(webhookPort),
			"DISPUTESYNC_DISPUTEAPI_WEBHOOK_SECRET_FILE="+secret)...)
		procs = append(procs, start(t, role, ds, env, "run"))
	}
	for i, role := range []string{"poller", "worker", "webhook"} {
		ready(t, procs[i], metricsAddrs[role])
	}

	ids := sampleIDs(t, sandboxURL)

	// subscriber: its own durable consumer on the events stream sees the
	// poller's events, and it reads the dispute snapshots.
	subNC, subErrs := c.connect(t, "subscriber")
	subJS, _ := jetstream.New(subNC)
	cons, err := subJS.CreateOrUpdateConsumer(ctx, names.EventsStream(), jetstream.ConsumerConfig{
		Durable: "DISPUTES_SUBSCRIBER", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("subscriber creates its durable consumer: %v", err)
	}
	var event jetstream.Msg
	await(t, "an event from the poller", 45*time.Second, func() error {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			event = m
		}
		if event == nil {
			return errors.New("no event yet")
		}
		return batch.Error()
	}, procs...)
	if err := event.Ack(); err != nil {
		t.Errorf("subscriber acks its event: %v", err)
	}
	kv, err := subJS.KeyValue(ctx, names.DisputesBucket())
	if err != nil {
		t.Fatalf("subscriber opens the snapshot bucket: %v", err)
	}
	await(t, "subscriber reads a dispute snapshot", 30*time.Second, func() error {
		_, err := kv.Get(ctx, "disputeapi."+ids.DisputeAPI[0])
		return err
	}, procs...)

	// webhook: a signed notification is accepted (it writes the snapshot
	// and publishes the event as webhook).
	notify := fmt.Sprintf(`{"kind":"disputeapi","disputeId":%q,"type":"CHARGEBACK","wait":true}`, ids.DisputeAPI[1])
	resp, err := http.Post(sandboxURL+"/_sandbox/notify", "application/json", strings.NewReader(notify))
	if err != nil {
		t.Fatal(err)
	}
	var d sandbox.Delivery
	_ = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if !d.Delivered || d.LastStatus/100 != 2 {
		t.Errorf("notification to the webhook role: delivered %v, HTTP %d %s", d.Delivered, d.LastStatus, d.LastError)
	}

	// operator: a command with an attachment gets its succeeded result.
	evidence := filepath.Join(t.TempDir(), "evidence.pdf")
	// Big enough for many object-store chunks and the worker's flow control.
	pdf := append([]byte("%PDF-1.4 deploy test\n"), make([]byte, worker.MaxEvidenceBytes-100)...)
	if err := os.WriteFile(evidence, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"action", "alipay", "accept_dispute", "--dispute-id", ids.Alipay[0]},
		{"action", "disputeapi", "upload_document", "--dispute-id", ids.DisputeAPI[2], "--attach", evidence},
	} {
		cmd := exec.CommandContext(ctx, ds, append(args, "--wait", "60s")...)
		cmd.Env = as("operator")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCEEDED") {
			t.Errorf("disputesync %s as operator: %v, want SUCCEEDED:\n%s", strings.Join(args, " "), err, out)
		}
	}

	// What each user must not do is refused with a permissions violation.
	opNC, opErrs := c.connect(t, "operator")
	workerNC, workerErrs := c.connect(t, "worker")
	for _, tc := range []struct {
		who     string
		nc      *nats.Conn
		errs    <-chan error
		subject string
	}{
		{"operator publishing an event", opNC, opErrs, names.EventSubject("disputeapi", "dispute.created")},
		{"operator publishing a result", opNC, opErrs, names.ResultSubject("alipay", "accept_dispute")},
		{"operator acking a command", opNC, opErrs, "$JS.ACK." + names.ActionsStream() + "." + names.WorkerConsumer() + ".1.1.1.1.1"},
		{"operator purging a stream", opNC, opErrs, "$JS.API.STREAM.PURGE." + names.ResultsStream()},
		{"operator deleting a message", opNC, opErrs, "$JS.API.STREAM.MSG.DELETE." + names.ActionsStream()},
		{"operator deleting a consumer", opNC, opErrs, "$JS.API.CONSUMER.DELETE." + names.ActionsStream() + "." + names.WorkerConsumer()},
		{"subscriber publishing an action", subNC, subErrs, names.ActionSubject("alipay", "accept_dispute")},
		{"subscriber writing a snapshot", subNC, subErrs, "$KV." + names.DisputesBucket() + ".disputeapi.x"},
		{"worker purging a stream", workerNC, workerErrs, "$JS.API.STREAM.PURGE." + names.ActionsStream()},
		{"worker deleting a stream", workerNC, workerErrs, "$JS.API.STREAM.DELETE." + names.ActionsStream()},
	} {
		if err := refused(tc.nc, tc.errs, tc.subject); err != nil {
			t.Errorf("%s: %v", tc.who, err)
		}
	}
	if st, err := adminJS.Stream(ctx, names.ResultsStream()); err != nil || st.CachedInfo().State.Msgs < 2 {
		t.Errorf("results stream after the refusals: %v", err)
	}
	// The roles themselves were refused nothing.
	for _, p := range procs {
		if out := p.output(); strings.Contains(strings.ToLower(out), "permissions violation") {
			t.Errorf("%s was refused a subject it uses:\n%s", p.name, tail(out, 3000))
		}
	}
}

// refused publishes to subject and waits for the server's permissions
// violation naming it.
func refused(nc *nats.Conn, errs <-chan error, subject string) error {
	if err := nc.PublishRequest(subject, nc.NewRespInbox(), []byte("{}")); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("publish to %s was not refused", subject)
		}
	}
}

func sampleIDs(t *testing.T, sandboxURL string) sandbox.SampleIDs {
	t.Helper()
	resp, err := http.Get(sandboxURL + "/_sandbox/ids")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ids sandbox.SampleIDs
	if err := json.NewDecoder(resp.Body).Decode(&ids); err != nil {
		t.Fatal(err)
	}
	if len(ids.DisputeAPI) < 3 || len(ids.Alipay) < 1 {
		t.Fatalf("sandbox ids: %+v", ids)
	}
	return ids
}

// TestNATSTLSAsShipped starts three nodes (JetStream clusters of one
// wait for routes) from deploy/nats/nats-server-tls.conf
// (client TLS with client certificates) and runs disputesync setup with
// --nats-tls-ca, --nats-tls-cert and --nats-tls-key; with another CA, or
// without a client certificate, it is refused, and the wrong CA is named.
func TestNATSTLSAsShipped(t *testing.T) {
	bins := binaries(t, "nats-server", "disputesync")
	ca := newCA(t, "nats-ca")
	serverCert, serverKey := ca.issue(t, "nats-server")
	clientCert, clientKey := ca.issue(t, "disputesync")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c := startNATSCluster(t, bins["nats-server"], "nats-server-tls.conf", 3,
		[]string{"NATS_TLS_CERT=" + serverCert, "NATS_TLS_KEY=" + serverKey, "NATS_TLS_CA=" + ca.path},
		nats.Secure(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nats.ClientCert(clientCert, clientKey))
	wrong := newCA(t, "other-ca")

	setup := func(env ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bins["disputesync"], "setup")
		cmd.Env = append([]string{"DISPUTESYNC_NATS_URL=" + c.url(), "DISPUTESYNC_NATS_USER=admin",
			"DISPUTESYNC_NATS_PASSWORD=" + c.passwords["admin"]}, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := setup("DISPUTESYNC_NATS_TLS_CA="+ca.path, "DISPUTESYNC_NATS_TLS_CERT="+clientCert,
		"DISPUTESYNC_NATS_TLS_KEY="+clientKey); err != nil {
		t.Errorf("setup over TLS with a client certificate: %v\n%s", err, out)
	}
	out, err := setup("DISPUTESYNC_NATS_TLS_CA="+wrong.path, "DISPUTESYNC_NATS_TLS_CERT="+clientCert,
		"DISPUTESYNC_NATS_TLS_KEY="+clientKey)
	if err == nil || !strings.Contains(out, "not signed by a trusted CA") || !strings.Contains(out, "--nats-tls-ca") {
		t.Errorf("setup with another CA: %v, want a refusal naming --nats-tls-ca:\n%s", err, out)
	}
	if strings.Contains(out, c.passwords["admin"]) {
		t.Errorf("the NATS password appears in the output:\n%s", out)
	}
	if out, err := setup("DISPUTESYNC_NATS_TLS_CA=" + ca.path); err == nil {
		t.Errorf("setup without a client certificate succeeded; the server requires one:\n%s", out)
	}
}
