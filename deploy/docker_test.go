package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerStage is one FROM ... stage of a Dockerfile.
type dockerStage struct {
	from, name string
	lines      []string // instructions after FROM, continuation lines joined
}

func parseDockerfile(t *testing.T, path string) []dockerStage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var cur *dockerStage
	joined := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if strings.EqualFold(f[0], "FROM") {
			s := dockerStage{from: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				s.name = f[3]
			}
			stages = append(stages, s)
			cur = &stages[len(stages)-1]
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, line)
		}
	}
	return stages
}

func (s dockerStage) instr(name string) []string {
	var out []string
	for _, l := range s.lines {
		if f := strings.Fields(l); strings.EqualFold(f[0], name) {
			out = append(out, strings.TrimSpace(l[len(f[0]):]))
		}
	}
	return out
}

// TestDockerfile checks deploy/docker/Dockerfile without a Docker engine:
// a build stage running the project's one build command, which is static,
// and final stages (the release image, the default, and the registry-free
// "local" one) on scratch or distroless, as a non-root user, with no RUN
// (no shell needed) and an exec-form entrypoint; .ci/run builds the binary
// with the same command.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	stages := parseDockerfile(t, filepath.Join(root, "deploy", "docker", "Dockerfile"))
	byName := map[string]dockerStage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	build, ok := byName["build"]
	if !ok {
		t.Fatalf("no stage named build: %+v", stages)
	}
	const buildCmd = "deploy/docker/build-binary.sh"
	if runs := strings.Join(build.instr("RUN"), "\n"); !strings.Contains(runs, buildCmd) {
		t.Errorf("the build stage does not run %s:\n%s", buildCmd, runs)
	}
	script, err := os.ReadFile(filepath.Join(root, buildCmd))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^CGO_ENABLED=0 exec go build .*\./cmd/disputesync$`).Match(script) {
		t.Errorf("%s does not build ./cmd/disputesync with CGO_ENABLED=0:\n%s", buildCmd, script)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^sh ` + regexp.QuoteMeta(buildCmd) + ` `).Match(ci) {
		t.Errorf(".ci/run does not build the binary with %s", buildCmd)
	}

	if last := stages[len(stages)-1]; last.name != "release" {
		t.Errorf("the default (last) stage is %q, want release", last.name)
	}
	for _, name := range []string{"release", "local"} {
		s, ok := byName[name]
		if !ok {
			t.Errorf("no stage %s", name)
			continue
		}
		if s.from != "scratch" && !strings.HasPrefix(s.from, "gcr.io/distroless/static") {
			t.Errorf("stage %s is FROM %s, want scratch or distroless/static", name, s.from)
		}
		users := s.instr("USER")
		if len(users) == 0 {
			t.Errorf("stage %s sets no USER: it would run as root", name)
		} else if u := strings.Split(users[len(users)-1], ":")[0]; u == "root" || u == "0" {
			t.Errorf("stage %s runs as %s", name, u)
		}
		if runs := s.instr("RUN"); len(runs) > 0 {
			t.Errorf("stage %s has RUN %q: the final image has no shell", name, runs)
		}
		ep := s.instr("ENTRYPOINT")
		if len(ep) != 1 || ep[0] != `["/disputesync"]` {
			t.Errorf("stage %s ENTRYPOINT %q, want [\"/disputesync\"] (exec form)", name, ep)
		}
		copies := strings.Join(s.instr("COPY"), "\n")
		if !strings.Contains(copies, "/disputesync") {
			t.Errorf("stage %s copies no /disputesync", name)
		}
		if name == "release" && !strings.Contains(copies, "--from=build") {
			t.Errorf("release copies its binary from %q, want the build stage", copies)
		}
	}
}
