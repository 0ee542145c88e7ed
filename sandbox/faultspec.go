package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseFaultSpec reads a fault setting as given on a command line:
//
//	provider[.endpoint]:key=value[,key=value...]
//
// with keys error, throttle, timeout, applyThenFail, malformed, unavailable (rates in
// [0, 1]), latency (a Go duration) and rateLimit (requests per second), e.g.
// "alipay.acceptDispute:error=0.2,latency=150ms" or "ingenico:rateLimit=5".
// The endpoint may contain slashes (disputeapi "documents/upload").
func ParseFaultSpec(spec string) (provider, endpoint string, f Faults, err error) {
	target, settings, ok := strings.Cut(spec, ":")
	if !ok || target == "" || settings == "" {
		return "", "", Faults{}, fmt.Errorf("sandbox: fault %q: want provider[.endpoint]:key=value,...", spec)
	}
	provider, endpoint, _ = strings.Cut(target, ".")
	switch provider {
	case ProviderDisputeAPI, ProviderAlipay, ProviderAlipayPlus, ProviderIngenico:
	default:
		return "", "", Faults{}, fmt.Errorf("sandbox: fault %q: unknown provider %q", spec, provider)
	}
	for _, kv := range strings.Split(settings, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return "", "", Faults{}, fmt.Errorf("sandbox: fault %q: %q is not key=value", spec, kv)
		}
		if k == "latency" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return "", "", Faults{}, fmt.Errorf("sandbox: fault %q: latency: %q is not a duration", spec, v)
			}
			f.Latency = d
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 {
			return "", "", Faults{}, fmt.Errorf("sandbox: fault %q: %s: %q is not a non-negative number", spec, k, v)
		}
		rate := map[string]*float64{"error": &f.ErrorRate, "throttle": &f.ThrottleRate, "timeout": &f.TimeoutRate,
			"applyThenFail": &f.ApplyThenFailRate, "malformed": &f.MalformedRate, "unavailable": &f.UnavailableRate}
		switch p, isRate := rate[k]; {
		case isRate && x <= 1:
			*p = x
		case isRate:
			return "", "", Faults{}, fmt.Errorf("sandbox: fault %q: %s must be within [0, 1]", spec, k)
		case k == "rateLimit":
			f.RateLimit = x
		default:
			return "", "", Faults{}, fmt.Errorf("sandbox: fault %q: unknown key %q", spec, k)
		}
	}
	return provider, endpoint, f, nil
}
