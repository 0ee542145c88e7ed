// Package alipaysig signs and verifies Alipay-style messages (Alipay AMS and
// Alipay+): RSA with SHA-256 (PKCS#1 v1.5) over
//
//	<METHOD> <path>\n<Client-Id>.<Request-Time or Response-Time>.<body>
//
// carried in the header "Signature: algorithm=RSA256,keyVersion=1,signature=<URL-escaped base64>".
// Requests and responses use the same shape; only the time header differs.
package alipaysig

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TimeLayout is how Request-Time and Response-Time are written (ISO 8601).
const TimeLayout = "2006-01-02T15:04:05Z07:00"

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("alipaysig: signature does not verify")

// Content returns the string to sign.
func Content(method, path, clientID, timestamp string, body []byte) []byte {
	var b strings.Builder
	b.Grow(len(method) + len(path) + len(clientID) + len(timestamp) + len(body) + 4)
	b.WriteString(method)
	b.WriteByte(' ')
	b.WriteString(path)
	b.WriteByte('\n')
	b.WriteString(clientID)
	b.WriteByte('.')
	b.WriteString(timestamp)
	b.WriteByte('.')
	b.Write(body)
	return []byte(b.String())
}

// Sign returns the Signature header value for a message.
func Sign(key *rsa.PrivateKey, method, path, clientID, timestamp string, body []byte) (string, error) {
	sum := sha256.Sum256(Content(method, path, clientID, timestamp, body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("alipaysig: sign: %w", err)
	}
	return "algorithm=RSA256,keyVersion=1,signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig)), nil
}

// Verify checks a Signature header value against a message.
func Verify(pub *rsa.PublicKey, method, path, clientID, timestamp string, body []byte, header string) error {
	raw, err := signatureOf(header)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(Content(method, path, clientID, timestamp, body))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw); err != nil {
		return ErrBadSignature
	}
	return nil
}

// signatureOf extracts the raw signature bytes from a header value.
func signatureOf(header string) ([]byte, error) {
	if header == "" {
		return nil, fmt.Errorf("%w: no Signature header", ErrBadSignature)
	}
	var alg, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "algorithm":
			alg = v
		case "signature":
			sig = v
		}
	}
	if alg != "RSA256" {
		return nil, fmt.Errorf("%w: algorithm %q is not RSA256", ErrBadSignature, alg)
	}
	unescaped, err := url.QueryUnescape(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not URL-escaped", ErrBadSignature)
	}
	raw, err := base64.StdEncoding.DecodeString(unescaped)
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("%w: signature is not base64", ErrBadSignature)
	}
	return raw, nil
}

// Now returns the current time formatted for Request-Time / Response-Time.
func Now() string { return time.Now().Format(TimeLayout) }

// ParsePrivateKey reads an RSA private key in PEM (PKCS#1 or PKCS#8).
// Errors never include the key material.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("alipaysig: private key is not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("alipaysig: private key is neither PKCS#1 nor PKCS#8 RSA")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("alipaysig: private key is not an RSA key")
	}
	return rk, nil
}

// ParsePublicKey reads an RSA public key in PEM (PKIX "PUBLIC KEY" or
// PKCS#1 "RSA PUBLIC KEY").
func ParsePublicKey(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("alipaysig: public key is not PEM")
	}
	if k, err := x509.ParsePKCS1PublicKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("alipaysig: public key is neither PKIX nor PKCS#1")
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("alipaysig: public key is not an RSA key")
	}
	return rk, nil
}
