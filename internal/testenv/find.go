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
	srv, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: dir, MaxPayload: 8 << 20})
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "disputesync-test-redis-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return "", err
	}
	onStop(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) })
	u := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := checkRedis(u)
		if err == nil {
			return u, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("started on port %d but it does not answer: %w", port, err)
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

func natsContainer() (string, error) {
	ctx := context.Background()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: "nats:2.10", Cmd: []string{"-js"}, ExposedPorts: []string{"4222/tcp"},
			WaitingFor: wait.ForLog("Server is ready"),
		},
		Started: true,
	})
	if err != nil {
		return "", err
	}
	onStop(func() { _ = c.Terminate(context.Background()) })
	ep, err := c.PortEndpoint(ctx, "4222/tcp", "nats")
	return ep, err
}

func redisContainer() (string, error) {
	ctx := context.Background()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: "redis:7", ExposedPorts: []string{"6379/tcp"},
			WaitingFor: wait.ForLog("Ready to accept connections"),
		},
		Started: true,
	})
	if err != nil {
		return "", err
	}
	onStop(func() { _ = c.Terminate(context.Background()) })
	ep, err := c.PortEndpoint(ctx, "6379/tcp", "redis")
	if err != nil {
		return "", err
	}
	return ep + "/0", nil
}
