package params

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
)

const (
	// MaxContentChars caps an attachment's base64 text: the 2 048 000
	// characters of the Alipay documents, which disputesync's evidence
	// bucket and CLI are sized for. Callers state which provider document
	// leaves the limit open.
	MaxContentChars = 2048000
	// MaxContentBytes is the decoded size of MaxContentChars.
	MaxContentBytes = MaxContentChars / 4 * 3
)

// Attachment is the content of an upload: inline base64 text or a
// reference to the evidence bucket, exactly one of the two.
type Attachment struct {
	field   string // the params field it came from, for errors
	content string
	ref     *handlers.ContentRef
}

// ParseAttachment reads "content" xor "contentRef" from p.
func ParseAttachment(p *Object) (*Attachment, error) {
	hasContent, hasRef := p.Has("content"), p.Has("contentRef")
	switch {
	case hasContent && hasRef:
		return nil, handlers.Invalid(p.Field("content"), "must not be given together with %s", p.Field("contentRef"))
	case !hasContent && !hasRef:
		return nil, handlers.Invalid(p.Field("content"), "is required (or %s)", p.Field("contentRef"))
	case hasContent:
		s, err := p.String("content", true, 0)
		if err != nil {
			return nil, err
		}
		field := p.Field("content")
		if len(s) > MaxContentChars {
			return nil, handlers.Invalid(field, "must be at most %d base64 characters (has %d)", MaxContentChars, len(s))
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return nil, handlers.Invalid(field, "must be standard base64")
		}
		return &Attachment{field: field, content: s}, nil
	}
	raw, _ := p.Raw("contentRef")
	ref, err := ParseRef(raw, p.Field("contentRef"))
	if err != nil {
		return nil, err
	}
	return &Attachment{field: p.Field("contentRef"), ref: ref}, nil
}

// ParseRef reads a content reference {"name","digest","size"} at path
// field, for an object of at most MaxContentBytes.
func ParseRef(raw json.RawMessage, field string) (*handlers.ContentRef, error) {
	o, err := Decode(raw, field, "", "name", "digest", "size")
	if err != nil {
		return nil, err
	}
	ref := &handlers.ContentRef{}
	if ref.Name, err = o.String("name", true, 0); err != nil {
		return nil, err
	}
	if err := CheckText(o.Field("name"), ref.Name, 1024); err != nil {
		return nil, err
	}
	if ref.Digest, err = o.String("digest", false, 0); err != nil {
		return nil, err
	}
	if ref.Digest != "" {
		if _, err := DecodeDigest(ref.Digest); err != nil {
			return nil, handlers.Invalid(o.Field("digest"), "must be SHA-256=<base64url of 32 bytes>")
		}
	}
	if size, ok := o.Raw("size"); ok {
		if err := json.Unmarshal(size, &ref.Size); err != nil || ref.Size < 0 {
			return nil, handlers.Invalid(o.Field("size"), "must be a non-negative integer")
		}
		if ref.Size > MaxContentBytes {
			return nil, handlers.Invalid(o.Field("size"), "must be at most %d bytes (%d base64 characters)", MaxContentBytes, MaxContentChars)
		}
	}
	return ref, nil
}

// DecodeDigest parses "SHA-256=<base64url>" as the object store writes it
// (padded), accepting the unpadded form too.
func DecodeDigest(d string) ([]byte, error) {
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

// VerifyRef checks data read for ref against the reference's size and
// digest, if given, and returns a *handlers.InvalidError naming field if
// it does not match. The store checks these too; checking here keeps the
// promise whatever Evidence implementation is plugged in.
func VerifyRef(field string, ref *handlers.ContentRef, data []byte) error {
	if ref.Size > 0 && int64(len(data)) != ref.Size {
		return handlers.Invalid(field, "evidence object %q has %d bytes, the reference says %d", ref.Name, len(data), ref.Size)
	}
	if ref.Digest != "" {
		want, err := DecodeDigest(ref.Digest)
		got := sha256.Sum256(data)
		if err != nil || subtle.ConstantTimeCompare(want, got[:]) != 1 {
			return handlers.Invalid(field, "evidence object %q does not match its digest", ref.Name)
		}
	}
	return nil
}

// Load returns the attachment's bytes and base64 text, reading a reference
// from the evidence bucket. A reference that cannot be satisfied (no
// evidence store configured, no such object, wrong digest or size, too
// large, empty) is a permanent *handlers.InvalidError; any other read
// failure is retryable.
func (a *Attachment) Load(ctx context.Context, ev handlers.Evidence) ([]byte, string, error) {
	if a.ref == nil {
		data, err := base64.StdEncoding.DecodeString(a.content)
		if err != nil { // ParseAttachment checked it already
			return nil, "", handlers.Permanent(handlers.Invalid(a.field, "must be standard base64"))
		}
		return data, a.content, nil
	}
	data, err := a.read(ctx, ev)
	if err != nil {
		return nil, "", err
	}
	return data, base64.StdEncoding.EncodeToString(data), nil
}

// Base64 is Load for callers that send only the base64 text: inline
// content is returned as given, without decoding it.
func (a *Attachment) Base64(ctx context.Context, ev handlers.Evidence) (string, error) {
	if a.ref == nil {
		return a.content, nil
	}
	data, err := a.read(ctx, ev)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(data), nil
}

// read fetches and checks the referenced object.
func (a *Attachment) read(ctx context.Context, ev handlers.Evidence) ([]byte, error) {
	if ev == nil {
		return nil, handlers.Permanent(handlers.Invalid(a.field, "evidence references are not available: no evidence store configured"))
	}
	data, err := ev.Get(ctx, *a.ref)
	if err != nil {
		var inv *handlers.InvalidError
		if handlers.IsPermanent(err) {
			return nil, err
		}
		if errors.As(err, &inv) {
			return nil, handlers.Permanent(err)
		}
		if errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, jetstream.ErrDigestMismatch) ||
			errors.Is(err, jetstream.ErrBadObjectMeta) || errors.Is(err, jetstream.ErrInvalidDigestFormat) {
			return nil, handlers.Permanent(handlers.Invalid(a.field, "evidence object %q cannot be read: %v", a.ref.Name, err))
		}
		return nil, fmt.Errorf("reading evidence object %q: %w", a.ref.Name, err)
	}
	if err := VerifyRef(a.field, a.ref, data); err != nil {
		return nil, handlers.Permanent(err)
	}
	if len(data) > MaxContentBytes {
		return nil, handlers.Permanent(handlers.Invalid(a.field, "evidence object %q is larger than %d bytes", a.ref.Name, MaxContentBytes))
	}
	if len(data) == 0 {
		return nil, handlers.Permanent(handlers.Invalid(a.field, "evidence object %q is empty", a.ref.Name))
	}
	return data, nil
}

// SetDefault sets params[key] to v unless params already has key: evidence
// placement fills in what the caller left out, never overrides it.
func SetDefault(params map[string]any, key string, v any) {
	if _, ok := params[key]; !ok {
		params[key] = v
	}
}

// Ext is a file name's extension, lower case and without the dot.
func Ext(fileName string) string {
	return strings.ToLower(strings.TrimPrefix(path.Ext(fileName), "."))
}
