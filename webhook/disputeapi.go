package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/disputesync/disputesync/poller"
)

// HeaderDisputeSignature carries "sha256=<hex HMAC-SHA256 of the body>".
const HeaderDisputeSignature = "X-Dispute-Signature"

// Event codes of the PSP's chargeback notifications; others are kept as opaque strings.
const (
	EventRetrievalRequest   = "RETRIEVAL_REQUEST"
	EventChargeback         = "CHARGEBACK"
	EventSecondChargeback   = "SECOND_CHARGEBACK"
	EventPreArbitration     = "PRE_ARBITRATION"
	EventChargebackReversed = "CHARGEBACK_REVERSED"
	EventDisputeClosed      = "DISPUTE_CLOSED"
)

// maxID bounds the ids we put in events and keys.
const maxID = 128

// SignDisputeAPI returns the X-Dispute-Signature value of a body.
func SignDisputeAPI(secret, body []byte) string {
	return "sha256=" + hex.EncodeToString(disputeAPIMAC(secret, body))
}

// disputeAPIMAC is the HMAC-SHA256 of body under secret.
func disputeAPIMAC(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

func disputeAPIEndpoint(s *Server) provider {
	return provider{
		name: ProviderDisputeAPI,
		verify: func(r *http.Request, body []byte) error {
			h := r.Header.Get(HeaderDisputeSignature)
			if h == "" {
				return errors.New("no " + HeaderDisputeSignature + " header")
			}
			hexSig, ok := strings.CutPrefix(strings.TrimSpace(h), "sha256=")
			got, err := hex.DecodeString(hexSig)
			if !ok || err != nil || len(got) != sha256.Size {
				return errors.New(HeaderDisputeSignature + " is not sha256=<hex>")
			}
			if !hmac.Equal(got, disputeAPIMAC(s.cfg.DisputeAPISecret, body)) {
				return errors.New(HeaderDisputeSignature + " does not match the body")
			}
			return nil
		},
		parse:  parseDisputeAPI,
		answer: answerDisputeAPI,
	}
}

func parseDisputeAPI(body []byte) (*notice, error) {
	var env struct {
		NotifyID  *string         `json:"notify_id"`
		EventCode *string         `json:"event_code"`
		Data      json.RawMessage `json:"data"`
	}
	if err := decodeStrict(body, &env); err != nil {
		return nil, err
	}
	if err := requireString("notify_id", env.NotifyID, maxID); err != nil {
		return nil, err
	}
	if err := requireString("event_code", env.EventCode, 64); err != nil {
		return nil, err
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return nil, errors.New("field data: required")
	}
	rec, err := poller.ParseRecord(env.Data)
	if err != nil {
		return nil, fmt.Errorf("field data: %w", err)
	}
	if len(rec.DisputeID) > maxID {
		return nil, fmt.Errorf("field data.disputes.disputes_id: longer than %d characters", maxID)
	}
	return &notice{
		typ: *env.EventCode, disputeID: rec.DisputeID, identity: *env.NotifyID,
		raw: json.RawMessage(body), record: &rec, recordRaw: env.Data,
	}, nil
}

// answerDisputeAPI answers in the PSP's envelope.
func answerDisputeAPI(w http.ResponseWriter, _ *http.Request, o outcome, msg string) {
	status, code, text := http.StatusOK, "200", "SUCCESS"
	switch o {
	case outUnauthenticated:
		status, code, text = http.StatusUnauthorized, "401", "UNAUTHENTICATED: "+msg
	case outInvalid:
		status, code, text = http.StatusBadRequest, "400", "INVALID: "+msg
	case outTooLarge:
		status, code, text = http.StatusRequestEntityTooLarge, "413", "INVALID: "+msg
	case outError:
		status, code, text = http.StatusInternalServerError, "500", "RETRY: "+msg
	}
	writeJSON(w, nil, status, map[string]string{"code": code, "msg": text})
}
