// Package alipay applies disputesync's Alipay (Antom AMS) actions (acceptDispute API):
// accept_dispute calls acceptDispute and supply_defense_document calls
// supplyDefenseDocument, both signed with the merchant key and answered with
// a signature that is verified before anything in the answer is believed.
//
// The dispute id comes from the command's disputeId; params hold the
// provider request's other fields, named as in its API, every scalar a JSON
// string. Unknown params fields are refused.
//
// Alipay has no idempotency key for these calls. A retry after an unknown
// outcome (Call.Recover) resends the same body; the provider's REPEAT_REQUEST
// answer to it is the proof that an earlier attempt was applied, so it is a
// success with Code REPEAT_REQUEST. Outside a recovery, REPEAT_REQUEST means
// someone else already acted on the dispute: the command failed.
package alipay

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/params"
	"github.com/disputesync/disputesync/metrics"
)

// Provider is the provider name in subjects and metrics.
const Provider = handlers.ProviderAlipay

// Gateway paths (docs/contract.md section 5).
const (
	PathAcceptDispute         = "/ams/api/v1/payments/acceptDispute"
	PathSupplyDefenseDocument = "/ams/api/v1/payments/supplyDefenseDocument"
)

// Codes is the classification table: every result code of acceptDispute and of
// the supplyDefenseDocument page, plus the gateway's common codes. A code
// not listed is classified by its resultStatus (S succeeded, F failed,
// U retry).
var Codes = alipayclient.Table{
	"SUCCESS":                      alipayclient.Succeeded,
	"PARAM_ILLEGAL":                alipayclient.Failed,
	"REPEAT_REQUEST":               alipayclient.AlreadyApplied,
	"TIME_EXCEEDS_LIMIT":           alipayclient.Failed,
	"DEFENSE_EXCEED_LIMIT":         alipayclient.Failed,
	"NOT_ALLOW_IN_CURRENT_STATUS":  alipayclient.Failed,
	"UNKNOWN_EXCEPTION":            alipayclient.Retry,
	"REQUEST_TRAFFIC_EXCEED_LIMIT": alipayclient.Throttled,
	// Gateway codes common to every AMS API.
	"ACCESS_DENIED":             alipayclient.Failed,
	"INVALID_CLIENT":            alipayclient.Failed,
	"INVALID_SIGNATURE":         alipayclient.Failed,
	"KEY_NOT_FOUND":             alipayclient.Failed,
	"INVALID_API":               alipayclient.Failed,
	"NO_INTERFACE_DEF":          alipayclient.Failed,
	"MEDIA_TYPE_NOT_ACCEPTABLE": alipayclient.Failed,
	"METHOD_NOT_SUPPORTED":      alipayclient.Failed,
	"PROCESS_FAIL":              alipayclient.Failed,
}

// Config of a Client. Zero Timeout and RateLimit take providerhttp's
// defaults (20 s, unlimited).
type Config struct {
	BaseURL           string
	ClientID          string
	PrivateKey        *rsa.PrivateKey // merchant key, signs requests
	ProviderPublicKey *rsa.PublicKey  // verifies responses
	Timeout           time.Duration
	RateLimit         float64
	HTTPClient        *http.Client
	Evidence          handlers.Evidence // may be nil: references are then refused
	Metrics           *metrics.Metrics
	Logger            *slog.Logger
	Now               func() time.Time
}

// Client applies Alipay actions.
type Client struct {
	cfg Config
	api *alipayclient.Client
	log *slog.Logger
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
	return &Client{cfg: cfg, api: api, log: log.With("provider", Provider)}, nil
}

// Register adds accept_dispute and supply_defense_document to mux.
func (c *Client) Register(mux *handlers.Mux) {
	mux.Register(Provider, handlers.ActionAcceptDispute, &acceptDispute{c: c})
	mux.Register(Provider, handlers.ActionSupplyDefenseDocument, &supplyDefense{c: c})
}

// Validators registers handlers that only validate (for the CLI's local
// checks); their Apply returns a permanent error.
func Validators(mux *handlers.Mux) {
	mux.Register(Provider, handlers.ActionAcceptDispute, &acceptDispute{})
	mux.Register(Provider, handlers.ActionSupplyDefenseDocument, &supplyDefense{})
}

var errValidateOnly = handlers.Permanent(errors.New("alipay: handler registered for validation only: no provider client configured"))

// call sends one signed request and classifies the answer.
func (c *Client) call(ctx context.Context, call *handlers.Call, operation, path string, body []byte) (*handlers.Response, error) {
	ans, err := c.api.Post(ctx, alipayclient.Request{
		Operation:        operation,
		Path:             path,
		Body:             body,
		DisputeRequestID: call.Command.DisputeRequestID,
	})
	if err == nil {
		var resp *handlers.Response
		resp, err = alipayclient.Classify(Provider, operation, Codes, ans, call.Recover || call.Takeover)
		if err == nil {
			c.log.LogAttrs(ctx, slog.LevelInfo, "provider call succeeded",
				slog.String("operation", operation), slog.String("disputeRequestId", call.Command.DisputeRequestID),
				slog.String("disputeId", call.Command.DisputeID), slog.Int("attempt", call.Attempt), slog.String("code", resp.Code))
			return resp, nil
		}
	}
	c.log.LogAttrs(ctx, slog.LevelWarn, "provider call did not succeed",
		slog.String("operation", operation), slog.String("disputeRequestId", call.Command.DisputeRequestID),
		slog.String("disputeId", call.Command.DisputeID), slog.Int("attempt", call.Attempt),
		slog.String("code", handlers.Code(err)), slog.Bool("permanent", handlers.IsPermanent(err)), slog.Any("error", err))
	return nil, err
}

// commandDisputeID checks the command's disputeId, which every Alipay action
// needs, and that params.disputeId, if given, repeats it.
func commandDisputeID(cmd *handlers.Command, fields *params.Object) (string, error) {
	if cmd.DisputeID == "" {
		return "", handlers.Invalid("disputeId", params.RuleRequired)
	}
	if len([]rune(cmd.DisputeID)) > 64 {
		return "", handlers.Invalid("disputeId", "must be at most 64 characters")
	}
	p, err := fields.String("disputeId", false, 64)
	if err != nil {
		return "", err
	}
	if p != "" && p != cmd.DisputeID {
		return "", handlers.Invalid(fields.Field("disputeId"), "must equal the command's disputeId")
	}
	return cmd.DisputeID, nil
}

func encode(v any) ([]byte, error) {
	b, err := params.Encode(v)
	if err != nil {
		return nil, handlers.Permanent(fmt.Errorf("alipay: encoding request: %w", err))
	}
	return b, nil
}
