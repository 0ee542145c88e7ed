package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/disputesync/disputesync/sandbox"
)

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Profiles    []string          `yaml:"profiles"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
}

// TestCompose checks deploy/compose/compose.yaml against the files it uses
// (.ci/run also runs docker-compose config on it): the three NATS nodes get
// every variable the shipped NATS config names, every mounted path exists,
// setup runs as admin and each role as its own user, two workers, the
// sandbox only in the demo profile, and env.example names every variable
// the file requires.
func TestCompose(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(root, "deploy", "compose")
	b, err := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	svc := func(name string) composeService {
		t.Helper()
		s, ok := f.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		return s
	}

	// Every $NATS_ variable of the shipped NATS files, on every node.
	var natsVars []string
	for _, file := range []string{"nats-server.conf", "permissions.conf"} {
		conf, err := os.ReadFile(filepath.Join(root, "deploy", "nats", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\$(NATS_[A-Z_]+)`).FindAllStringSubmatch(string(conf), -1) {
			if !slices.Contains(natsVars, m[1]) {
				natsVars = append(natsVars, m[1])
			}
		}
	}
	if len(natsVars) < 12 {
		t.Fatalf("found only %v in deploy/nats", natsVars)
	}
	for _, node := range []string{"nats-1", "nats-2", "nats-3"} {
		s := svc(node)
		for _, v := range natsVars {
			if s.Environment[v] == "" {
				t.Errorf("%s: %s is not set", node, v)
			}
		}
		if s.Environment["NATS_SERVER_NAME"] != node {
			t.Errorf("%s: NATS_SERVER_NAME %q", node, s.Environment["NATS_SERVER_NAME"])
		}
		if !strings.Contains(strings.Join(s.Command, " "), "/etc/nats/nats-server.conf") || !slices.Contains(s.Volumes, "../nats:/etc/nats:ro") {
			t.Errorf("%s does not run the shipped deploy/nats config", node)
		}
	}

	// Mounted host paths exist.
	for name, s := range f.Services {
		for _, v := range s.Volumes {
			host := strings.Split(v, ":")[0]
			if !strings.HasPrefix(host, ".") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join(dir, host)); err != nil {
				t.Errorf("%s mounts %s: %v", name, host, err)
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(dir, s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s builds %s: %v", name, s.Build.Dockerfile, err)
			}
		}
	}

	// Redis: the shipped conf and ACL.
	if ep := strings.Join(svc("redis").Entrypoint, " "); !strings.Contains(ep, "render-acl.sh") || !strings.Contains(ep, "redis.conf") {
		t.Errorf("redis does not start from the shipped redis.conf and users.acl: %s", ep)
	}

	// Who logs in as whom.
	for name, want := range map[string]struct {
		user, cmd string
	}{
		"setup":   {"admin", "setup"},
		"poller":  {"poller", "run --roles poller"},
		"worker":  {"worker", "run --roles worker"},
		"webhook": {"webhook", "run --roles webhook"},
	} {
		s := svc(name)
		if u := s.Environment["DISPUTESYNC_NATS_USER"]; u != want.user {
			t.Errorf("%s logs in as %q, want %q", name, u, want.user)
		}
		if !strings.Contains(s.Environment["DISPUTESYNC_NATS_PASSWORD"], "NATS_"+strings.ToUpper(want.user)+"_PASSWORD") {
			t.Errorf("%s: password %q is not $NATS_%s_PASSWORD", name, s.Environment["DISPUTESYNC_NATS_PASSWORD"], strings.ToUpper(want.user))
		}
		if got := strings.Join(s.Command, " "); got != want.cmd {
			t.Errorf("%s runs %q, want %q", name, got, want.cmd)
		}
		if s.Environment["DISPUTESYNC_REPLICAS"] != "3" {
			t.Errorf("%s: DISPUTESYNC_REPLICAS %q, want 3 (R3 streams)", name, s.Environment["DISPUTESYNC_REPLICAS"])
		}
	}
	if r := svc("worker").Deploy.Replicas; r != 2 {
		t.Errorf("worker replicas %d, want 2", r)
	}
	if p := svc("sandbox").Profiles; !slices.Equal(p, []string{"demo"}) {
		t.Errorf("sandbox profiles %v, want [demo]", p)
	}
	for _, s := range []string{"prometheus", "grafana"} {
		svc(s)
	}
	// The demo webhook verifies the sandbox's notifications: run --roles
	// webhook refuses to start without any endpoint's credentials.
	if svc("webhook").Environment["DISPUTESYNC_DISPUTEAPI_WEBHOOK_SECRET_FILE"] == "" {
		t.Error("webhook has no DISPUTESYNC_DISPUTEAPI_WEBHOOK_SECRET_FILE: run --roles webhook would refuse to start")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sandbox-webhook-secret")); err != nil || strings.TrimSpace(string(b)) != sandbox.TestKeys.DisputeAPIWebhookSecret {
		t.Errorf("sandbox-webhook-secret is not the sandbox's published secret (%v)", err)
	}

	// env.example names every required variable.
	example, err := os.ReadFile(filepath.Join(dir, "env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_]+):\?`).FindAllStringSubmatch(string(b), -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).Match(example) {
			t.Errorf("env.example does not set %s", m[1])
		}
	}
}
