package alipayclient

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
)

// Base64Len is the length of the standard Base64 encoding of n bytes.
func Base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

// ParseRef reads a content reference {"name","digest","size"} that stands in
// place of a Base64 content field of at most maxChars characters.
func ParseRef(field string, raw json.RawMessage, maxChars int) (*handlers.ContentRef, error) {
	o, err := ParseObject(field, "contentRef", raw, "name", "digest", "size")
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
		if _, err := decodeDigest(ref.Digest); err != nil {
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

// decodeDigest reads "SHA-256=<base64url>", padded or not, as the object
// store writes it.
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
	// The store checks these too; checking here keeps the promise whatever
	// Evidence implementation is plugged in.
	if ref.Size > 0 && int64(len(data)) != ref.Size {
		return "", handlers.Invalid(field, "evidence object %q has %d bytes, the reference says %d", ref.Name, len(data), ref.Size)
	}
	if ref.Digest != "" {
		want, err := decodeDigest(ref.Digest)
		got := sha256.Sum256(data)
		if err != nil || subtle.ConstantTimeCompare(want, got[:]) != 1 {
			return "", handlers.Invalid(field, "evidence object %q does not match its digest", ref.Name)
		}
	}
	if len(data) == 0 {
		return "", handlers.Invalid(field, "evidence object %q is empty", ref.Name)
	}
	if n := Base64Len(int64(len(data))); n > int64(maxChars) {
		return "", handlers.Invalid(field, "evidence object %q is %d Base64 characters, more than %d", ref.Name, n, maxChars)
	}
	return base64.StdEncoding.EncodeToString(data), nil
}
