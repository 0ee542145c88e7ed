// Package deploy holds the tests of the files under deploy/: each starts the
// real servers (or builds the real manifests) from the shipped files, with
// only ports, paths and passwords substituted, and runs disputesync against
// them. There is no non-test code here.
package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries built once per test binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "disputesync-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module root: this package is deploy/.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var (
	buildMu   sync.Mutex
	buildOnce = map[string]*sync.Once{}
	buildErrs = map[string]error{}
)

// build builds a main package once per test binary into binDir:
// "disputesync" from ./cmd/disputesync and "nats-server" from the
// nats-server module this module depends on (a current one, whatever is on
// PATH). Plain go build, so the build cache of the other tests serves:
// deploy/docker/build-binary.sh's -trimpath would rebuild every package.
// DISPUTESYNC_TEST_BINARY (a path, relative to the module root or
// absolute) names a disputesync already built, as .ci/run does with the
// release build.
func build(root, name string) error {
	buildMu.Lock()
	once, ok := buildOnce[name]
	if !ok {
		once = &sync.Once{}
		buildOnce[name] = once
	}
	buildMu.Unlock()
	once.Do(func() {
		out := filepath.Join(binDir, name)
		if prebuilt := os.Getenv("DISPUTESYNC_TEST_BINARY"); name == "disputesync" && prebuilt != "" {
			// .ci/run's release build (deploy/docker/build-binary.sh).
			abs, err := filepath.Abs(filepath.Join(root, prebuilt))
			if filepath.IsAbs(prebuilt) {
				abs = prebuilt
			}
			if err == nil {
				err = os.Symlink(abs, out)
			}
			buildMu.Lock()
			buildErrs[name] = err
			buildMu.Unlock()
			return
		}
		var cmd *exec.Cmd
		switch name {
		case "disputesync":
			cmd = exec.Command("go", "build", "-o", out, "./cmd/disputesync")
		case "nats-server":
			cmd = exec.Command("go", "build", "-o", out, "github.com/nats-io/nats-server/v2")
		default:
			panic("unknown binary " + name)
		}
		cmd.Dir = root
		var err error
		if msg, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), e, msg)
		}
		buildMu.Lock()
		buildErrs[name] = err
		buildMu.Unlock()
	})
	buildMu.Lock()
	defer buildMu.Unlock()
	return buildErrs[name]
}

// binaries builds the named binaries in parallel (each build is slow on a
// busy machine, and they share nothing) and returns their paths.
func binaries(t testing.TB, names ...string) map[string]string {
	t.Helper()
	root := repoRoot(t)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = build(root, n) }()
	}
	wg.Wait()
	paths := map[string]string{}
	for i, n := range names {
		if errs[i] != nil {
			t.Fatalf("build %s: %v", n, errs[i])
		}
		paths[n] = filepath.Join(binDir, n)
	}
	return paths
}

// freePort returns a loopback TCP port nobody listened on a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a child process started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // its stdout and stderr
	done chan struct{}
	err  error
}

// start runs bin with args and exactly the environment env (plus PATH and
// HOME), stopping it when the test ends.
func start(t testing.TB, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv("DEPLOY_TEST_LOGS") != "" {
			t.Logf("--- %s output:\n%s", name, tail(p.output(), 4000))
		}
	})
	return p
}

// stop ends the process: SIGTERM, then SIGKILL if it has not exited.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process ended, with its output.
func (p *proc) exited() (bool, string) {
	select {
	case <-p.done:
		return true, fmt.Sprintf("%s exited (%v):\n%s", p.name, p.err, tail(p.output(), 4000))
	default:
		return false, ""
	}
}

// output is what the process wrote so far.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// await polls cond until it returns nil, failing the test after timeout.
// The processes it waits for have no other readiness signal; every wait
// also fails at once when one of watch exits.
func await(t testing.TB, what string, timeout time.Duration, cond func() error, watch ...*proc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		for _, p := range watch {
			if gone, out := p.exited(); gone {
				t.Fatalf("%s: %s", what, out)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond) // polling an external process
	}
}

// httpStatus GETs url and returns its status code.
func httpStatus(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// ready waits until addr's /readyz answers 200.
func ready(t testing.TB, p *proc, addr string) {
	t.Helper()
	await(t, p.name+" ready", 45*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		code, body, err := httpStatus(ctx, "http://"+addr+"/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz %d %s", code, body)
		}
		return nil
	}, p)
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// startRedisServer runs redis-server with args (which set its ports) in a
// directory of its own, which it returns.
func startRedisServer(t testing.TB, args ...string) (*proc, string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
	}
	dir := t.TempDir()
	args = append(args, "--dir", dir, "--logfile", "", "--daemonize", "no")
	return start(t, "redis-server", bin, nil, args...), dir
}

// startRedis runs a plain redis-server for tests of other files.
func startRedis(t testing.TB) string {
	t.Helper()
	port := freePort(t)
	p, _ := startRedisServer(t, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no")
	await(t, "redis-server", 20*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr(port), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}, p)
	return fmt.Sprintf("redis://%s/0", addr(port))
}
