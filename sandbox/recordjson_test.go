package sandbox

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAppendRecordMatchesEncodingJSON: the hand-written renderer gives the
// bytes encoding/json gives, for awkward strings too.
func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	odd := []string{"", "plain", `quote " back \ slash`, "line\nbreak\ttab\r", "<b>&amp;</b>", "\x00\x1f\x7f",
		"naïve ✓ 你好", "bad \xff utf8", "sep \u2028 \u2029", "emoji 😀"}
	for _, s := range odd {
		r := Record{Terminal: s, Merchant: Merchant{MerchantName: s}, Disputes: DisputeInfo{DisputesComment: s, DisputesCommentsHistory: s + s}, ResultMessage: s}
		r.Status = "pending"
		want, _ := json.Marshal(r)
		got := appendRecord(nil, &r, "pending")
		if string(got) != string(want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
	// And for a generated population.
	s := New(Config{Disputes: 200, Now: func() time.Time { return fixedNow }})
	for _, r := range s.Disputes() {
		want, _ := json.Marshal(r)
		if got := appendRecord(nil, &r, r.Status); string(got) != string(want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	}
}
