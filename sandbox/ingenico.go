package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/disputesync/disputesync/internal/gcs"
)

// Ingenico dispute statuses.
const (
	IngenicoDraft     = "DRAFT"
	IngenicoCreated   = "CREATED"
	IngenicoCancelled = "CANCELLED"
)

// ingenicoStatusCodes are the numeric statusOutput.statusCode values the
// sandbox uses (the seed shows 600 for CREATED; the others are its choice).
var ingenicoStatusCodes = map[string]int{IngenicoDraft: 50, IngenicoCreated: 600, IngenicoCancelled: 99999}

const (
	ingTimeLayout  = "20060102150405"
	ingMaxFileName = 255
	ingMaxFileSize = 10 << 20
)

// IngenicoFile is a file attached to an Ingenico dispute.
type IngenicoFile struct {
	ID       string `json:"id"`
	FileName string `json:"fileName"`
	FileType string `json:"fileType"`
	FileSize int64  `json:"fileSize"`
	SHA256   string `json:"sha256,omitempty"`
}

// IngenicoDispute is a dispute object of the Ingenico Dispute REST service.
type IngenicoDispute struct {
	ID              string         `json:"id"`
	MerchantID      string         `json:"merchantId"`
	PaymentID       string         `json:"paymentId"`
	Status          string         `json:"status"`
	Amount          int64          `json:"amount"` // cents
	Currency        string         `json:"currency"`
	ContactPerson   string         `json:"contactPerson"`
	EmailAddress    string         `json:"emailAddress"`
	RequestMessage  string         `json:"requestMessage"`
	ResponseMessage string         `json:"responseMessage"`
	CreatedAt       time.Time      `json:"createdAt"`
	StatusChangedAt time.Time      `json:"statusChangedAt"`
	Files           []IngenicoFile `json:"files"`
}

// ingStored is the stored answer of an X-GCS-Idempotence-Key.
type ingStored struct {
	status int
	body   []byte
	at     time.Time
}

// CreateIngenicoDispute stores a dispute, DRAFT by default, for the
// configured merchant, USD 12.34.
func (s *Server) CreateIngenicoDispute(d IngenicoDispute) IngenicoDispute {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nextID()
	now := s.now()
	if d.ID == "" {
		d.ID = strconv.FormatInt(1000+n, 10)
	}
	if d.MerchantID == "" {
		d.MerchantID = s.keys.IngenicoMerchantID
	}
	if d.PaymentID == "" {
		d.PaymentID = fmt.Sprintf("%030d", 852800000014110000+n)
	}
	if d.Status == "" {
		d.Status = IngenicoDraft
	}
	if d.Amount == 0 {
		d.Amount = 1234
	}
	if d.Currency == "" {
		d.Currency = "USD"
	}
	if d.ContactPerson == "" {
		d.ContactPerson = "Wile Coyote"
	}
	if d.EmailAddress == "" {
		d.EmailAddress = "wile.e.coyote@acmelabs.com"
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	if d.StatusChangedAt.IsZero() {
		d.StatusChangedAt = d.CreatedAt
	}
	if d.Files == nil {
		d.Files = []IngenicoFile{}
	}
	cp := d
	cp.Files = append([]IngenicoFile(nil), d.Files...)
	s.ingDisputes[d.ID] = &cp
	return d
}

// IngenicoDisputeByID returns an Ingenico dispute.
func (s *Server) IngenicoDisputeByID(id string) (IngenicoDispute, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.ingDisputes[id]
	if !ok {
		return IngenicoDispute{}, false
	}
	cp := *d
	cp.Files = append([]IngenicoFile(nil), d.Files...)
	return cp, true
}

func (s *Server) ingenicoRoutes() {
	base := "/v1/{merchantId}/disputes/{disputeId}"
	s.mux.Handle("GET "+base, s.serve(s.ingEndpoint("get", s.ingGet)))
	s.mux.Handle("POST "+base+"/submit", s.serve(s.ingEndpoint("submit", s.ingSubmit)))
	s.mux.Handle("POST "+base+"/cancel", s.serve(s.ingEndpoint("cancel", s.ingCancel)))
	s.mux.Handle("POST "+base+"/files", s.serve(s.ingEndpoint("files", s.ingUpload)))
}

// APIError is one entry of an Ingenico error response (Dispute REST API).
type APIError struct {
	Code           string `json:"code"`
	ID             string `json:"id"`
	Category       string `json:"category"`
	Message        string `json:"message"`
	HTTPStatusCode int    `json:"httpStatusCode"`
	PropertyName   string `json:"propertyName,omitempty"`
}

// Ingenico errors the sandbox answers.
var (
	ingNotAllowed = APIError{"310400200", "DISPUTE_ACTION_NOT_ALLOWED_ON_TRANSACTION", "DISPUTE_SERVICE_ERROR", "Action not allowed for current state", 400, ""}
	ingUnknown    = APIError{"1002", "UNKNOWN_DISPUTE_ID", "CONNECT_PLATFORM_ERROR", "UNKNOWN_DISPUTE_ID", 404, ""}
	ingAuth       = APIError{"9002", "MISSING_OR_INVALID_AUTHORIZATION", "CONNECT_PLATFORM_ERROR", "MISSING_OR_INVALID_AUTHORIZATION", 401, ""}
	ingMerchant   = APIError{"9007", "ACCESS_TO_MERCHANT_NOT_ALLOWED", "CONNECT_PLATFORM_ERROR", "ACCESS_TO_MERCHANT_NOT_ALLOWED", 403, ""}
	ingMissing    = APIError{"21000020", "PARAMETER_NOT_FOUND_IN_REQUEST", "CONNECT_PLATFORM_ERROR", "PARAMETER_NOT_FOUND_IN_REQUEST", 400, ""}
	ingInvalid    = APIError{"21000120", "REQUEST_PARAMETER_INVALID", "CONNECT_PLATFORM_ERROR", "REQUEST_PARAMETER_INVALID", 400, ""}
	ingServer     = APIError{"9999", "UNKNOWN_SERVER_ERROR", "IO_ERROR", "UNKNOWN_SERVER_ERROR", 500, ""}
	ingThrottle   = APIError{"9429", "TOO_MANY_REQUESTS", "IO_ERROR", "TOO_MANY_REQUESTS", 429, ""}
)

// ingError answers one error.
func (s *Server) ingError(e APIError) answer {
	s.rngMu.Lock()
	id := fmt.Sprintf("%016x%016x", s.rng.Uint64(), s.rng.Uint64())
	s.rngMu.Unlock()
	b, _ := json.Marshal(struct {
		ErrorID string     `json:"errorId"`
		Errors  []APIError `json:"errors"`
	}{id, []APIError{e}})
	return answer{status: e.HTTPStatusCode, body: b}
}

func (s *Server) ingFault(_ *http.Request, kind faultKind) answer {
	if kind == faultThrottle {
		return s.ingError(ingThrottle)
	}
	return s.ingError(ingServer)
}

// ingEndpoint authenticates, checks the merchant, honours the idempotence
// key and finds the dispute before calling h under the write lock.
func (s *Server) ingEndpoint(name string, h func(r *http.Request, body []byte, d *IngenicoDispute, key string) answer) endpoint {
	return endpoint{
		provider: ProviderIngenico, name: name, fault: s.ingFault,
		handle: func(r *http.Request, body []byte) answer {
			if !s.ingAuthenticated(r) {
				return s.ingError(ingAuth)
			}
			if r.PathValue("merchantId") != s.keys.IngenicoMerchantID {
				return s.ingError(ingMerchant)
			}
			key := r.Header.Get("X-GCS-Idempotence-Key")
			s.mu.Lock()
			defer s.mu.Unlock()
			idem := key != "" && r.Method == http.MethodPost
			ikey := r.PathValue("merchantId") + "\x00" + key
			if idem {
				if st, ok := s.ingIdem[ikey]; ok {
					h := http.Header{}
					h.Set("X-GCS-Idempotence-Request-Timestamp", strconv.FormatInt(st.at.UnixMilli(), 10))
					return answer{status: st.status, header: h, body: st.body}
				}
			}
			var a answer
			if d, ok := s.ingDisputes[r.PathValue("disputeId")]; ok && d.MerchantID == r.PathValue("merchantId") {
				a = h(r, body, d, key)
			} else {
				a = s.ingError(ingUnknown)
			}
			if idem {
				s.ingIdem[ikey] = &ingStored{status: a.status, body: a.body, at: s.now()}
			}
			return a
		},
	}
}

// ingAuthenticated verifies the v1HMAC Authorization and the Date's freshness.
func (s *Server) ingAuthenticated(r *http.Request) bool {
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return false
	}
	if d := s.now().Sub(date); d > MaxClockSkew || d < -MaxClockSkew {
		return false
	}
	_, err = gcs.Verify(r, func(id string) ([]byte, bool) {
		if id != s.keys.IngenicoAPIKeyID || s.keys.IngenicoSecretAPIKey == "" {
			return nil, false
		}
		return []byte(s.keys.IngenicoSecretAPIKey), true
	})
	return err == nil
}

// ingObject renders the dispute object of Ingenico's Dispute REST API.
func ingObject(d *IngenicoDispute) answer {
	type file struct {
		FileName string `json:"fileName"`
		ID       string `json:"id"`
		FileType string `json:"fileType"`
		FileSize string `json:"fileSize"`
	}
	files := make([]file, 0, len(d.Files))
	for _, f := range d.Files {
		files = append(files, file{f.FileName, f.ID, f.FileType, strconv.FormatInt(f.FileSize, 10)})
	}
	obj := map[string]any{
		"id":        d.ID,
		"paymentId": d.PaymentID,
		"disputeOutput": map[string]any{
			"creationDetails": map[string]any{
				"disputeCreationDate": d.CreatedAt.UTC().Format(ingTimeLayout),
				"disputeOriginator":   "Merchant / Ingenico",
				"userName":            "",
			},
			"contactPerson":   d.ContactPerson,
			"emailAddress":    d.EmailAddress,
			"replyTo":         d.EmailAddress,
			"requestMessage":  d.RequestMessage,
			"responseMessage": d.ResponseMessage,
			"amountOfMoney":   map[string]any{"amount": d.Amount, "currencyCode": d.Currency},
			"files":           files,
		},
		"status": d.Status,
		"statusOutput": map[string]any{
			"isCancellable":            d.Status == IngenicoDraft || d.Status == IngenicoCreated,
			"statusCategory":           map[bool]string{true: "UNSUCCESSFUL", false: "CREATED"}[d.Status == IngenicoCancelled],
			"statusCode":               ingenicoStatusCodes[d.Status],
			"statusCodeChangeDateTime": d.StatusChangedAt.UTC().Format(ingTimeLayout),
		},
	}
	b, _ := json.Marshal(obj)
	return answer{status: http.StatusOK, body: b}
}

func (s *Server) ingGet(_ *http.Request, _ []byte, d *IngenicoDispute, _ string) answer {
	return ingObject(d)
}

// ingTransition moves d to status to when it is in one of from.
func (s *Server) ingTransition(r *http.Request, d *IngenicoDispute, key, op, to string, from ...string) answer {
	if !contains(from, d.Status) {
		return s.ingError(ingNotAllowed)
	}
	prev := d.Status
	d.Status = to
	d.StatusChangedAt = s.now()
	s.recordEffect(r, Effect{Provider: ProviderIngenico, Operation: op, DisputeID: d.ID, DisputeRequestID: key,
		IdempotencyKey: key, Detail: map[string]string{"from": prev, "to": to}})
	return ingObject(d)
}

func (s *Server) ingSubmit(r *http.Request, _ []byte, d *IngenicoDispute, key string) answer {
	return s.ingTransition(r, d, key, "submit", IngenicoCreated, IngenicoDraft)
}

func (s *Server) ingCancel(r *http.Request, _ []byte, d *IngenicoDispute, key string) answer {
	return s.ingTransition(r, d, key, "cancel", IngenicoCancelled, IngenicoDraft, IngenicoCreated)
}

func (s *Server) ingUpload(r *http.Request, body []byte, d *IngenicoDispute, key string) answer {
	var req struct {
		FileName *string `json:"fileName"`
		FileType *string `json:"fileType"`
		Content  *string `json:"content"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return s.ingError(ingInvalid)
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"fileName", req.FileName}, {"fileType", req.FileType}, {"content", req.Content}} {
		if f.v == nil || *f.v == "" {
			e := ingMissing
			e.PropertyName = f.name
			return s.ingError(e)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(*req.Content)
	if err != nil || len(raw) > ingMaxFileSize || len(*req.FileName) > ingMaxFileName {
		return s.ingError(ingInvalid)
	}
	if d.Status != IngenicoDraft && d.Status != IngenicoCreated {
		return s.ingError(ingNotAllowed)
	}
	f := IngenicoFile{
		ID:       base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "wpc-dispute:%s:%d:%s", d.ID, s.nextID(), *req.FileName)),
		FileName: *req.FileName,
		FileType: *req.FileType,
		FileSize: int64(len(raw)),
		SHA256:   sha256Hex(raw),
	}
	d.Files = append(d.Files, f)
	s.recordEffect(r, Effect{Provider: ProviderIngenico, Operation: "files", DisputeID: d.ID, DisputeRequestID: key,
		IdempotencyKey: key, Detail: map[string]string{"fileId": f.ID, "fileName": f.FileName, "sha256": f.SHA256}})
	b, _ := json.Marshal(map[string]string{"id": f.ID})
	return answer{status: http.StatusOK, body: b}
}
