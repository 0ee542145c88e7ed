package alipayclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/params"
)

// Base64Len is the length of the standard Base64 encoding of n bytes.
func Base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

// ParseRef reads a content reference {"name","digest","size"} that stands in
// place of a Base64 content field of at most maxChars characters.
func ParseRef(field string, raw json.RawMessage, maxChars int) (*handlers.ContentRef, error) {
	o, err := params.ParseObject(field, "contentRef", raw, "name", "digest", "size")
	if err != nil {
		return nil, err
	}
	name, err := o.String("name", true, 1024)
	if err != nil {
		return nil, err
	}
	ref := &handlers.ContentRef{Name: name}
	if ref.Digest, err = o.String("digest", false, 0); err != nil {
		return nil, err
	}
	if ref.Digest != "" {
		if _, err := params.DecodeDigest(ref.Digest); err != nil {
			return nil, handlers.Invalid(o.Field("digest"), "must be SHA-256=<base64url of 32 bytes>")
		}
	}
	if v, ok := o.Raw("size"); ok {
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, handlers.Invalid(o.Field("size"), "must be a JSON number of bytes")
		}
		size, err := n.Int64()
		if err != nil || size < 0 {
			return nil, handlers.Invalid(o.Field("size"), "must be a whole number of bytes (0..)")
		}
		if Base64Len(size) > int64(maxChars) {
			return nil, handlers.Invalid(o.Field("size"), "must be at most %d bytes (%d Base64 characters)", int64(maxChars)/4*3, maxChars)
		}
		ref.Size = size
	}
	return ref, nil
}

// LoadRef reads a referenced object through ev and returns it as standard
// Base64 of at most maxChars characters. A reference that cannot be
// satisfied (no evidence store configured, no such object, wrong digest or
// size, empty, too large) is an *handlers.InvalidError naming field: the
// command is wrong and retrying cannot help. Any other read failure is
// retryable.
func LoadRef(ctx context.Context, ev handlers.Evidence, field string, ref *handlers.ContentRef, maxChars int) (string, error) {
	if ev == nil {
		return "", handlers.Invalid(field, "evidence references cannot be read: no evidence store is configured")
	}
	data, err := ev.Get(ctx, *ref)
	if err != nil {
		var inv *handlers.InvalidError
		if errors.As(err, &inv) {
			return "", err
		}
		if errors.Is(err, jetstream.ErrObjectNotFound) || errors.Is(err, jetstream.ErrDigestMismatch) ||
			errors.Is(err, jetstream.ErrBadObjectMeta) || errors.Is(err, jetstream.ErrInvalidDigestFormat) {
			return "", handlers.Invalid(field, "evidence object %q cannot be read: %v", ref.Name, err)
		}
		return "", fmt.Errorf("reading evidence object %q: %w", ref.Name, err)
	}
	if err := params.VerifyRef(field, ref, data); err != nil {
		return "", err
	}
	if len(data) == 0 {
		return "", handlers.Invalid(field, "evidence object %q is empty", ref.Name)
	}
	if n := Base64Len(int64(len(data))); n > int64(maxChars) {
		return "", handlers.Invalid(field, "evidence object %q is %d Base64 characters, more than %d", ref.Name, n, maxChars)
	}
	return base64.StdEncoding.EncodeToString(data), nil
}
