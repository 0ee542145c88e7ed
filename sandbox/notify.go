package sandbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/disputesync/disputesync/internal/alipaysig"
)

// Notifications: the sandbox pushes what the providers push (docs/contract.md
// section 6), signed as they sign, and retries like them: with exponential
// backoff until an answer says success, a bounded number of times. A
// delivery never runs inside an HTTP handler of the sandbox: Notify and the
// control handler start it in the background.
//
//	disputeapi  {"notify_id","event_code","data": the record as the list serves it}
//	            X-Dispute-Signature: sha256=<hex HMAC-SHA256 of the body> (Keys.DisputeAPIWebhookSecret);
//	            success: HTTP 200 and {"code":"200"}
//	alipay      notifyDispute: {"disputeId","paymentRequestId","disputeNotificationType","disputeAmount",
//	            "disputeTime","defenseDueTime"}, signed with the Alipay provider key;
//	            success: HTTP 200 and result.resultStatus "S"
//	alipayplus  responseEscalation: {"disputeRequestId","disputeId","refundType","refundAmount","remarks"},
//	            signed with the Alipay+ provider key; success: HTTP 200, result S, and the answer's
//	            signature verifies with the merchant (MPP) public key
//
// Every attempt of a delivery sends the same body, re-signed with a fresh
// Request-Time.

// Notification kinds.
const (
	NotifyDisputeAPI = ProviderDisputeAPI
	NotifyAlipay     = ProviderAlipay
	NotifyAlipayPlus = ProviderAlipayPlus
)

// WebhookPaths are disputesync's receiving paths per kind, appended to a
// target that has no path.
var WebhookPaths = map[string]string{
	NotifyDisputeAPI: "/webhooks/disputeapi/notify",
	NotifyAlipay:     "/webhooks/alipay/notifyDispute",
	NotifyAlipayPlus: "/webhooks/alipayplus/responseEscalation",
}

// Notification is one notification ready to send.
type Notification struct {
	Kind      string          `json:"kind"`
	DisputeID string          `json:"disputeId"`
	Type      string          `json:"type"` // event_code, disputeNotificationType or refundType
	Body      json.RawMessage `json:"body"`
}

// NotifyPolicy is how a delivery retries. Zero values are the defaults.
type NotifyPolicy struct {
	MaxAttempts  int           // default 8
	FirstBackoff time.Duration // default 500 ms, doubled per attempt, ±20% jitter
	MaxBackoff   time.Duration // default 1 min
	Timeout      time.Duration // per attempt, default 10 s
	Client       *http.Client  // default a plain client
}

func (p NotifyPolicy) withDefaults() NotifyPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 8
	}
	if p.FirstBackoff <= 0 {
		p.FirstBackoff = 500 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = time.Minute
	}
	if p.Timeout <= 0 {
		p.Timeout = 10 * time.Second
	}
	if p.Client == nil {
		p.Client = &http.Client{}
	}
	return p
}

// Delivery is the record of one notification's delivery.
type Delivery struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	DisputeID  string    `json:"disputeId"`
	Type       string    `json:"type"`
	URL        string    `json:"url"`
	Attempts   int       `json:"attempts"`
	Delivered  bool      `json:"delivered"`
	Done       bool      `json:"done"`
	LastStatus int       `json:"lastStatus,omitempty"`
	LastError  string    `json:"lastError,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// notifyState holds a Server's deliveries. It lives beside the Server (not
// in it) only because this file was added while the Server struct had
// another owner; it can move into Server unchanged.
type notifyState struct {
	mu         sync.Mutex
	deliveries []Delivery // the last maxDeliveries
	wg         sync.WaitGroup
}

const maxDeliveries = 1000

var notifyStates sync.Map // *Server -> *notifyState

func (s *Server) notifyState() *notifyState {
	v, _ := notifyStates.LoadOrStore(s, &notifyState{})
	return v.(*notifyState)
}

func (st *notifyState) put(d Delivery) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := len(st.deliveries) - 1; i >= 0; i-- {
		if st.deliveries[i].ID == d.ID {
			st.deliveries[i] = d
			return
		}
	}
	st.deliveries = append(st.deliveries, d)
	if len(st.deliveries) > maxDeliveries {
		st.deliveries = append([]Delivery(nil), st.deliveries[len(st.deliveries)-maxDeliveries:]...)
	}
}

// Deliveries returns the recent deliveries, oldest first.
func (s *Server) Deliveries() []Delivery {
	st := s.notifyState()
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]Delivery(nil), st.deliveries...)
}

// WaitNotifications waits until every background delivery has finished.
func (s *Server) WaitNotifications() { s.notifyState().wg.Wait() }

func newNotifyID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "ntf_" + hex.EncodeToString(b)
}

// DisputeAPINotification builds the PSP's notification of a disputeapi
// dispute as the list serves it now, with a fresh notify_id. An empty
// eventCode is derived: DISPUTE_CLOSED when closed, SECOND_CHARGEBACK when
// disputes_times > 1, else CHARGEBACK.
func (s *Server) DisputeAPINotification(disputeID, eventCode string) (Notification, error) {
	rec, ok := s.Dispute(disputeID)
	if !ok {
		return Notification{}, fmt.Errorf("sandbox: no disputeapi dispute %q", disputeID)
	}
	if eventCode == "" {
		times, _ := strconv.Atoi(rec.Disputes.DisputesTimes)
		switch {
		case rec.Disputes.DisputesStatus == "closed":
			eventCode = "DISPUTE_CLOSED"
		case times > 1:
			eventCode = "SECOND_CHARGEBACK"
		default:
			eventCode = "CHARGEBACK"
		}
	}
	body, err := json.Marshal(struct {
		NotifyID  string `json:"notify_id"`
		EventCode string `json:"event_code"`
		Data      Record `json:"data"`
	}{newNotifyID(), eventCode, rec})
	if err != nil {
		return Notification{}, fmt.Errorf("sandbox: encode notification: %w", err)
	}
	return Notification{Kind: NotifyDisputeAPI, DisputeID: disputeID, Type: eventCode, Body: body}, nil
}

// AlipayNotification builds Alipay's notifyDispute of an Alipay dispute. An
// empty type is derived from its status: DISPUTE_CREATED while it waits
// for a defense, DEFENSE_SUPPLIED, or DISPUTE_JUDGED once accepted.
func (s *Server) AlipayNotification(disputeID, notificationType string) (Notification, error) {
	d, ok := s.AlipayDisputeByID(disputeID)
	if !ok {
		return Notification{}, fmt.Errorf("sandbox: no alipay dispute %q", disputeID)
	}
	if notificationType == "" {
		switch d.Status {
		case AlipayStatusDefenseSupplied:
			notificationType = "DEFENSE_SUPPLIED"
		case AlipayStatusAccepted:
			notificationType = "DISPUTE_JUDGED"
		default:
			notificationType = "DISPUTE_CREATED"
		}
	}
	type amount struct {
		Currency string `json:"currency"`
		Value    string `json:"value"`
	}
	body, err := json.Marshal(struct {
		DisputeID               string `json:"disputeId"`
		PaymentRequestID        string `json:"paymentRequestId"`
		DisputeNotificationType string `json:"disputeNotificationType"`
		DisputeAmount           amount `json:"disputeAmount"`
		DisputeTime             string `json:"disputeTime"`
		DefenseDueTime          string `json:"defenseDueTime"`
	}{d.DisputeID, d.PaymentRequestID, notificationType,
		amount{d.Amount.Currency, strconv.FormatInt(d.Amount.Value, 10)},
		d.CreatedAt.Format(alipaysig.TimeLayout), d.DefenseDueTime.Format(alipaysig.TimeLayout)})
	if err != nil {
		return Notification{}, fmt.Errorf("sandbox: encode notification: %w", err)
	}
	return Notification{Kind: NotifyAlipay, DisputeID: disputeID, Type: notificationType, Body: body}, nil
}

// EscalationResponse answers an Alipay+ escalation as Alipay+ does: it ends
// the escalation (REPLIED; an escalation already ended stays as it is) and
// returns the responseEscalation notification. An empty refundType is
// ACCEPT_REFUND; refundAmount defaults to the escalation amount for
// ACCEPT_REFUND and half of it for ACCEPT_PARTIAL_REFUND.
func (s *Server) EscalationResponse(disputeID, refundType string, refundAmount *Amount, remarks string) (Notification, error) {
	var esc *AlipayPlusEscalation
	for _, e := range s.Escalations("") {
		if e.DisputeID == disputeID {
			esc = &e
			break
		}
	}
	if esc == nil {
		return Notification{}, fmt.Errorf("sandbox: no alipayplus escalation %q", disputeID)
	}
	s.EndEscalation(disputeID, EscalationReplied)
	if refundType == "" {
		refundType = "ACCEPT_REFUND"
	}
	if refundAmount == nil {
		switch refundType {
		case "ACCEPT_REFUND":
			refundAmount = &esc.Amount
		case "ACCEPT_PARTIAL_REFUND":
			refundAmount = &Amount{Currency: esc.Amount.Currency, Value: max(1, esc.Amount.Value/2)}
		}
	}
	type amount struct {
		Currency string `json:"currency"`
		Value    string `json:"value"`
	}
	var ra *amount
	if refundAmount != nil {
		ra = &amount{refundAmount.Currency, strconv.FormatInt(refundAmount.Value, 10)}
	}
	var rm *string
	if remarks != "" {
		rm = &remarks
	}
	body, err := json.Marshal(struct {
		DisputeRequestID string  `json:"disputeRequestId"`
		DisputeID        string  `json:"disputeId"`
		RefundType       string  `json:"refundType"`
		RefundAmount     *amount `json:"refundAmount,omitempty"`
		Remarks          *string `json:"remarks,omitempty"`
	}{esc.DisputeRequestID, esc.DisputeID, refundType, ra, rm})
	if err != nil {
		return Notification{}, fmt.Errorf("sandbox: encode notification: %w", err)
	}
	return Notification{Kind: NotifyAlipayPlus, DisputeID: disputeID, Type: refundType, Body: body}, nil
}

// notifyTarget appends the kind's webhook path to a target without a path.
func notifyTarget(kind, target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("sandbox: notification target %q is not an absolute URL", target)
	}
	if u.Path == "" || u.Path == "/" {
		p, ok := WebhookPaths[kind]
		if !ok {
			return "", fmt.Errorf("sandbox: unknown notification kind %q", kind)
		}
		u.Path = p
	}
	return u.String(), nil
}

// SendNotification delivers n to target synchronously (recorded in
// Deliveries too), retrying until a success answer, p.MaxAttempts, or ctx's
// end. target is a full URL, or a
// base URL to which the kind's webhook path is appended.
func (s *Server) SendNotification(ctx context.Context, n Notification, target string, p NotifyPolicy) Delivery {
	st := s.notifyState()
	d := Delivery{ID: newNotifyID(), Kind: n.Kind, DisputeID: n.DisputeID, Type: n.Type, URL: target, StartedAt: s.now()}
	st.put(d)
	s.deliver(ctx, n, p, &d, st.put)
	return d
}

// Notify delivers n in the background with the default policy and returns
// the delivery id at once; Deliveries reports its progress.
func (s *Server) Notify(ctx context.Context, n Notification, target string) string {
	return s.NotifyWith(ctx, n, target, NotifyPolicy{})
}

// NotifyWith is Notify with a policy.
func (s *Server) NotifyWith(ctx context.Context, n Notification, target string, p NotifyPolicy) string {
	st := s.notifyState()
	d := Delivery{ID: newNotifyID(), Kind: n.Kind, DisputeID: n.DisputeID, Type: n.Type, URL: target, StartedAt: s.now()}
	st.put(d)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		s.deliver(ctx, n, p, &d, st.put)
	}()
	return d.ID
}

func (s *Server) deliver(ctx context.Context, n Notification, p NotifyPolicy, d *Delivery, update func(Delivery)) {
	p = p.withDefaults()
	defer func() {
		d.Done, d.FinishedAt = true, s.now()
		update(*d)
		s.log.Info("sandbox: notification finished", "kind", d.Kind, "dispute", d.DisputeID, "type", d.Type,
			"attempts", d.Attempts, "delivered", d.Delivered, "lastStatus", d.LastStatus)
	}()
	target, err := notifyTarget(n.Kind, d.URL)
	if err != nil {
		d.LastError = err.Error()
		return
	}
	d.URL = target
	backoff := p.FirstBackoff
	for {
		d.Attempts++
		status, err := s.notifyOnce(ctx, n, target, p)
		d.LastStatus = status
		if err == nil {
			d.Delivered, d.LastError = true, ""
			return
		}
		d.LastError = err.Error()
		update(*d)
		if d.Attempts >= p.MaxAttempts {
			return
		}
		wait := time.Duration(float64(backoff) * (0.8 + 0.4*mrand.Float64()))
		backoff = min(2*backoff, p.MaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			d.LastError = "stopped: " + ctx.Err().Error()
			return
		case <-t.C:
		}
	}
}

// notifyOnce is one attempt; a nil error means the receiver answered
// success (and, for Alipay+, signed its answer correctly).
func (s *Server) notifyOnce(ctx context.Context, n Notification, target string, p NotifyPolicy) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(n.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	keys := s.cfg.Keys
	switch n.Kind {
	case NotifyDisputeAPI:
		req.Header.Set("X-Dispute-Signature", SignDisputeAPINotification([]byte(keys.DisputeAPIWebhookSecret), n.Body))
	case NotifyAlipay, NotifyAlipayPlus:
		// New parsed the keys once; only a key it could not use is parsed
		// again here, for the error.
		clientID, privPEM, priv := keys.AlipayClientID, keys.AlipayProviderPrivatePEM, s.alipayPriv
		if n.Kind == NotifyAlipayPlus {
			clientID, privPEM, priv = keys.AlipayPlusClientID, keys.AlipayPlusProviderPrivatePEM, s.alipayPlusPriv
		}
		if priv == nil {
			if _, err := alipaysig.ParsePrivateKey([]byte(privPEM)); err != nil {
				return 0, fmt.Errorf("%s provider key: %w", n.Kind, err)
			}
		}
		rt := s.now().Format(alipaysig.TimeLayout)
		sig, err := alipaysig.Sign(priv, http.MethodPost, req.URL.Path, clientID, rt, n.Body)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Client-Id", clientID)
		req.Header.Set("Request-Time", rt)
		req.Header.Set("Signature", sig)
	default:
		return 0, fmt.Errorf("unknown notification kind %q", n.Kind)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("answer HTTP %d", resp.StatusCode)
	}
	switch n.Kind {
	case NotifyDisputeAPI:
		var a struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(body, &a) != nil || a.Code != "200" {
			return resp.StatusCode, errors.New(`answer is not {"code":"200"}`)
		}
		return resp.StatusCode, nil
	case NotifyAlipayPlus:
		if err := s.verifyMerchantAnswer(resp, req.URL.Path, body); err != nil {
			return resp.StatusCode, err
		}
	}
	var a struct {
		Result *Result `json:"result"`
	}
	if json.Unmarshal(body, &a) != nil || a.Result == nil || a.Result.ResultStatus != "S" {
		return resp.StatusCode, errors.New("answer's result is not S")
	}
	return resp.StatusCode, nil
}

// verifyMerchantAnswer checks the MPP's signature on its responseEscalation
// answer with the merchant public key the sandbox verifies requests with.
func (s *Server) verifyMerchantAnswer(resp *http.Response, path string, body []byte) error {
	keys := s.cfg.Keys
	if s.alipayPlusPub == nil { // parsed once by New; parsed again only for the error
		if _, err := alipaysig.ParsePublicKey([]byte(keys.AlipayPlusMerchantPublicPEM)); err != nil {
			return fmt.Errorf("alipayplus merchant key: %w", err)
		}
	}
	return notifyVerifyAnswer(s.alipayPlusPub, keys.AlipayPlusClientID, path, resp.Header, body)
}

func notifyVerifyAnswer(pub *rsa.PublicKey, clientID, path string, h http.Header, body []byte) error {
	if h.Get("Client-Id") != clientID {
		return errors.New("answer's Client-Id is not the merchant's")
	}
	rt := h.Get("Response-Time")
	if rt == "" {
		return errors.New("answer has no Response-Time")
	}
	if err := alipaysig.Verify(pub, http.MethodPost, path, clientID, rt, body, h.Get("Signature")); err != nil {
		return fmt.Errorf("answer signature: %w", err)
	}
	return nil
}

// SignDisputeAPINotification is the X-Dispute-Signature of a body.
func SignDisputeAPINotification(secret, body []byte) string {
	return "sha256=" + notifyHMACHex(secret, body)
}

func notifyHMACHex(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// notifyRequest is the control handler's body.
type notifyRequest struct {
	Kind         string  `json:"kind"`
	DisputeID    string  `json:"disputeId"`
	Type         string  `json:"type"`
	URL          string  `json:"url"`
	RefundAmount *Amount `json:"refundAmount"`
	Remarks      string  `json:"remarks"`
	Wait         bool    `json:"wait"`
}

// NotifyHandler is the control endpoint the lead mounts at
// /_sandbox/notify:
//
//	POST /_sandbox/notify {"kind":"disputeapi"|"alipay"|"alipayplus","disputeId","type","url",
//	                       "refundAmount":{"currency","value"},"remarks","wait":false}
//	     builds the notification (type as in DisputeAPINotification, AlipayNotification and
//	     EscalationResponse; an Alipay+ response ends the escalation) and delivers it to url
//	     (default defaultURL; a URL without a path gets the kind's webhook path) in the
//	     background: 202 {"id"}; with "wait": true it answers the finished Delivery.
//	GET  /_sandbox/notify  the recent deliveries.
func (s *Server) NotifyHandler(defaultURL string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			notifyJSON(w, http.StatusOK, s.Deliveries())
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "GET, POST")
			notifyJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "GET or POST"})
			return
		}
		var req notifyRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			notifyJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON: " + err.Error()})
			return
		}
		var n Notification
		var err error
		switch req.Kind {
		case NotifyDisputeAPI:
			n, err = s.DisputeAPINotification(req.DisputeID, req.Type)
		case NotifyAlipay:
			n, err = s.AlipayNotification(req.DisputeID, req.Type)
		case NotifyAlipayPlus:
			n, err = s.EscalationResponse(req.DisputeID, req.Type, req.RefundAmount, req.Remarks)
		default:
			err = fmt.Errorf("kind must be %s, %s or %s", NotifyDisputeAPI, NotifyAlipay, NotifyAlipayPlus)
		}
		if err != nil {
			notifyJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		target := req.URL
		if target == "" {
			target = defaultURL
		}
		if _, err := notifyTarget(n.Kind, target); err != nil {
			notifyJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		// The delivery outlives this request: it must not end with it.
		ctx := context.WithoutCancel(r.Context())
		if req.Wait {
			notifyJSON(w, http.StatusOK, s.SendNotification(r.Context(), n, target, NotifyPolicy{}))
			return
		}
		notifyJSON(w, http.StatusAccepted, map[string]string{"id": s.Notify(ctx, n, target)})
	}
}

func notifyJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
