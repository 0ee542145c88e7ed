package disputeapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
)

const (
	// MaxContentChars caps an attachment's base64 text: the 2 048 000
	// characters of the Alipay documents, which disputesync's evidence
	// bucket and CLI are sized for. Seed 002 states no limit of its own.
	MaxContentChars = 2048000
	// MaxContentBytes is the decoded size of MaxContentChars.
	MaxContentBytes = MaxContentChars / 4 * 3
)

// attachment is the content of an upload: inline base64 text or a
// reference to the evidence bucket, exactly one of the two.
type attachment struct {
	field   string // the params field it came from, for errors
	content string
	ref     *handlers.ContentRef
}

// parseAttachment reads "content" xor "contentRef" from params.
func parseAttachment(p *object) (*attachment, error) {
	hasContent, hasRef := p.has("content"), p.has("contentRef")
	switch {
	case hasContent && hasRef:
		return nil, handlers.Invalid(p.field("content"), "must not be given together with %s", p.field("contentRef"))
	case !hasContent && !hasRef:
		return nil, handlers.Invalid(p.field("content"), "is required (or %s)", p.field("contentRef"))
	case hasContent:
		s, err := p.str("content", true)
		if err != nil {
			return nil, err
		}
		field := p.field("content")
		if len(s) > MaxContentChars {
			return nil, handlers.Invalid(field, "must be at most %d base64 characters (has %d)", MaxContentChars, len(s))
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return nil, handlers.Invalid(field, "must be standard base64")
		}
		return &attachment{field: field, content: s}, nil
	}
	ref, err := parseRef(p.members["contentRef"], p.field("contentRef"))
	if err != nil {
		return nil, err
	}
	return &attachment{field: p.field("contentRef"), ref: ref}, nil
}

func parseRef(raw json.RawMessage, field string) (*handlers.ContentRef, error) {
	o, err := decodeObject(raw, field, "name", "digest", "size")
	if err != nil {
		return nil, err
	}
	ref := &handlers.ContentRef{}
	if ref.Name, err = o.str("name", true); err != nil {
		return nil, err
	}
	if err := checkText(o.field("name"), ref.Name, 1024); err != nil {
		return nil, err
	}
	if ref.Digest, err = o.str("digest", false); err != nil {
		return nil, err
	}
	if ref.Digest != "" {
		if _, err := decodeDigest(ref.Digest); err != nil {
			return nil, handlers.Invalid(o.field("digest"), "must be SHA-256=<base64url of 32 bytes>")
		}
	}
	if o.has("size") {
		if err := json.Unmarshal(o.members["size"], &ref.Size); err != nil || ref.Size < 0 {
			return nil, handlers.Invalid(o.field("size"), "must be a non-negative integer")
		}
		if ref.Size > MaxContentBytes {
			return nil, handlers.Invalid(o.field("size"), "must be at most %d bytes (%d base64 characters)", MaxContentBytes, MaxContentChars)
		}
	}
	return ref, nil
}

// decodeDigest parses "SHA-256=<base64url>" as the object store writes it
// (padded), accepting the unpadded form too.
func decodeDigest(d string) ([]byte, error) {
	v, ok := strings.CutPrefix(d, "SHA-256=")
	if !ok {
		return nil, errors.New("not a SHA-256 digest")
	}
	sum, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil || len(sum) != sha256.Size {
		return nil, errors.New("bad SHA-256 digest")
	}
	return sum, nil
}

// load returns the attachment's bytes and base64 text, reading a reference from the
// evidence bucket. A reference that cannot be satisfied (no evidence store
// configured, no such object, wrong digest or size, too large) is a
// permanent *handlers.InvalidError; any other read failure is retryable.
func (a *attachment) load(ctx context.Context, ev handlers.Evidence) ([]byte, string, error) {
	if a.ref == nil {
		data, err := base64.StdEncoding.DecodeString(a.content)
		if err != nil { // Validate checked it already
			return nil, "", handlers.Permanent(handlers.Invalid(a.field, "must be standard base64"))
		}
		return data, a.content, nil
	}
	if ev == nil {
		return nil, "", handlers.Permanent(handlers.Invalid(a.field, "evidence references are not available: no evidence store configured"))
	}
	data, err := ev.Get(ctx, *a.ref)
	if err != nil {
		var inv *handlers.InvalidError
		if handlers.IsPermanent(err) {
			return nil, "", err
		}
		if errors.As(err, &inv) {
			return nil, "", handlers.Permanent(err)
		}
		if errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, jetstream.ErrDigestMismatch) ||
			errors.Is(err, jetstream.ErrBadObjectMeta) || errors.Is(err, jetstream.ErrInvalidDigestFormat) {
			return nil, "", handlers.Permanent(handlers.Invalid(a.field, "evidence object %q cannot be read: %v", a.ref.Name, err))
		}
		return nil, "", fmt.Errorf("reading evidence object %q: %w", a.ref.Name, err)
	}
	// The store checks these too; checking here keeps the promise whatever
	// Evidence implementation is plugged in.
	if a.ref.Size > 0 && int64(len(data)) != a.ref.Size {
		return nil, "", handlers.Permanent(handlers.Invalid(a.field, "evidence object %q has %d bytes, the reference says %d", a.ref.Name, len(data), a.ref.Size))
	}
	if a.ref.Digest != "" {
		want, _ := decodeDigest(a.ref.Digest)
		got := sha256.Sum256(data)
		if !bytes.Equal(want, got[:]) {
			return nil, "", handlers.Permanent(handlers.Invalid(a.field, "evidence object %q does not match its digest", a.ref.Name))
		}
	}
	if len(data) > MaxContentBytes {
		return nil, "", handlers.Permanent(handlers.Invalid(a.field, "evidence object %q is larger than %d bytes", a.ref.Name, MaxContentBytes))
	}
	if len(data) == 0 {
		return nil, "", handlers.Permanent(handlers.Invalid(a.field, "evidence object %q is empty", a.ref.Name))
	}
	return data, base64.StdEncoding.EncodeToString(data), nil
}
