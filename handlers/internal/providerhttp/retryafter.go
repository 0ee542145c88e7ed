package providerhttp

import (
	"net/http"
	"strconv"
	"time"
)

// RetryAfter reads a Retry-After header (seconds or an HTTP date, relative to
// now). A missing or unreadable header gives def; the result is clamped to
// [1 s, limit] so a bad header can neither spin nor park a command for days.
func RetryAfter(h http.Header, now time.Time, def, limit time.Duration) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return def
	}
	d := def
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, time.Second), limit)
}
