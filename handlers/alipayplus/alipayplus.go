// Package alipayplus applies disputesync's Alipay+ action (initiateEscalation API):
// initiate_escalation calls initiateEscalation, signed with the merchant
// (MPP) key, and believes an answer only once its signature verifies.
//
// params are the initiateEscalation body, named as in the API, every scalar
// a JSON string; unknown fields are refused. The body's disputeRequestId is
// always the command's own (params.disputeRequestId, if given, must equal
// it), and Alipay+ treats it as its idempotency key, so a retry resends the
// identical body safely. Attachments larger than a NATS message carry
// "contentRef": {"name","digest","size"} in place of "content"; Apply reads
// them from the evidence bucket.
//
// Before calling, the documented rules that disputesync can check are
// checked locally and answered with the provider's own code: a
// disputeReasonCodeDescription of another disputeReasonCode (PARAM_ILLEGAL),
// Special Merchants' required fields (SPECIAL_MERCHANT_REQUIRES_...), and,
// from the Ledger of escalations disputesync itself started, at most 2
// non-canceled and 1 ongoing escalation per payment
// (EXCEEDS_ESCALATION_REQUEST_LIMIT) and the 25-day window for a second one
// (PROCESS_FAIL, as the sandbox answers; the API names no code). The
// provider stays the judge: passing these checks never skips its answer.
package alipayplus

import (
	"context"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/metrics"
)

// Provider is the provider name in subjects and metrics.
const Provider = handlers.ProviderAlipayPlus

// PathInitiateEscalation is the gateway path (docs/contract.md section 5).
const PathInitiateEscalation = "/aps/api/v1/disputes/initiateEscalation"

// Codes is the classification table: every result code of initiateEscalation, plus
// REPEAT_REQ_INCONSISTENT (the same disputeRequestId with another
// paymentRequestId). A code not listed is classified by its resultStatus.
var Codes = alipayclient.Table{
	"SUCCESS":                          alipayclient.Succeeded,
	"ACCESS_DENIED":                    alipayclient.Failed,
	"CURRENCY_NOT_SUPPORT":             alipayclient.Failed,
	"ESCALATION_AMOUNT_EXCEED_LIMIT":   alipayclient.Failed,
	"EXCEEDS_ESCALATION_REQUEST_LIMIT": alipayclient.Failed,
	"INVALID_CLIENT":                   alipayclient.Failed,
	"INVALID_SIGNATURE":                alipayclient.Failed,
	"KEY_NOT_FOUND":                    alipayclient.Failed,
	"MEDIA_TYPE_NOT_ACCEPTABLE":        alipayclient.Failed,
	"METHOD_NOT_SUPPORTED":             alipayclient.Failed,
	"NO_INTERFACE_DEF":                 alipayclient.Failed,
	"ORDER_NOT_EXIST":                  alipayclient.Failed,
	"PARAM_ILLEGAL":                    alipayclient.Failed,
	"PROCESS_FAIL":                     alipayclient.Failed,
	CodeSpecialMerchantDisputeID:       alipayclient.Failed,
	CodeSpecialMerchantCustomerID:      alipayclient.Failed,
	CodeSpecialMerchantNotRefund:       alipayclient.Failed,
	"REPEAT_REQ_INCONSISTENT":          alipayclient.Failed,
	"REQUEST_TRAFFIC_EXCEED_LIMIT":     alipayclient.Throttled,
	"UNKNOWN_EXCEPTION":                alipayclient.Retry,
}

// Result codes answered locally.
const (
	CodeParamIllegal              = "PARAM_ILLEGAL"
	CodeExceedsEscalationLimit    = "EXCEEDS_ESCALATION_REQUEST_LIMIT"
	CodeProcessFail               = "PROCESS_FAIL"
	CodeSpecialMerchantDisputeID  = "SPECIAL_MERCHANT_REQUIRES_MERCHANT_DISPUTE_ID"
	CodeSpecialMerchantCustomerID = "SPECIAL_MERCHANT_REQUIRES_MERCHANT_CUSTOMER_ID"
	CodeSpecialMerchantNotRefund  = "SPECIAL_MERCHANT_REQUIRES_MERCHANT_NOT_REFUND_RECORD"
)

// DefaultSpecialMerchants are the seed's Special Merchants.
var DefaultSpecialMerchants = []string{"APPLE", "GOOGLE"}

// Config of a Client. Zero Timeout and RateLimit take providerhttp's
// defaults (20 s, unlimited).
type Config struct {
	BaseURL           string
	ClientID          string
	PrivateKey        *rsa.PrivateKey // merchant (MPP) key, signs requests
	ProviderPublicKey *rsa.PublicKey  // verifies responses
	Timeout           time.Duration
	RateLimit         float64
	HTTPClient        *http.Client
	Evidence          handlers.Evidence // may be nil: references are then refused
	Metrics           *metrics.Metrics
	Logger            *slog.Logger
	Now               func() time.Time

	// Ledger holds the escalations disputesync started; nil disables the
	// local count and window rules (the provider still judges).
	Ledger Ledger
	// SpecialMerchants are merchant ids matched case-insensitively against
	// Command.Merchant, in addition to DefaultSpecialMerchants (the seed
	// says Apple and Google are Special Merchants; more may be configured).
	SpecialMerchants []string
}

// Client applies Alipay+ actions.
type Client struct {
	cfg     Config
	api     *alipayclient.Client
	log     *slog.Logger
	now     func() time.Time
	special []string
}

// New returns a Client. Its errors never carry key material.
func New(cfg Config) (*Client, error) {
	api, err := alipayclient.New(alipayclient.Config{
		Provider:          Provider,
		BaseURL:           cfg.BaseURL,
		ClientID:          cfg.ClientID,
		PrivateKey:        cfg.PrivateKey,
		ProviderPublicKey: cfg.ProviderPublicKey,
		Timeout:           cfg.Timeout,
		RateLimit:         cfg.RateLimit,
		HTTPClient:        cfg.HTTPClient,
		Metrics:           cfg.Metrics,
		Now:               cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{cfg: cfg, api: api, log: log.With("provider", Provider), now: now,
		special: specialMerchants(cfg.SpecialMerchants)}, nil
}

func specialMerchants(extra []string) []string {
	out := append([]string(nil), DefaultSpecialMerchants...)
	for _, m := range extra {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// Register adds initiate_escalation to mux.
func (c *Client) Register(mux *handlers.Mux) {
	mux.Register(Provider, handlers.ActionInitiateEscalation, &initiateEscalation{c: c, special: c.special})
}

// Validators registers a handler that only validates (for the CLI's local
// checks, with the default Special Merchants); its Apply returns a permanent
// error.
func Validators(mux *handlers.Mux) {
	mux.Register(Provider, handlers.ActionInitiateEscalation, &initiateEscalation{special: specialMerchants(nil)})
}

var errValidateOnly = handlers.Permanent(errors.New("alipayplus: handler registered for validation only: no provider client configured"))

// logOutcome logs a call's outcome; never a body, a key or a signature.
func (c *Client) logOutcome(ctx context.Context, call *handlers.Call, payment string, resp *handlers.Response, err error) {
	attrs := []slog.Attr{
		slog.String("operation", "initiateEscalation"),
		slog.String("disputeRequestId", call.Command.DisputeRequestID),
		slog.String("paymentRequestId", payment),
		slog.Int("attempt", call.Attempt),
	}
	if err == nil {
		c.log.LogAttrs(ctx, slog.LevelInfo, "provider call succeeded", append(attrs, slog.String("code", resp.Code))...)
		return
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "escalation did not succeed", append(attrs,
		slog.String("code", handlers.Code(err)), slog.Bool("permanent", handlers.IsPermanent(err)), slog.Any("error", err))...)
}
