package poller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Event types (docs/contract.md section 2).
const (
	TypeOpened              = "dispute.opened"
	TypeUpdated             = "dispute.updated"
	TypeClosed              = "dispute.closed"
	TypeDeadlineApproaching = "dispute.deadline_approaching"
	TypeNotified            = "dispute.notified"
)

// Header names carried by every event message.
const (
	HeaderMsgID     = jetstream.MsgIDHeader // "Nats-Msg-Id"
	HeaderDisputeID = "Dispute-Id"
)

// Event is a CloudEvents 1.0 structured-mode JSON object (docs/contract.md section
// 2). Data holds an EventData (or a NotifiedData for dispute.notified).
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// EventData is the data of opened / updated / closed / deadline_approaching.
type EventData struct {
	Record
	ListType string   `json:"listType"`
	Changes  []string `json:"changes,omitempty"` // dispute.updated: changed field names
	// Threshold is the warning threshold of dispute.deadline_approaching
	// (e.g. "24h"), an addition to the contract.
	Threshold string          `json:"threshold,omitempty"`
	Raw       json.RawMessage `json:"raw"`
}

// NotifiedData is the data of dispute.notified (docs/contract.md section 6).
type NotifiedData struct {
	DisputeID        string          `json:"disputeId"`
	NotificationType string          `json:"notificationType"`
	Notification     json.RawMessage `json:"notification"`
}

// DisputeData decodes the data of a dispute event.
func (e Event) DisputeData() (EventData, error) {
	var d EventData
	err := json.Unmarshal(e.Data, &d)
	return d, err
}

// eventID derives the CloudEvents id and Nats-Msg-Id from what the event
// says, never from when it was seen: the same state seen again (restart,
// replay, overlapping window, webhook and poll) gives the same id, so
// JetStream drops the copy within its duplicate window, and the snapshot
// drops it after that. parts are e.g. (version, fingerprint[, threshold]);
// the version (count of state changes) keeps A->B->A->B apart.
func eventID(source, disputeID, typ string, parts ...string) string {
	h := sha256.New()
	for _, s := range append([]string{source, disputeID, typ}, parts...) {
		// Length-prefixed, so no two part lists hash alike.
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s + ";"))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func newEvent(source, typ, subject, id string, at time.Time, data any) (Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode event data: %w", err)
	}
	return Event{
		SpecVersion: "1.0", ID: id, Source: source, Type: typ, Subject: subject,
		Time: at.UTC(), DataContentType: "application/json", Data: b,
	}, nil
}

// publish stores one event in the events stream and waits for its PubAck.
// dup reports that JetStream already had an event with this id.
func publish(ctx context.Context, js jetstream.JetStream, subject string, ev Event) (dup bool, err error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("encode event: %w", err)
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(HeaderMsgID, ev.ID)
	msg.Header.Set(HeaderDisputeID, ev.Subject)
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return false, fmt.Errorf("publish %s for dispute %s: %w", ev.Type, ev.Subject, err)
	}
	return ack.Duplicate, nil
}
