package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

// Command is an action command as operators publish it (docs/contract.md section 2).
type Command struct {
	// DisputeRequestID is the idempotency key of the command (1..64 characters).
	DisputeRequestID string `json:"disputeRequestId"`
	// DisputeID is the provider's dispute id, for actions on an existing dispute.
	DisputeID string `json:"disputeId,omitempty"`
	// Params holds the provider request's own fields, named as in its API.
	Params json.RawMessage `json:"params,omitempty"`
	// RequestedBy is copied to the result.
	RequestedBy string `json:"requestedBy,omitempty"`
	// Merchant optionally names the merchant of the disputed payment, when
	// the publisher knows it; Alipay+ Special Merchant rules use it.
	Merchant string `json:"merchant,omitempty"`
}

// Call is one attempt at applying a command.
type Call struct {
	Provider string
	Action   string
	Command  *Command
	// Attempt counts deliveries of the command, starting at 1.
	Attempt int
	// Takeover is true when an earlier holder of the command lost its lease.
	Takeover bool
	// Recover is true when an earlier attempt may have reached the provider
	// (a retry after an unknown outcome, or a takeover): the handler must make
	// this call safe (provider idempotency key, a state read, or the
	// provider's "already done" answer taken as proof).
	Recover bool
}

// Response is what the provider answered to a successful call.
type Response struct {
	// Code is the provider's result code, e.g. "SUCCESS" or "200".
	Code    string
	Message string
	// Body is the provider's response body (JSON), copied to the result.
	Body json.RawMessage
}

// Handler applies one action of one provider.
type Handler interface {
	// Validate checks the command against the provider's documented field
	// rules (lengths, enums, required fields) and the business rules that need
	// no I/O. It returns an *InvalidError or a *RuleError, and does no I/O, so
	// the CLI can run it before publishing.
	Validate(cmd *Command) error
	// Apply performs the provider call; the package doc says what each kind of
	// returned error means.
	Apply(ctx context.Context, call *Call) (*Response, error)
}

// Locker is implemented by handlers whose actions must not run at the same
// time as others on a key other than the dispute id (an escalation, which
// has no dispute yet, locks its payment). The worker holds a lock on the key
// across all replicas while it calls the provider.
type Locker interface {
	LockKey(cmd *Command) string
}

// LockKey returns the mutual-exclusion key of a command: the handler's own,
// else "dispute:<disputeId>", else "" (no lock needed).
func LockKey(h Handler, cmd *Command) string {
	if l, ok := h.(Locker); ok {
		if k := l.LockKey(cmd); k != "" {
			return k
		}
	}
	if cmd.DisputeID != "" {
		return "dispute:" + cmd.DisputeID
	}
	return ""
}

// Evidence reads attachments that travel through the evidence object store
// (P_EVIDENCE) because they are larger than a NATS message may be. A command
// refers to one with a ContentRef in place of the provider's content field;
// the handler reads it when building the request.
type Evidence interface {
	// Get returns the object's bytes after checking its digest and size.
	Get(ctx context.Context, ref ContentRef) ([]byte, error)
}

// EvidencePlacer is implemented by the handlers of actions that carry an
// attachment: the provider package knows where its request expects the
// content, so it puts the reference to an uploaded evidence object there
// (and the fields derived from the file name, unless params already has
// them). The CLI's --attach uses it.
type EvidencePlacer interface {
	// PlaceEvidence edits params, a command's decoded params, in place.
	// fileName is the uploaded file's base name.
	PlaceEvidence(params map[string]any, ref ContentRef, fileName string)
}

// WithEvidence returns h as an EvidencePlacer that places evidence with
// place, for a provider whose actions share one Handler type; with a nil
// place it returns h.
func WithEvidence(h Handler, place func(params map[string]any, ref ContentRef, fileName string)) Handler {
	if place == nil {
		return h
	}
	return &placing{h, place}
}

type placing struct {
	Handler
	place func(map[string]any, ContentRef, string)
}

func (p *placing) PlaceEvidence(params map[string]any, ref ContentRef, fileName string) {
	p.place(params, ref, fileName)
}

// ContentRef names an object in the evidence bucket, as a command carries it
// ("contentRef": {"name", "digest", "size"}).
type ContentRef struct {
	Name   string `json:"name"`
	Digest string `json:"digest,omitempty"` // "SHA-256=<base64url>", as the object store reports it
	Size   int64  `json:"size,omitempty"`
}

// Mux maps "<provider>.<action>" to its Handler.
type Mux struct {
	handlers map[string]Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{handlers: map[string]Handler{}} }

// Register adds the handler of an action. It panics on a duplicate or on an
// action that is not in the contract, because either is a programming error.
func (m *Mux) Register(provider, action string, h Handler) {
	key := provider + "." + action
	if !Known(provider, action) {
		panic(fmt.Sprintf("handlers: %s is not an action of the contract", key))
	}
	if _, dup := m.handlers[key]; dup {
		panic(fmt.Sprintf("handlers: %s registered twice", key))
	}
	m.handlers[key] = h
}

// Handler returns the handler of an action.
func (m *Mux) Handler(provider, action string) (Handler, bool) {
	h, ok := m.handlers[provider+"."+action]
	return h, ok
}

// Registered lists the registered "<provider>.<action>" keys, sorted.
func (m *Mux) Registered() []string {
	keys := make([]string, 0, len(m.handlers))
	for k := range m.handlers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The names of docs/contract.md section 2, declared once: the provider
// packages, the worker, the CLI and the webhook all use these.
const (
	ProviderAlipay     = "alipay"
	ProviderAlipayPlus = "alipayplus"
	ProviderIngenico   = "ingenico"
	ProviderDisputeAPI = "disputeapi"

	ActionInitiateEscalation    = "initiate_escalation"     // alipayplus
	ActionAcceptDispute         = "accept_dispute"          // alipay
	ActionSupplyDefenseDocument = "supply_defense_document" // alipay
	ActionUploadFile            = "upload_file"             // ingenico
	ActionSubmitDispute         = "submit_dispute"          // ingenico
	ActionCancelDispute         = "cancel_dispute"          // ingenico
	ActionAbandon               = "abandon"                 // disputeapi
	ActionUploadDocument        = "upload_document"         // disputeapi
	ActionRemoveDocument        = "remove_document"         // disputeapi
	ActionSubmitDefense         = "submit_defense"          // disputeapi
)

// actions is the table of docs/contract.md section 2.
var actions = map[string][]string{
	ProviderAlipayPlus: {ActionInitiateEscalation},
	ProviderAlipay:     {ActionAcceptDispute, ActionSupplyDefenseDocument},
	ProviderIngenico:   {ActionUploadFile, ActionSubmitDispute, ActionCancelDispute},
	ProviderDisputeAPI: {ActionAbandon, ActionUploadDocument, ActionRemoveDocument, ActionSubmitDefense},
}

// Providers lists the providers of the contract, sorted.
func Providers() []string {
	out := make([]string, 0, len(actions))
	for p := range actions {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Actions lists the actions of a provider in contract order.
func Actions(provider string) []string { return append([]string(nil), actions[provider]...) }

// Known reports whether provider.action is an action of the contract.
func Known(provider, action string) bool {
	for _, a := range actions[provider] {
		if a == action {
			return true
		}
	}
	return false
}
