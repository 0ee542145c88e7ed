package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/disputesync/disputesync/internal/embedded"
	"github.com/disputesync/disputesync/internal/versions"
)

func findNATS() (string, error) {
	if forceContainers() {
		u, err := natsContainer()
		if err != nil {
			return "", fmt.Errorf("%s=1: %w", useContainersEnv, err)
		}
		sources = append(sources, "nats testcontainer ("+useContainersEnv+")")
		return u, nil
	}
	if u := os.Getenv("DISPUTESYNC_TEST_NATS_URL"); u != "" {
		if err := checkNATS(u); err != nil {
			return "", fmt.Errorf("DISPUTESYNC_TEST_NATS_URL=%s: %w", u, err)
		}
		sources = append(sources, "nats from DISPUTESYNC_TEST_NATS_URL")
		return u, nil
	}
	var reasons []string
	const local = "nats://127.0.0.1:4222"
	if err := checkNATS(local); err == nil {
		sources = append(sources, "local nats")
		return local, nil
	} else {
		reasons = append(reasons, "local: "+err.Error())
	}
	if dockerAvailable() {
		u, err := natsContainer()
		if err == nil {
			sources = append(sources, "nats testcontainer")
			return u, nil
		}
		reasons = append(reasons, "testcontainers: "+err.Error())
	}
	dir, err := os.MkdirTemp("", "disputesync-test-nats-")
	if err != nil {
		return "", err
	}
	srv, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: dir, MaxPayload: 8 << 20, Problems: recordProblem})
	if err != nil {
		os.RemoveAll(dir)
		reasons = append(reasons, "embedded: "+err.Error())
		return "", errors.New(strings.Join(reasons, "; "))
	}
	onStop(func() { srv.Shutdown(); os.RemoveAll(dir) })
	sources = append(sources, "embedded nats-server "+srv.Version()+" ("+strings.Join(reasons, "; ")+")")
	return srv.URL(), nil
}

func checkNATS(u string) error {
	nc, err := nats.Connect(u, nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	return versions.CheckNATS(nc)
}

func findRedis() (string, error) {
	if forceContainers() {
		u, err := redisContainer()
		if err != nil {
			return "", fmt.Errorf("%s=1: %w", useContainersEnv, err)
		}
		sources = append(sources, "redis testcontainer ("+useContainersEnv+")")
		return u, nil
	}
	if u := os.Getenv("DISPUTESYNC_TEST_REDIS_URL"); u != "" {
		if err := checkRedis(u); err != nil {
			return "", fmt.Errorf("DISPUTESYNC_TEST_REDIS_URL=%s: %w", u, err)
		}
		sources = append(sources, "redis from DISPUTESYNC_TEST_REDIS_URL")
		return u, nil
	}
	var reasons []string
	const local = "redis://127.0.0.1:6379/0"
	if err := checkRedis(local); err == nil {
		sources = append(sources, "local redis")
		return local, nil
	} else {
		reasons = append(reasons, "local: "+err.Error())
	}
	if dockerAvailable() {
		u, err := redisContainer()
		if err == nil {
			sources = append(sources, "redis testcontainer")
			return u, nil
		}
		reasons = append(reasons, "testcontainers: "+err.Error())
	}
	u, err := redisBinary()
	if err != nil {
		reasons = append(reasons, "redis-server: "+err.Error())
		return "", errors.New(strings.Join(reasons, "; "))
	}
	sources = append(sources, "redis-server from PATH")
	return u, nil
}

func checkRedis(u string) error {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	opts.DialTimeout = 2 * time.Second
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return versions.CheckRedis(ctx, c)
}

func redisBinary() (string, error) {
	dir, err := os.MkdirTemp("", "disputesync-test-redis-")
	if err != nil {
		return "", err
	}
	addr, stop, err := startRedisServer(dir, func(addr string) error { return checkRedis("redis://" + addr + "/0") })
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	onStop(func() { stop(); os.RemoveAll(dir) })
	return "redis://" + addr + "/0", nil
}

// startRedisServer starts a redis-server of our own on a free loopback port,
// its files in dir and args added to its command line, and waits until
// ready(addr) succeeds. stop kills it.
func startRedisServer(dir string, ready func(addr string) error, args ...string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logFile := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", logFile}, args...)...)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ready(addr)
		if err == nil {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			b, _ := os.ReadFile(logFile)
			return "", nil, fmt.Errorf("redis-server started on %s but does not answer: %w\n%s", addr, err, b)
		}
		time.Sleep(50 * time.Millisecond) // polling a child process that has no readiness signal
	}
}

func dockerAvailable() bool {
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return p.Health(ctx) == nil
}

// useContainersEnv, set to 1, makes testcontainers the only source: the
// loopback services and the URLs from the environment are not tried, and
// a missing engine or image fails the tests instead of falling back. CI
// runs the integration tests once this way, so that this path is known to
// work for users whose services come from Docker.
const useContainersEnv = "DISPUTESYNC_TEST_USE_CONTAINERS"

func forceContainers() bool { return os.Getenv(useContainersEnv) == "1" }

// NATSImage and RedisImage are the images the testcontainers branch runs:
// DISPUTESYNC_TEST_NATS_IMAGE / DISPUTESYNC_TEST_REDIS_IMAGE, else the
// official images. scripts/docker-engine builds local ones (no registry
// needed) and prints these variables. Both kinds take the same arguments:
// NATSArgs and RedisArgs.
func NATSImage() string { return envOr("DISPUTESYNC_TEST_NATS_IMAGE", "nats:2.10") }

// RedisImage: see NATSImage.
func RedisImage() string { return envOr("DISPUTESYNC_TEST_REDIS_IMAGE", "redis:7") }

// NATSArgs and RedisArgs are the containers' commands: JetStream with a
// store in the container, and a Redis reachable from other containers that
// keeps nothing on disk.
var (
	NATSArgs  = []string{"-js", "-sd", "/data"}
	RedisArgs = []string{"--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"}
)

// NATSReady and RedisReady wait until a container of NATSImage or
// RedisImage serves: its log says so and its port answers.
func NATSReady() wait.Strategy {
	return wait.ForAll(wait.ForLog("Server is ready"), wait.ForListeningPort("4222/tcp"))
}

// RedisReady: see NATSReady.
func RedisReady() wait.Strategy {
	return wait.ForAll(wait.ForLog("Ready to accept connections"), wait.ForListeningPort("6379/tcp"))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func natsContainer() (string, error) {
	ctx := context.Background()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: NATSImage(), Cmd: NATSArgs, ExposedPorts: []string{"4222/tcp"},
			WaitingFor: NATSReady(),
		},
		Started: true,
	})
	if c != nil {
		// Terminated even when it failed to become ready.
		onStop(func() { _ = c.Terminate(context.Background()) })
	}
	if err != nil {
		return "", err
	}
	return c.PortEndpoint(ctx, "4222/tcp", "nats")
}

func redisContainer() (string, error) {
	ctx := context.Background()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: RedisImage(), Cmd: RedisArgs, ExposedPorts: []string{"6379/tcp"},
			WaitingFor: RedisReady(),
		},
		Started: true,
	})
	if c != nil {
		onStop(func() { _ = c.Terminate(context.Background()) })
	}
	if err != nil {
		return "", err
	}
	ep, err := c.PortEndpoint(ctx, "6379/tcp", "redis")
	if err != nil {
		return "", err
	}
	return ep + "/0", nil
}
