package sandbox

import (
	"testing"
	"time"
)

func TestParseFaultSpec(t *testing.T) {
	tests := []struct {
		spec               string
		provider, endpoint string
		f                  Faults
		wantErr            bool
	}{
		{"alipay.acceptDispute:error=0.2,latency=150ms", "alipay", "acceptDispute", Faults{ErrorRate: 0.2, Latency: 150 * time.Millisecond}, false},
		{"ingenico:rateLimit=5", "ingenico", "", Faults{RateLimit: 5}, false},
		{"disputeapi.documents/upload:applyThenFail=1,malformed=0.1", "disputeapi", "documents/upload", Faults{ApplyThenFailRate: 1, MalformedRate: 0.1}, false},
		{"alipayplus:throttle=0.5, timeout=0.01", "alipayplus", "", Faults{ThrottleRate: 0.5, TimeoutRate: 0.01}, false},
		{"disputeapi.list:unavailable=0.3", "disputeapi", "list", Faults{UnavailableRate: 0.3}, false},
		{"stripe:error=1", "", "", Faults{}, true},
		{"alipay", "", "", Faults{}, true},
		{"alipay:error=2", "", "", Faults{}, true},
		{"alipay:error=-1", "", "", Faults{}, true},
		{"alipay:latency=soon", "", "", Faults{}, true},
		{"alipay:color=1", "", "", Faults{}, true},
		{"alipay:error", "", "", Faults{}, true},
	}
	for _, tt := range tests {
		p, e, f, err := ParseFaultSpec(tt.spec)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v", tt.spec, err)
			continue
		}
		if p != tt.provider || e != tt.endpoint || f != tt.f {
			t.Errorf("%q: %s %s %+v", tt.spec, p, e, f)
		}
	}
}
