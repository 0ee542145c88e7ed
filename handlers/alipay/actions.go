package alipay

import (
	"context"
	"strings"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
	"github.com/disputesync/disputesync/handlers/internal/params"
)

// MaxDisputeEvidenceChars is supplyDefenseDocument's limit on
// disputeEvidence (Base64 characters).
const MaxDisputeEvidenceChars = 1000000

// EvidenceFormats are the disputeEvidenceFormat values accepted (compared
// case-insensitively, sent as given).
var EvidenceFormats = []string{"PDF", "JPG", "JPEG", "PNG"}

// acceptDispute is accept_dispute: POST acceptDispute {"disputeId"}.
type acceptDispute struct{ c *Client }

type acceptDisputeRequest struct {
	DisputeID string `json:"disputeId"`
}

func parseAccept(cmd *handlers.Command) (*acceptDisputeRequest, error) {
	fields, err := params.ParseParams("acceptDispute", cmd.Params, "disputeId")
	if err != nil {
		return nil, err
	}
	id, err := commandDisputeID(cmd, fields)
	if err != nil {
		return nil, err
	}
	return &acceptDisputeRequest{DisputeID: id}, nil
}

func (h *acceptDispute) Validate(cmd *handlers.Command) error {
	_, err := parseAccept(cmd)
	return err
}

func (h *acceptDispute) Apply(ctx context.Context, call *handlers.Call) (*handlers.Response, error) {
	if h.c == nil {
		return nil, errValidateOnly
	}
	req, err := parseAccept(call.Command)
	if err != nil {
		return nil, err
	}
	body, err := encode(req)
	if err != nil {
		return nil, err
	}
	return h.c.call(ctx, call, "acceptDispute", PathAcceptDispute, body)
}

// supplyDefense is supply_defense_document: POST supplyDefenseDocument
// {"disputeId","disputeEvidence","disputeEvidenceFormat"?}. The evidence is
// given inline (Base64) or, when too large for a NATS message, as
// "disputeEvidenceRef": {"name","digest","size"} naming an object in the
// evidence bucket, which Apply reads and encodes.
type supplyDefense struct{ c *Client }

type supplyDefenseRequest struct {
	DisputeID             string `json:"disputeId"`
	DisputeEvidence       string `json:"disputeEvidence"`
	DisputeEvidenceFormat string `json:"disputeEvidenceFormat,omitempty"`
}

type supplyDefenseCommand struct {
	req supplyDefenseRequest
	ref *handlers.ContentRef // set when the evidence is a reference
}

func parseSupply(cmd *handlers.Command) (*supplyDefenseCommand, error) {
	fields, err := params.ParseParams("supplyDefenseDocument", cmd.Params,
		"disputeId", "disputeEvidence", "disputeEvidenceRef", "disputeEvidenceFormat")
	if err != nil {
		return nil, err
	}
	out := &supplyDefenseCommand{}
	if out.req.DisputeID, err = commandDisputeID(cmd, fields); err != nil {
		return nil, err
	}
	switch refRaw, hasRef := fields.Raw("disputeEvidenceRef"); {
	case hasRef && fields.Has("disputeEvidence"):
		return nil, handlers.Invalid(fields.Field("disputeEvidence"), "must not be given together with disputeEvidenceRef")
	case hasRef:
		if out.ref, err = alipayclient.ParseRef(fields.Field("disputeEvidenceRef"), refRaw, MaxDisputeEvidenceChars); err != nil {
			return nil, err
		}
	default:
		ev, err := fields.String("disputeEvidence", false, MaxDisputeEvidenceChars)
		if err != nil {
			return nil, err
		}
		if ev == "" {
			return nil, handlers.Invalid(fields.Field("disputeEvidence"), "is required (or disputeEvidenceRef)")
		}
		if err := params.CheckBase64(fields.Field("disputeEvidence"), ev); err != nil {
			return nil, err
		}
		out.req.DisputeEvidence = ev
	}
	format, err := fields.String("disputeEvidenceFormat", false, 64)
	if err != nil {
		return nil, err
	}
	if format != "" && !knownFormat(format) {
		return nil, handlers.Invalid(fields.Field("disputeEvidenceFormat"), "must be one of %s", strings.Join(EvidenceFormats, ", "))
	}
	out.req.DisputeEvidenceFormat = format
	return out, nil
}

func knownFormat(f string) bool {
	for _, v := range EvidenceFormats {
		if strings.EqualFold(f, v) {
			return true
		}
	}
	return false
}

// PlaceEvidence implements handlers.EvidencePlacer: the reference goes in
// disputeEvidenceRef, and the file's extension, upper case, is the
// disputeEvidenceFormat unless params gives one.
func (*supplyDefense) PlaceEvidence(p map[string]any, ref handlers.ContentRef, fileName string) {
	p["disputeEvidenceRef"] = ref
	if ext := params.Ext(fileName); ext != "" {
		params.SetDefault(p, "disputeEvidenceFormat", strings.ToUpper(ext))
	}
}

func (h *supplyDefense) Validate(cmd *handlers.Command) error {
	_, err := parseSupply(cmd)
	return err
}

func (h *supplyDefense) Apply(ctx context.Context, call *handlers.Call) (*handlers.Response, error) {
	if h.c == nil {
		return nil, errValidateOnly
	}
	p, err := parseSupply(call.Command)
	if err != nil {
		return nil, err
	}
	if p.ref != nil {
		p.req.DisputeEvidence, err = alipayclient.LoadRef(ctx, h.c.cfg.Evidence, "params.disputeEvidenceRef", p.ref, MaxDisputeEvidenceChars)
		if err != nil {
			return nil, err
		}
	}
	body, err := encode(p.req)
	if err != nil {
		return nil, err
	}
	return h.c.call(ctx, call, "supplyDefenseDocument", PathSupplyDefenseDocument, body)
}
