package alipayclient_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

func TestTableKind(t *testing.T) {
	t.Parallel()
	table := alipayclient.Table{
		"SUCCESS":        alipayclient.Succeeded,
		"PARAM_ILLEGAL":  alipayclient.Failed,
		"REPEAT_REQUEST": alipayclient.AlreadyApplied,
		"SLOW":           alipayclient.Throttled,
	}
	cases := []struct {
		code, status string
		want         alipayclient.Kind
	}{
		{"SUCCESS", "S", alipayclient.Succeeded},
		{"PARAM_ILLEGAL", "F", alipayclient.Failed},
		{"REPEAT_REQUEST", "F", alipayclient.AlreadyApplied},
		{"SLOW", "U", alipayclient.Throttled},
		{"NEW_F_CODE", "F", alipayclient.Failed},
		{"NEW_U_CODE", "U", alipayclient.Retry},
		{"NEW_S_CODE", "S", alipayclient.Succeeded},
		// Contradictions are never a success.
		{"SUCCESS", "F", alipayclient.Retry},
		{"SUCCESS", "U", alipayclient.Retry},
		{"PARAM_ILLEGAL", "S", alipayclient.Retry},
		{"SUCCESS", "", alipayclient.Retry},
		{"SUCCESS", "s", alipayclient.Retry},
	}
	for _, tc := range cases {
		if got := table.Kind(alipayclient.Result{Code: tc.code, Status: tc.status}); got != tc.want {
			t.Errorf("%s/%s: %v, want %v", tc.code, tc.status, got, tc.want)
		}
	}
}

func TestClassifySuccessNeeds2xx(t *testing.T) {
	t.Parallel()
	ans := &alipayclient.Answer{HTTPStatus: 400, Result: alipayclient.Result{Code: "SUCCESS", Status: "S"}, Body: []byte(`{}`)}
	resp, err := alipayclient.Classify("p", "op", alipayclient.Table{"SUCCESS": alipayclient.Succeeded}, ans, false)
	if err == nil || resp != nil || handlers.IsPermanent(err) {
		t.Fatalf("S under HTTP 400: %v %v, want a retryable error", resp, err)
	}
}

// An evidence store whose reads can fail, and the digest of a reference.
type memEvidence = testsupport.FakeEvidence

var digest = testsupport.Digest

func TestLoadRef(t *testing.T) {
	t.Parallel()
	pdf := []byte("%PDF-1.7 evidence ü")
	big := make([]byte, 31)
	ev := memEvidence{Objects: map[string][]byte{"a.pdf": pdf, "big": big, "empty": {}}}
	const field = "params.x.contentRef"
	cases := []struct {
		name    string
		ev      handlers.Evidence
		ref     handlers.ContentRef
		max     int
		want    string
		invalid string // expected InvalidError text, "" for none
		retry   bool
	}{
		{"ok", ev, handlers.ContentRef{Name: "a.pdf", Digest: digest(pdf), Size: int64(len(pdf))}, 100, base64.StdEncoding.EncodeToString(pdf), "", false},
		{"ok unpadded digest", ev, handlers.ContentRef{Name: "a.pdf", Digest: strings.TrimRight(digest(pdf), "=")}, 100, base64.StdEncoding.EncodeToString(pdf), "", false},
		{"missing object", ev, handlers.ContentRef{Name: "nope"}, 100, "", field + `: evidence object "nope" cannot be read: get nope: nats: object not found`, false},
		{"digest mismatch", ev, handlers.ContentRef{Name: "a.pdf", Digest: digest([]byte("other"))}, 100, "", field + `: evidence object "a.pdf" does not match its digest`, false},
		{"size mismatch", ev, handlers.ContentRef{Name: "a.pdf", Size: 3}, 100, "", field + fmt.Sprintf(`: evidence object "a.pdf" has %d bytes, the reference says 3`, len(pdf)), false},
		{"too large once encoded", ev, handlers.ContentRef{Name: "big"}, 40, "", field + `: evidence object "big" is 44 Base64 characters, more than 40`, false},
		{"empty", ev, handlers.ContentRef{Name: "empty"}, 40, "", field + `: evidence object "empty" is empty`, false},
		{"no store", nil, handlers.ContentRef{Name: "a.pdf"}, 100, "", field + ": evidence references cannot be read: no evidence store is configured", false},
		{"store down", memEvidence{Err: errors.New("nats: timeout")}, handlers.ContentRef{Name: "a.pdf"}, 100, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := alipayclient.LoadRef(context.Background(), tc.ev, field, &tc.ref, tc.max)
			var inv *handlers.InvalidError
			switch {
			case tc.invalid != "":
				if !errors.As(err, &inv) || err.Error() != tc.invalid {
					t.Fatalf("error %v, want InvalidError %q", err, tc.invalid)
				}
			case tc.retry:
				if err == nil || errors.As(err, &inv) || handlers.IsPermanent(err) {
					t.Fatalf("error %v, want a plain retryable error", err)
				}
			default:
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
			}
		})
	}
}
