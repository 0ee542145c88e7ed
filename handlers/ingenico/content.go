package ingenico

import "github.com/disputesync/disputesync/handlers/internal/params"

const (
	// MaxContentChars caps an attachment's base64 text: the 2 048 000
	// characters of the Alipay documents, which disputesync's evidence
	// bucket and CLI are sized for. Seed 004 states no limit of its own.
	MaxContentChars = params.MaxContentChars
	// MaxContentBytes is the decoded size of MaxContentChars.
	MaxContentBytes = params.MaxContentBytes
)
