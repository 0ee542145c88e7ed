package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Faults injected into one provider endpoint. Rates are probabilities in
// [0, 1]; each request rolls the dice in the order throttle, timeout, error,
// unavailable, malformed, apply-then-fail.
type Faults struct {
	// ErrorRate: the provider's error answer (HTTP 500 for ingenico,
	// U UNKNOWN_EXCEPTION for alipay and alipayplus, code "500" for disputeapi).
	ErrorRate float64
	// ThrottleRate: REQUEST_TRAFFIC_EXCEED_LIMIT (alipay, alipayplus), HTTP
	// 429 (ingenico), code "500" msg "RATE_LIMITED" (disputeapi).
	ThrottleRate float64
	// TimeoutRate: no answer; the request is held until the client gives up
	// (bounded by the request context and MaxHold), then the connection drops.
	TimeoutRate float64
	// ApplyThenFailRate: the effect is applied, then the client gets the
	// error answer or a dropped connection.
	ApplyThenFailRate float64
	// MalformedRate: a truncated JSON body; nothing applied.
	MalformedRate float64
	// UnavailableRate: HTTP 503 with a plain-text body, as a gateway or load
	// balancer in front of the provider answers; nothing applied.
	UnavailableRate float64
	// Latency added before answering.
	Latency time.Duration
	// RateLimit in requests per second; above it the throttle answer.
	RateLimit float64
}

// MarshalJSON writes Faults as the control API takes them, with the
// latency as a Go duration string ("150ms").
func (f Faults) MarshalJSON() ([]byte, error) { return json.Marshal(toFaultsJSON(f)) }

// UnmarshalJSON reads Faults with the latency as a Go duration string or a
// number of nanoseconds; rates must be within [0, 1].
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("sandbox: faults: %w", err)
	}
	v, err := j.faults()
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// MaxHold bounds a TimeoutRate hold when the client never gives up.
var MaxHold = 2 * time.Minute

// faultKind is what the dice chose for a request.
type faultKind int

const (
	faultNone faultKind = iota
	faultError
	faultThrottle
	faultMalformed
)

// SetFaults sets the faults of one endpoint of a provider; endpoint "" or "*"
// means every endpoint of the provider without its own setting. Zero Faults
// remove the setting.
func (s *Server) SetFaults(provider, endpoint string, f Faults) {
	if endpoint == "" {
		endpoint = "*"
	}
	key := provider + "." + endpoint
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Faults{}) {
		delete(s.faults, key)
	} else {
		s.faults[key] = f
	}
	delete(s.buckets, key)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
	clear(s.buckets)
}

// faultsFor returns the faults of an endpoint and the key they are set under;
// it also counts the request.
func (s *Server) faultsFor(provider, endpoint string) (Faults, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := provider + "." + endpoint
	s.requests[key]++
	if f, ok := s.faults[key]; ok {
		return f, key
	}
	key = provider + ".*"
	return s.faults[key], key
}

// bucket is a token bucket for Faults.RateLimit.
type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes a token from the bucket of key; the caller holds no lock.
func (s *Server) allow(key string, rate float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now() // real time: rate limits are about real load
	burst := max(1, rate)
	b, ok := s.buckets[key]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		s.buckets[key] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// roll returns true with probability p.
func (s *Server) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64() < p
}

// answer is a response an endpoint computed, written after the faults.
type answer struct {
	status int
	header http.Header
	body   []byte
	// release, if set, is called once body has been written.
	release func()
}

// endpoint describes one provider endpoint for the serve wrapper.
type endpoint struct {
	provider, name string
	// handle authenticates, validates and applies; it returns the answer.
	handle func(r *http.Request, body []byte) answer
	// fault returns the provider's answer for an injected error or throttle.
	fault func(r *http.Request, kind faultKind) answer
}

// maxBody caps request bodies: the largest documented request is an Alipay+
// escalation with attachments of 2 048 000 characters each.
const maxBody = 64 << 20

// serve wraps an endpoint with request counting and fault injection.
func (s *Server) serve(ep endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, key := s.faultsFor(ep.provider, ep.name)
		// Read the body first: only then does net/http watch the connection
		// and cancel r.Context() when the client gives up.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-r.Context().Done():
				t.Stop()
				panic(http.ErrAbortHandler)
			case <-t.C:
			}
		}
		if f.RateLimit > 0 && !s.allow(key, f.RateLimit) {
			s.write(w, ep.fault(r, faultThrottle))
			return
		}
		switch {
		case s.roll(f.ThrottleRate):
			s.write(w, ep.fault(r, faultThrottle))
			return
		case s.roll(f.TimeoutRate):
			hold(r)
			panic(http.ErrAbortHandler)
		case s.roll(f.ErrorRate):
			s.write(w, ep.fault(r, faultError))
			return
		case s.roll(f.UnavailableRate):
			h := http.Header{}
			h.Set("Content-Type", "text/plain; charset=utf-8")
			s.write(w, answer{status: http.StatusServiceUnavailable, header: h, body: []byte("503 Service Unavailable\n")})
			return
		case s.roll(f.MalformedRate):
			a := ep.fault(r, faultError)
			a.status = http.StatusOK
			a.body = a.body[:len(a.body)/2]
			s.write(w, a)
			return
		}
		a := ep.handle(r, body)
		if a.release != nil {
			defer a.release()
		}
		s.log.Debug("sandbox: request", "provider", ep.provider, "endpoint", ep.name, "status", a.status)
		if s.roll(f.ApplyThenFailRate) {
			if s.roll(0.5) {
				panic(http.ErrAbortHandler) // the answer is lost
			}
			a = ep.fault(r, faultError)
		}
		s.write(w, a)
	}
}

// hold blocks until the client gives up or MaxHold passes.
func hold(r *http.Request) {
	t := time.NewTimer(MaxHold)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-t.C:
	}
}

func (s *Server) write(w http.ResponseWriter, a answer) {
	h := w.Header()
	for k, v := range a.header {
		h[k] = v
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json; charset=UTF-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	if a.status == 0 {
		a.status = http.StatusOK
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}
