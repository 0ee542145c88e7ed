package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/handlers"
)

// MaxEvidenceBytes caps one evidence object: 2 048 000 base64 characters,
// the seeds' largest attachment, decode to 1 536 000 bytes.
const MaxEvidenceBytes = 2048000 / 4 * 3

// ObjectEvidence reads evidence from the JetStream object store bucket
// (P_EVIDENCE), checking the reference's size and digest before any byte
// reaches a provider request.
type ObjectEvidence struct {
	Store jetstream.ObjectStore
}

// Get implements handlers.Evidence. A missing object, a size over the cap
// or a digest that differs from the reference is a permanent
// *handlers.InvalidError: the command itself is wrong.
func (e ObjectEvidence) Get(ctx context.Context, ref handlers.ContentRef) ([]byte, error) {
	if e.Store == nil {
		return nil, handlers.Invalid("contentRef", "no evidence bucket is configured")
	}
	info, err := e.Store.GetInfo(ctx, ref.Name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, handlers.Invalid("contentRef.name", "object %q is not in the evidence bucket", ref.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("worker: evidence %s: %w", ref.Name, err)
	}
	if info.Size > MaxEvidenceBytes {
		return nil, handlers.Invalid("contentRef.size", "object %q is %d bytes, more than the %d allowed", ref.Name, info.Size, MaxEvidenceBytes)
	}
	if ref.Size != 0 && int64(info.Size) != ref.Size {
		return nil, handlers.Invalid("contentRef.size", "object %q is %d bytes, the command says %d", ref.Name, info.Size, ref.Size)
	}
	if ref.Digest != "" && info.Digest != ref.Digest {
		return nil, handlers.Invalid("contentRef.digest", "object %q has digest %s, the command says %s", ref.Name, info.Digest, ref.Digest)
	}
	b, err := e.Store.GetBytes(ctx, ref.Name)
	if errors.Is(err, jetstream.ErrDigestMismatch) {
		return nil, handlers.Invalid("contentRef.digest", "object %q does not match its own digest", ref.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("worker: evidence %s: %w", ref.Name, err)
	}
	return b, nil
}
