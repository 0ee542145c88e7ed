package sandbox

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// disputeapi result codes and messages (docs/contract.md section 5).
const (
	dapiParamError     = "PARAM_ERROR"
	dapiNotFound       = "DISPUTE_NOT_FOUND"
	dapiClosed         = "DISPUTE_ALREADY_CLOSED"
	dapiDefended       = "DISPUTE_ALREADY_DEFENDED"
	dapiDocNotFound    = "DOCUMENT_NOT_FOUND"
	dapiRateLimited    = "RATE_LIMITED"
	dapiInternalError  = "INTERNAL_ERROR"
	dapiMaxPageDigits  = 5
	dapiMaxDocumentLen = 10 << 20 // decoded bytes of one uploaded document
)

// List types of the list API.
const (
	ListDispute        = "dispute"
	ListDisputesPeriod = "disputes-period"
)

func (s *Server) disputeAPIRoutes() {
	ep := func(name string, h func(*http.Request, []byte) answer) {
		s.mux.Handle("POST /dispute-api/v1/"+name, s.serve(endpoint{
			provider: ProviderDisputeAPI, name: name,
			handle: func(r *http.Request, body []byte) answer {
				if !s.disputeAPIAuthorized(r) {
					return answer{status: http.StatusUnauthorized, body: []byte(`{"code":"401","msg":"UNAUTHORIZED"}`)}
				}
				return h(r, body)
			},
			fault: dapiFault,
		}))
	}
	ep("list", s.dapiList)
	ep("abandon", s.dapiAbandon)
	ep("documents/upload", s.dapiUpload)
	ep("documents/remove", s.dapiRemove)
	ep("defend", s.dapiDefend)
	ep("required-documents", s.dapiRequiredDocuments)
}

func (s *Server) disputeAPIAuthorized(r *http.Request) bool {
	if s.keys.DisputeAPIToken == "" {
		return true
	}
	want := "Bearer " + s.keys.DisputeAPIToken
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) == 1
}

func dapiFault(_ *http.Request, kind faultKind) answer {
	if kind == faultThrottle {
		return dapiErr("500", dapiRateLimited)
	}
	return dapiErr("500", dapiInternalError)
}

func dapiErr(code, msg string) answer {
	return answer{body: []byte(`{"code":"` + code + `","msg":"` + msg + `"}`)}
}

func dapiOK(data any) answer {
	b, err := json.Marshal(struct {
		Code string `json:"code"`
		Msg  string `json:"msg"`
		Data any    `json:"data"`
	}{"200", "SUCCESS", data})
	if err != nil {
		return dapiErr("500", dapiInternalError)
	}
	return answer{body: b}
}

// listRequest is the list body; pointers tell a missing field from "".
type listRequest struct {
	From  *string `json:"from_created_at"`
	To    *string `json:"to_created_at"`
	Type  *string `json:"type"`
	Page  *string `json:"page"`
	Limit *string `json:"limit"`
}

func (s *Server) dapiList(_ *http.Request, body []byte) answer {
	var req listRequest
	if err := json.Unmarshal(body, &req); err != nil || req.From == nil || req.To == nil || req.Type == nil {
		return dapiErr("400", dapiParamError)
	}
	from, err1 := ParseTime(*req.From)
	to, err2 := ParseTime(*req.To)
	if err1 != nil || err2 != nil || from.After(to) {
		return dapiErr("400", dapiParamError)
	}
	if *req.Type != ListDispute && *req.Type != ListDisputesPeriod {
		return dapiErr("400", dapiParamError)
	}
	page, limit := 1, 10
	if req.Page != nil {
		p, err := strconv.Atoi(*req.Page)
		if err != nil || p < 1 || len(*req.Page) > dapiMaxPageDigits {
			return dapiErr("400", dapiParamError)
		}
		page = p
	}
	if req.Limit != nil {
		switch *req.Limit {
		case "10", "50", "100":
			limit, _ = strconv.Atoi(*req.Limit)
		default:
			return dapiErr("400", dapiParamError)
		}
	}
	buf := pagePool.Get().(*[]byte)
	*buf = s.listPage((*buf)[:0], *req.Type, from.Unix(), to.Unix(), page, limit)
	return answer{body: *buf, release: func() { pagePool.Put(buf) }}
}

// pagePool recycles page buffers: a full scan renders 1 000 pages of about
// 100 KB, and reusing them keeps the garbage collector (which must scan the
// whole population) from running for every few pages.
var pagePool = sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}

// listPage appends one page of the list, newest first, to b.
func (s *Server) listPage(b []byte, typ string, from, to int64, page, limit int) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now().Unix()
	recs := s.store.list(s.cfg.PeriodReading, typ, from, to, now)
	total := len(recs)
	pages := (total + limit - 1) / limit
	b = append(b, `{"code":"200","msg":"SUCCESS","data":{"lists":[`...)
	// Newest first: page 1 is the end of the ascending slice.
	start := total - (page-1)*limit
	for i, n := start-1, 0; i >= 0 && i < total && n < limit; i, n = i-1, n+1 {
		if n > 0 {
			b = append(b, ',')
		}
		b = recs[i].appendJSON(b, now)
	}
	return fmt.Appendf(b, `],"page":"%d","total_count":"%d","total_pages":"%d"}}`, page, total, pages)
}

// actionRequest is the body of every disputeapi action.
type actionRequest struct {
	DisputesID  *string `json:"disputes_id"`
	FileName    *string `json:"file_name"`
	ContentType *string `json:"content_type"`
	Content     *string `json:"content"`
	DocumentID  *string `json:"document_id"`
	Comment     *string `json:"comment"`
}

// dapiAction decodes an action, finds its dispute and runs f under the write
// lock; a closed dispute is refused unless allowClosed.
func (s *Server) dapiAction(body []byte, allowClosed bool, f func(req *actionRequest, d *stored) answer) answer {
	var req actionRequest
	if err := json.Unmarshal(body, &req); err != nil || req.DisputesID == nil || *req.DisputesID == "" {
		return dapiErr("400", dapiParamError)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.store.byID[*req.DisputesID]
	if !ok {
		return dapiErr("400", dapiNotFound)
	}
	if d.closed() && !allowClosed {
		return dapiErr("400", dapiClosed)
	}
	return f(&req, d)
}

func (s *Server) dapiAbandon(r *http.Request, body []byte) answer {
	return s.dapiAction(body, false, func(req *actionRequest, d *stored) answer {
		s.updateLocked(d, func(rec *Record) { rec.Disputes.DisputesStatus = "closed" })
		s.recordEffect(r, Effect{Provider: ProviderDisputeAPI, Operation: "abandon", DisputeID: *req.DisputesID})
		return dapiOK(map[string]string{"disputes_id": *req.DisputesID, "status": StatusClose})
	})
}

func (s *Server) dapiUpload(r *http.Request, body []byte) answer {
	return s.dapiAction(body, false, func(req *actionRequest, d *stored) answer {
		if req.FileName == nil || *req.FileName == "" || len(*req.FileName) > 128 ||
			req.ContentType == nil || *req.ContentType == "" || req.Content == nil || *req.Content == "" {
			return dapiErr("400", dapiParamError)
		}
		raw, err := base64.StdEncoding.DecodeString(*req.Content)
		if err != nil || len(raw) > dapiMaxDocumentLen {
			return dapiErr("400", dapiParamError)
		}
		if d.defended() {
			return dapiErr("400", dapiDefended)
		}
		doc := document{
			ID:          fmt.Sprintf("DOC%09d", s.nextID()),
			FileName:    *req.FileName,
			ContentType: *req.ContentType,
			SHA256:      sha256Hex(raw),
			Size:        len(raw),
		}
		d.docs = append(d.docs, doc)
		s.recordEffect(r, Effect{Provider: ProviderDisputeAPI, Operation: "documents/upload", DisputeID: *req.DisputesID,
			Detail: map[string]string{"document_id": doc.ID, "file_name": doc.FileName, "sha256": doc.SHA256}})
		return dapiOK(map[string]string{"disputes_id": *req.DisputesID, "document_id": doc.ID})
	})
}

func (s *Server) dapiRemove(r *http.Request, body []byte) answer {
	return s.dapiAction(body, false, func(req *actionRequest, d *stored) answer {
		if req.DocumentID == nil || *req.DocumentID == "" {
			return dapiErr("400", dapiParamError)
		}
		if d.defended() {
			return dapiErr("400", dapiDefended)
		}
		for i, doc := range d.docs {
			if doc.ID == *req.DocumentID {
				d.docs = append(d.docs[:i:i], d.docs[i+1:]...)
				s.recordEffect(r, Effect{Provider: ProviderDisputeAPI, Operation: "documents/remove", DisputeID: *req.DisputesID,
					Detail: map[string]string{"document_id": doc.ID}})
				return dapiOK(map[string]string{"disputes_id": *req.DisputesID, "document_id": doc.ID})
			}
		}
		return dapiErr("400", dapiDocNotFound)
	})
}

func (s *Server) dapiDefend(r *http.Request, body []byte) answer {
	return s.dapiAction(body, false, func(req *actionRequest, d *stored) answer {
		if req.Comment == nil || *req.Comment == "" {
			return dapiErr("400", dapiParamError)
		}
		if d.defended() {
			return dapiErr("400", dapiDefended)
		}
		now := s.now()
		s.updateLocked(d, func(rec *Record) {
			rec.Disputes.DisputesAppealStatus = "appealed"
			addComment(rec, now, *req.Comment)
		})
		s.recordEffect(r, Effect{Provider: ProviderDisputeAPI, Operation: "defend", DisputeID: *req.DisputesID,
			Detail: map[string]string{"comment": *req.Comment, "documents": strconv.Itoa(len(d.docs))}})
		return dapiOK(map[string]string{"disputes_id": *req.DisputesID, "status": StatusClose})
	})
}

// requiredDocuments by reason code: what an acquirer typically asks for.
var requiredDocuments = map[string][]string{
	"goods_not_received":    {"proof_of_delivery", "transaction_receipt"},
	"return":                {"refund_policy", "return_proof"},
	"incorrect_invoice":     {"invoice", "transaction_receipt"},
	"already_paid":          {"transaction_receipt", "proof_of_separate_charges"},
	"faulty-goods":          {"product_description", "customer_communication"},
	"pandemic_impact":       {"cancellation_policy", "customer_communication"},
	"unauthorized_purchase": {"avs_cvv_result", "customer_identification", "transaction_receipt"},
}

func (s *Server) dapiRequiredDocuments(_ *http.Request, body []byte) answer {
	return s.dapiAction(body, true, func(req *actionRequest, d *stored) answer {
		req2 := requiredDocuments[d.rec.Disputes.DisputesReason]
		if req2 == nil {
			req2 = []string{"transaction_receipt", "customer_communication"}
		}
		docs := make([]document, len(d.docs))
		copy(docs, d.docs)
		return dapiOK(map[string]any{"disputes_id": *req.DisputesID, "required_documents": req2, "documents": docs})
	})
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
