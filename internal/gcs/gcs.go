// Package gcs implements Ingenico Connect's "GCS v1HMAC" request
// authentication. The string to sign is, each line ending in "\n": the
// method, the Content-Type (empty if none), the Date, every X-GCS-* header
// lower-cased and sorted as "name:value" with folded whitespace, and the
// escaped path plus "?" and the unescaped query. The signature is
// base64(HMAC-SHA256(secret, string)), sent as
// "Authorization: GCS v1HMAC:<apiKeyId>:<signature>".
package gcs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// ErrBadSignature is returned when an Authorization header does not verify.
var ErrBadSignature = errors.New("gcs: authorization does not verify")

const scheme = "GCS v1HMAC:"

var foldSpace = regexp.MustCompile(`\r?\n[\t ]*`)

// StringToSign builds the string to sign from a method, URL and headers.
func StringToSign(method string, u *url.URL, h http.Header) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(h.Get("Content-Type"))
	b.WriteByte('\n')
	b.WriteString(h.Get("Date"))
	b.WriteByte('\n')
	var names []string
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "x-gcs-") {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	for _, name := range names {
		value := strings.TrimSpace(foldSpace.ReplaceAllString(strings.Join(h.Values(name), ","), " "))
		b.WriteString(strings.ToLower(name))
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	b.WriteString(u.EscapedPath())
	if u.RawQuery != "" {
		q, err := url.QueryUnescape(u.RawQuery)
		if err != nil {
			q = u.RawQuery
		}
		b.WriteByte('?')
		b.WriteString(q)
	}
	b.WriteByte('\n')
	return b.String()
}

// Signature returns base64(HMAC-SHA256(secret, data)).
func Signature(secret []byte, data string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Authorization returns the Authorization header value for a request whose
// Date, Content-Type and X-GCS-* headers are already set.
func Authorization(apiKeyID string, secret []byte, method string, u *url.URL, h http.Header) string {
	return scheme + apiKeyID + ":" + Signature(secret, StringToSign(method, u, h))
}

// Sign sets the Authorization header of r.
func Sign(r *http.Request, apiKeyID string, secret []byte) {
	r.Header.Set("Authorization", Authorization(apiKeyID, secret, r.Method, r.URL, r.Header))
}

// Verify checks r's Authorization header; secretFor returns the secret of an
// apiKeyId (ok false when unknown).
func Verify(r *http.Request, secretFor func(apiKeyID string) ([]byte, bool)) (apiKeyID string, err error) {
	auth := r.Header.Get("Authorization")
	rest, found := strings.CutPrefix(auth, scheme)
	if !found {
		return "", ErrBadSignature
	}
	id, sig, ok := strings.Cut(rest, ":")
	if !ok {
		return "", ErrBadSignature
	}
	secret, known := secretFor(id)
	if !known {
		return id, ErrBadSignature
	}
	want := Signature(secret, StringToSign(r.Method, r.URL, r.Header))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return id, ErrBadSignature
	}
	return id, nil
}
