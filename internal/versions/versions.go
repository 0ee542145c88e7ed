// Package versions checks that the NATS and Redis servers are new enough:
// NATS 2.10 (multiple filter subjects, stream metadata, TermWithReason) and
// Redis 6.2 (ACL users, GETDEL, PXAT).
package versions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// Minimum versions.
var (
	MinNATS  = [3]int{2, 10, 0}
	MinRedis = [3]int{6, 2, 0}
)

// JetStreamInfo is the subject CheckNATS asks; a user that may not publish
// to it cannot use JetStream at all.
const JetStreamInfo = "$JS.API.INFO"

// ErrJetStreamNoAnswer is a JetStream API request that timed out: the
// server has JetStream (or it would have answered "no responders"), but the
// request got no answer, most often because the user may not publish to the
// API subject (the permissions violation arrives on the connection's error
// handler, not as the request's error).
var ErrJetStreamNoAnswer = errors.New("JetStream did not answer")

// CheckNATS refuses a server older than MinNATS or without JetStream, and a
// user whose account has no JetStream; each says which.
func CheckNATS(nc *nats.Conn) error {
	v := nc.ConnectedServerVersion()
	if !atLeast(v, MinNATS) {
		return fmt.Errorf("NATS server %s is too old: disputesync needs 2.10 or newer", v)
	}
	msg, err := nc.Request(JetStreamInfo, nil, nc.Opts.Timeout)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("NATS server %s has no JetStream (start it with -js): %w", v, err)
	case errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("NATS server %s: %w to %s within %s: %w", v, ErrJetStreamNoAnswer, JetStreamInfo, nc.Opts.Timeout, err)
	case err != nil:
		return fmt.Errorf("NATS server %s: %s: %w", v, JetStreamInfo, err)
	}
	var info struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if json.Unmarshal(msg.Data, &info) == nil && info.Error != nil {
		return fmt.Errorf("NATS server %s has JetStream, but not for this user's account: %s (err_code %d)", v, info.Error.Description, info.Error.ErrCode)
	}
	return nil
}

// CheckRedis refuses a server older than MinRedis.
func CheckRedis(ctx context.Context, c redis.UniversalClient) error {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	v := infoField(info, "redis_version")
	if v == "" {
		return fmt.Errorf("redis: INFO has no redis_version")
	}
	if !atLeast(v, MinRedis) {
		return fmt.Errorf("Redis server %s is too old: disputesync needs 6.2 or newer", v)
	}
	return nil
}

// EvictionPolicy returns Redis's maxmemory-policy, or "" when CONFIG GET is
// not allowed.
func EvictionPolicy(ctx context.Context, c redis.UniversalClient) string {
	res, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return ""
	}
	return res["maxmemory-policy"]
}

func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func atLeast(version string, min [3]int) bool {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	for i := 0; i < 3; i++ {
		n := 0
		if i < len(parts) {
			digits := parts[i]
			if j := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
				digits = digits[:j]
			}
			n, _ = strconv.Atoi(digits)
		}
		if n != min[i] {
			return n > min[i]
		}
	}
	return true
}
