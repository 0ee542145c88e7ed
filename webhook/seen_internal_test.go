package webhook

import (
	"testing"
	"time"
)

// TestParseFirst: the receipt time keeps its nanoseconds, and a marker
// written in milliseconds by an earlier version still reads right.
func TestParseFirst(t *testing.T) {
	at := time.Date(2026, 12, 1, 5, 0, 0, 123_456_789, time.UTC)
	for _, tc := range []struct {
		name, value string
		want        time.Time
		ok          bool
	}{
		{"nanoseconds", "1796101200123456789", at, true},
		{"milliseconds (older marker)", "1796101200123", at.Truncate(time.Millisecond), true},
		{"not a number", "soon", time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseFirst(tc.value)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Fatalf("parseFirst(%q) = %v, %v; want %v, %v", tc.value, got, ok, tc.want, tc.ok)
			}
		})
	}
}
