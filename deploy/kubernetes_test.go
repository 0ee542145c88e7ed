package deploy

import (
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// k8sObject is the part of a manifest the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas     *int `yaml:"replicas"`
		MinAvailable any  `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		LivenessProbe  probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
	} `yaml:"containers"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

func kustomizeBuild(t *testing.T, dir string) []k8sObject {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []k8sObject
	for _, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var o k8sObject
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// shutdownSeconds is disputesync's longest shutdown: the webhook's 10 s
// for requests in flight, plus the 2 s NATS drain (the worker's 4 s grace
// runs meanwhile). terminationGracePeriodSeconds must exceed it.
const shutdownSeconds = 12

// TestKustomize builds deploy/kubernetes's base and overlay with kustomize
// (the library kubectl uses) and checks what a production Deployment needs:
// one per role, each as its own NATS user; probes on /readyz and /healthz;
// resources; a PodDisruptionBudget; a grace period longer than the
// shutdown; secrets only by reference; non-root, read-only pods.
func TestKustomize(t *testing.T) {
	root := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	for _, tc := range []struct {
		dir, namespace, image string
		workers               int
	}{
		{"base", "", "disputesync", 2},
		{"overlays/production", "disputesync", "registry.example.com/disputesync:v1.0.0", 3},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			objs := kustomizeBuild(t, filepath.Join(root, tc.dir))
			deployments := map[string]k8sObject{}
			var pdbs []k8sObject
			for _, o := range objs {
				if o.Metadata.Namespace != tc.namespace {
					t.Errorf("%s %s in namespace %q, want %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace, tc.namespace)
				}
				switch o.Kind {
				case "Deployment":
					deployments[o.Metadata.Name] = o
				case "PodDisruptionBudget":
					pdbs = append(pdbs, o)
				case "Secret":
					t.Errorf("Secret %s is shipped: secrets must be referenced, not generated", o.Metadata.Name)
				}
			}
			for _, role := range []string{"poller", "worker", "webhook"} {
				d, ok := deployments["disputesync-"+role]
				if !ok {
					t.Errorf("no Deployment disputesync-%s", role)
					continue
				}
				checkDeployment(t, role, d, tc.image)
				covered := false
				for _, p := range pdbs {
					if p.Spec.MinAvailable != nil && subset(p.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
						covered = true
					}
				}
				if !covered {
					t.Errorf("%s: no PodDisruptionBudget selects its pods", role)
				}
			}
			if w := deployments["disputesync-worker"]; w.Spec.Replicas == nil || *w.Spec.Replicas != tc.workers {
				t.Errorf("worker replicas %v, want %d", w.Spec.Replicas, tc.workers)
			}
		})
	}
}

func checkDeployment(t *testing.T, role string, d k8sObject, image string) {
	t.Helper()
	p := d.Spec.Template.Spec
	if p.TerminationGracePeriodSeconds == nil || *p.TerminationGracePeriodSeconds <= shutdownSeconds {
		t.Errorf("%s: terminationGracePeriodSeconds %v, want more than %d", role, p.TerminationGracePeriodSeconds, shutdownSeconds)
	}
	if sc := p.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: pod security context %+v, want non-root", role, sc)
	}
	if len(p.Containers) != 1 {
		t.Fatalf("%s: %d containers", role, len(p.Containers))
	}
	c := p.Containers[0]
	if c.Image != image {
		t.Errorf("%s: image %s, want %s", role, c.Image, image)
	}
	if strings.Join(c.Args, " ") != "run --roles "+role {
		t.Errorf("%s: args %q", role, c.Args)
	}
	for name, pr := range map[string]struct {
		p    probe
		path string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}} {
		if pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path {
			t.Errorf("%s: %s probe %+v, want GET %s", role, name, pr.p.HTTPGet, pr.path)
		}
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: resources %+v, want cpu and memory requests and a memory limit", role, c.Resources)
	}
	if sc := c.SecurityContext; sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: container security context: want a read-only root and no privilege escalation", role)
	}
	user := ""
	for _, e := range c.Env {
		switch {
		case e.Name == "DISPUTESYNC_NATS_USER":
			user = e.Value
		case strings.Contains(e.Name, "PASSWORD") || e.Name == "DISPUTESYNC_REDIS_URL":
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s: %s is not a secret reference", role, e.Name)
			}
		}
	}
	if user != role {
		t.Errorf("%s: logs in to NATS as %q, want its own user %q", role, user, role)
	}
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
