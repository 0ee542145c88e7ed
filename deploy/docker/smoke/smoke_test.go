//go:build dockersmoke

package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/sandbox"
)

// prefix is the deployment's: the containers' NATS and Redis are the
// test's own, so any fixed prefix is isolated.
const prefix = "smoke"

func image() string {
	if v := os.Getenv("DISPUTESYNC_TEST_IMAGE"); v != "" {
		return v
	}
	return "disputesync:dev"
}

func TestImageEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	nw, err := network.New(ctx)
	if err != nil {
		t.Fatalf("network: %v", err)
	}
	t.Cleanup(func() { _ = nw.Remove(context.Background()) })

	start(ctx, t, nw, "nats", testcontainers.ContainerRequest{
		Image: testenv.NATSImage(), Cmd: testenv.NATSArgs, ExposedPorts: []string{"4222/tcp"},
		WaitingFor: testenv.NATSReady(),
	})
	start(ctx, t, nw, "redis", testcontainers.ContainerRequest{
		Image: testenv.RedisImage(), Cmd: testenv.RedisArgs, ExposedPorts: []string{"6379/tcp"},
		WaitingFor: testenv.RedisReady(),
	})
	sb := start(ctx, t, nw, "sandbox", testcontainers.ContainerRequest{
		Image: image(), Cmd: []string{"sandbox", "--addr", "0.0.0.0:8086", "--webhook-url", "http://disputesync:8087"},
		ExposedPorts: []string{"8086/tcp"},
		WaitingFor:   wait.ForHTTP("/_sandbox/ids").WithPort("8086/tcp"),
	})
	// The sandbox is not on the worker's loopback, so disputesync gets the
	// sandbox's published test token and webhook secret as credential
	// files, as a real deployment gets its provider's.
	const tokenPath, secretPath = "/disputeapi-token", "/disputeapi-webhook-secret"
	app := start(ctx, t, nw, "disputesync", testcontainers.ContainerRequest{
		Image: image(),
		Cmd: []string{"run", "--roles", "poller,worker,webhook",
			"--nats-url", "nats://nats:4222", "--redis-url", "redis://redis:6379/0", "--prefix", prefix,
			"--disputeapi-url", "http://sandbox:8086", "--disputeapi-token-file", tokenPath,
			"--disputeapi-webhook-secret-file", secretPath, "--poll-interval", "2s"},
		Files: []testcontainers.ContainerFile{
			{Reader: strings.NewReader(sandbox.TestKeys.DisputeAPIToken), ContainerFilePath: tokenPath, FileMode: 0o444},
			{Reader: strings.NewReader(sandbox.TestKeys.DisputeAPIWebhookSecret), ContainerFilePath: secretPath, FileMode: 0o444},
		},
		ExposedPorts: []string{"9464/tcp"},
		WaitingFor:   wait.ForHTTP("/readyz").WithPort("9464/tcp"),
	})
	t.Cleanup(func() {
		if t.Failed() {
			logs(t, app)
		}
	})

	sandboxURL, err := sb.PortEndpoint(ctx, "8086/tcp", "http")
	if err != nil {
		t.Fatal(err)
	}
	var rec sandbox.Record
	control(ctx, t, http.MethodPost, sandboxURL+"/_sandbox/disputes", map[string]any{}, &rec)
	disputeID := rec.Disputes.DisputesID
	if disputeID == "" {
		t.Fatalf("sandbox created a dispute without an id: %+v", rec)
	}

	natsEP, err := containerOf(t, "nats").PortEndpoint(ctx, "4222/tcp", "nats")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsEP)
	if err != nil {
		t.Fatalf("connect %s: %v", natsEP, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := topology.MustNew(prefix)

	// The command goes in the way an operator's system sends it.
	requestID := fmt.Sprintf("smoke-%d", time.Now().UnixNano())
	cmd, _ := json.Marshal(map[string]any{
		"disputeRequestId": requestID, "disputeId": disputeID, "params": map[string]any{}, "requestedBy": "smoke test",
	})
	if _, err := js.Publish(ctx, names.ActionSubject("disputeapi", "abandon"), cmd); err != nil {
		t.Fatalf("publish command: %v", err)
	}

	res := next(ctx, t, js, names.ResultsStream(), names.ResultSubject("disputeapi", "abandon"), func(m map[string]any) bool {
		return m["disputeRequestId"] == requestID
	})
	if res["outcome"] != "succeeded" {
		t.Fatalf("result: %v, want outcome succeeded", res)
	}
	var effects []sandbox.Effect
	q := url.Values{"provider": {"disputeapi"}, "disputeRequestId": {requestID}}
	control(ctx, t, http.MethodGet, sandboxURL+"/_sandbox/effects?"+q.Encode(), nil, &effects)
	if len(effects) != 1 || effects[0].Operation != "abandon" || effects[0].DisputeID != disputeID {
		t.Fatalf("sandbox effects of %s: %+v, want one abandon of %s", requestID, effects, disputeID)
	}

	// The poller sees the abandoned dispute.
	ev := next(ctx, t, js, names.EventsStream(), names.EventsAll(), func(m map[string]any) bool {
		return m["subject"] == disputeID && m["type"] != "dispute.notified"
	})
	if ev["source"] != "disputeapi" || !strings.HasPrefix(fmt.Sprint(ev["type"]), "dispute.") {
		t.Fatalf("event for %s: %v", disputeID, ev)
	}

	// The provider pushes a notification to the webhook receiver.
	var d sandbox.Delivery
	control(ctx, t, http.MethodPost, sandboxURL+"/_sandbox/notify",
		map[string]any{"kind": "disputeapi", "disputeId": disputeID, "wait": true}, &d)
	if !d.Delivered {
		t.Fatalf("notification not accepted by the webhook receiver: %+v", d)
	}
	notified := next(ctx, t, js, names.EventsStream(), names.EventsAll(), func(m map[string]any) bool {
		return m["subject"] == disputeID && m["type"] == "dispute.notified"
	})
	t.Logf("result %s %s; poller event %s %s; webhook event %s", res["outcome"], res["code"], ev["type"], ev["id"], notified["id"])
}

// containers by network alias, for the test's own calls.
var containers = map[string]testcontainers.Container{}

func containerOf(t *testing.T, alias string) testcontainers.Container {
	c, ok := containers[alias]
	if !ok {
		t.Fatalf("no container %s", alias)
	}
	return c
}

// start runs req on nw under alias and terminates it when the test ends.
func start(ctx context.Context, t *testing.T, nw *testcontainers.DockerNetwork, alias string, req testcontainers.ContainerRequest) testcontainers.Container {
	t.Helper()
	req.Networks = []string{nw.Name}
	req.NetworkAliases = map[string][]string{nw.Name: {alias}}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if c != nil {
		t.Cleanup(func() { _ = c.Terminate(context.Background()) })
	}
	if err != nil {
		if c != nil {
			logs(t, c)
		}
		t.Fatalf("%s (%s): %v", alias, req.Image, err)
	}
	containers[alias] = c
	return c
}

func logs(t *testing.T, c testcontainers.Container) {
	rc, err := c.Logs(context.Background())
	if err != nil {
		t.Logf("logs: %v", err)
		return
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	t.Logf("container %s log:\n%s", c.GetContainerID(), b)
}

// control calls the sandbox's control API and decodes its JSON answer.
func control(ctx context.Context, t *testing.T, method, u string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, u, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, u, err, b)
	}
}

// next reads stream (filtered by subject) from its start until a message
// matches, and returns it decoded.
func next(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, subject string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatalf("consume %s: %v", stream, err)
	}
	for {
		msg, err := c.Next(jetstream.FetchContext(ctx))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Fatalf("%s: no matching message on %s within 2 minutes", stream, subject)
			}
			t.Fatalf("%s: %v", stream, err)
		}
		var m map[string]any
		if err := json.Unmarshal(msg.Data(), &m); err != nil {
			t.Fatalf("%s: %s: %v", stream, msg.Data(), err)
		}
		if match(m) {
			return m
		}
	}
}
