package gcs

import (
	"net/http"
	"net/url"
	"testing"
)

// Known answers published with Ingenico's own SDK tests.
func TestKnownAnswers(t *testing.T) {
	const date = "Fri, 06 Jun 2014 13:39:43 GMT"
	got := Signature([]byte("6Kj5HT0MQKC6D8eb7W3lTg71kVKVDSt1"), "GET\n\n"+date+"\n/v1/9991/tokens/123456789\n")
	if want := "9ond5EIN05dBXJGCLRK5om9pxHsyrh/12pZJ7bvmwNM="; got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
	u, _ := url.Parse("https://example.com/v1/9991/tokens/123456789")
	h := http.Header{}
	h.Set("Date", date)
	auth := Authorization("5e45c937b9db33ae", []byte("I42Zf4pVnRdroHfuHnRiJjJ2B6+22h0yQt/R3nZR8Xg="), "GET", u, h)
	if want := "GCS v1HMAC:5e45c937b9db33ae:J5LjfSBvrQNhu7gG0gvifZt+IWNDReGCmHmBmth6ueI="; auth != want {
		t.Fatalf("authorization = %s, want %s", auth, want)
	}
}

func TestStringToSignHeadersAndQuery(t *testing.T) {
	u, _ := url.Parse("https://example.com/v1/1/disputes/2/submit?a=b%20c")
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Date", "d")
	h.Set("X-GCS-ServerMetaInfo", "  x\n  y ")
	h.Set("X-GCS-Idempotence-Key", "k1")
	got := StringToSign("POST", u, h)
	want := "POST\napplication/json\nd\nx-gcs-idempotence-key:k1\nx-gcs-servermetainfo:x y\n/v1/1/disputes/2/submit?a=b c\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	r, _ := http.NewRequest("POST", "http://x/v1/m/disputes/d/submit", nil)
	r.Header.Set("Date", "Mon, 23 Nov 2026 10:00:00 GMT")
	Sign(r, "key1", secret)
	lookup := func(id string) ([]byte, bool) { return secret, id == "key1" }
	if _, err := Verify(r, lookup); err != nil {
		t.Fatalf("verify: %v", err)
	}
	r.Header.Set("X-GCS-Idempotence-Key", "changed")
	if _, err := Verify(r, lookup); err == nil {
		t.Fatal("verify accepted a changed header")
	}
}
