package disputeapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/params"
	"github.com/disputesync/disputesync/handlers/internal/providerhttp"
)

// Field limits disputesync checks before sending. Seed 002 documents none
// for these fields; they are generous bounds, documented in the package doc.
const (
	MaxIDChars         = 64   // disputeRequestId (docs/contract.md section 2) and disputeId
	MaxDocumentIDChars = 128  // params.document_id
	MaxFileNameChars   = 128  // params.file_name (the sandbox's limit too)
	MaxCommentChars    = 2000 // params.comment
)

// ContentTypes are the accepted values of params.content_type: the
// attachment types the project's provider documents list.
var ContentTypes = []string{"pdf", "doc", "docx", "xls", "xlsx", "bmp", "jpg", "jpeg", "png", "gif"}

// Provider answers that prove an earlier attempt landed (msg of a "400").
const (
	MsgDisputeAlreadyClosed   = "DISPUTE_ALREADY_CLOSED"
	MsgDisputeAlreadyDefended = "DISPUTE_ALREADY_DEFENDED"
	MsgDocumentNotFound       = "DOCUMENT_NOT_FOUND"
)

// action is the Handler of one contract action.
type action struct {
	name  string
	path  string
	proof string // the "400" msg that proves an earlier attempt landed; "" if none
	c     *Client
	// place puts an --attach evidence reference in params; nil for an
	// action without an attachment.
	place func(map[string]any, handlers.ContentRef, string)
}

func newActions(c *Client) []*action {
	return []*action{
		{name: handlers.ActionAbandon, path: pathAbandon, proof: MsgDisputeAlreadyClosed, c: c},
		{name: handlers.ActionUploadDocument, path: pathUpload, place: placeUpload, c: c},
		{name: handlers.ActionRemoveDocument, path: pathRemove, proof: MsgDocumentNotFound, c: c},
		{name: handlers.ActionSubmitDefense, path: pathDefend, proof: MsgDisputeAlreadyDefended, c: c},
	}
}

// placeUpload is the upload's evidence placement: the reference stands in
// for content; file_name and content_type (the file's extension) are filled
// in unless params gives them.
func placeUpload(p map[string]any, ref handlers.ContentRef, fileName string) {
	p["contentRef"] = ref
	params.SetDefault(p, "file_name", fileName)
	params.SetDefault(p, "content_type", params.Ext(fileName))
}

// body is every request body; empty fields are left out.
type body struct {
	DisputesID  string `json:"disputes_id"`
	FileName    string `json:"file_name,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Content     string `json:"content,omitempty"`
	DocumentID  string `json:"document_id,omitempty"`
	Comment     string `json:"comment,omitempty"`
}

// request is a validated command.
type request struct {
	body       body
	attachment *params.Attachment // upload_document only
}

// Validate checks the command against the field rules; no I/O.
func (a *action) Validate(cmd *handlers.Command) error {
	_, err := a.parse(cmd)
	return err
}

func (a *action) parse(cmd *handlers.Command) (*request, error) {
	if cmd == nil {
		return nil, handlers.Invalid("", "command is missing")
	}
	if err := checkID("disputeRequestId", cmd.DisputeRequestID, MaxIDChars); err != nil {
		return nil, err
	}
	if err := checkID("disputeId", cmd.DisputeID, MaxIDChars); err != nil {
		return nil, err
	}
	req := &request{body: body{DisputesID: cmd.DisputeID}}
	var err error
	switch a.name {
	case handlers.ActionAbandon:
		_, err = params.Decode(cmd.Params, "params", "")
	case handlers.ActionUploadDocument:
		err = parseUpload(cmd.Params, req)
	case handlers.ActionRemoveDocument:
		var p *params.Object
		if p, err = params.Decode(cmd.Params, "params", "", "document_id"); err != nil {
			return nil, err
		}
		if req.body.DocumentID, err = p.String("document_id", true, 0); err == nil {
			err = checkID(p.Field("document_id"), req.body.DocumentID, MaxDocumentIDChars)
		}
	case handlers.ActionSubmitDefense:
		var p *params.Object
		if p, err = params.Decode(cmd.Params, "params", "", "comment"); err != nil {
			return nil, err
		}
		if req.body.Comment, err = p.String("comment", true, 0); err == nil {
			err = checkComment(p.Field("comment"), req.body.Comment)
		}
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

func parseUpload(raw json.RawMessage, req *request) error {
	p, err := params.Decode(raw, "params", "", "file_name", "content_type", "content", "contentRef")
	if err != nil {
		return err
	}
	b := &req.body
	if b.FileName, err = p.String("file_name", true, 0); err != nil {
		return err
	}
	if err := params.CheckText(p.Field("file_name"), b.FileName, MaxFileNameChars); err != nil {
		return err
	}
	if strings.ContainsAny(b.FileName, `/\`) || b.FileName == "." || b.FileName == ".." {
		return handlers.Invalid(p.Field("file_name"), "must be a file name, not a path")
	}
	if b.ContentType, err = p.String("content_type", true, 0); err != nil {
		return err
	}
	if !slices.Contains(ContentTypes, b.ContentType) {
		return handlers.Invalid(p.Field("content_type"), "must be one of %s", strings.Join(ContentTypes, ", "))
	}
	req.attachment, err = params.ParseAttachment(p)
	return err
}

func checkID(field, id string, maxChars int) error {
	if id == "" {
		return handlers.Invalid(field, "is required")
	}
	return params.CheckText(field, id, maxChars)
}

// checkComment allows line breaks and tabs in free text, no other control
// characters.
func checkComment(field, s string) error {
	if n := utf8.RuneCountInString(s); n > MaxCommentChars {
		return handlers.Invalid(field, "must be at most %d characters (has %d)", MaxCommentChars, n)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0 {
		return handlers.Invalid(field, "must not contain control characters other than line breaks and tabs")
	}
	if strings.TrimSpace(s) == "" {
		return handlers.Invalid(field, "must not be blank")
	}
	return nil
}

// Apply calls the provider. With call.Recover, the provider's state proves
// or rules out an earlier attempt first (package doc).
func (a *action) Apply(ctx context.Context, call *handlers.Call) (*handlers.Response, error) {
	if a.c == nil {
		return nil, ErrValidateOnly
	}
	cmd := call.Command
	req, err := a.parse(cmd)
	if err != nil {
		return nil, err
	}
	var content []byte
	if req.attachment != nil {
		if content, req.body.Content, err = req.attachment.Load(ctx, a.c.cfg.Evidence); err != nil {
			return nil, fmt.Errorf("disputeapi %s: %w", a.name, err)
		}
		if call.Recover {
			resp, err := a.findUploaded(ctx, cmd, req.body.FileName, content)
			if resp != nil || err != nil {
				return resp, err
			}
		}
	}
	out := a.c.post(ctx, a.name, a.path, cmd.DisputeRequestID, req.body)
	if call.Recover && a.proof != "" && out.refusedWith(a.proof) {
		a.c.log.InfoContext(ctx, "earlier attempt proven by the provider's answer", "provider", Provider,
			"action", a.name, "disputeRequestId", cmd.DisputeRequestID, "msg", out.env.Msg)
		// Succeeded, with the provider's own words for why.
		return &handlers.Response{
			Code:    out.env.Msg,
			Message: "applied by an earlier attempt: the provider answered " + out.env.Code + " " + out.env.Msg,
			Body:    out.body,
		}, nil
	}
	if out.err != nil {
		if errors.Is(out.err, providerhttp.ErrTransport) {
			return nil, out.err // already says "disputeapi <action>: no answer from provider"
		}
		return nil, fmt.Errorf("disputeapi %s: %w", a.name, out.err)
	}
	if a.name == handlers.ActionUploadDocument {
		var data struct {
			DocumentID string `json:"document_id"`
		}
		if json.Unmarshal(out.env.Data, &data) != nil || data.DocumentID == "" {
			// Probably uploaded, but unproven: a retry recovers through
			// required-documents rather than uploading blind.
			return nil, fmt.Errorf("disputeapi %s: %w", a.name, &handlers.ProviderError{
				Code: out.env.Code, Message: "success answer without data.document_id", HTTPStatus: out.status, Body: out.body})
		}
	}
	return out.response(), nil
}

// uploadedDocument is one entry of required-documents' data.documents.
type uploadedDocument struct {
	DocumentID  string `json:"document_id"`
	FileName    string `json:"file_name"`
	ContentType string `json:"content_type"`
	SHA256      string `json:"sha256"`
}

// findUploaded asks required-documents whether an earlier attempt already
// uploaded this file (same name and SHA-256). It returns a response when it
// did, an error when the provider's state cannot be read (never upload
// blind after an unknown outcome), and neither when the upload is still to
// be made.
func (a *action) findUploaded(ctx context.Context, cmd *handlers.Command, fileName string, content []byte) (*handlers.Response, error) {
	out := a.c.post(ctx, "required_documents", pathRequiredDocuments, cmd.DisputeRequestID, body{DisputesID: cmd.DisputeID})
	if out.err != nil {
		return nil, fmt.Errorf("disputeapi %s: reading required-documents before a retry: %w", a.name, out.err)
	}
	var data struct {
		Documents []uploadedDocument `json:"documents"`
	}
	if err := json.Unmarshal(out.env.Data, &data); err != nil {
		return nil, fmt.Errorf("disputeapi %s: %w", a.name, &handlers.ProviderError{
			Code: out.env.Code, Message: "unreadable required-documents answer", HTTPStatus: out.status, Body: out.body})
	}
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])
	for _, d := range data.Documents {
		if d.DocumentID != "" && d.FileName == fileName && strings.EqualFold(d.SHA256, want) {
			a.c.log.InfoContext(ctx, "earlier upload found by required-documents", "provider", Provider,
				"action", a.name, "disputeRequestId", cmd.DisputeRequestID, "documentId", d.DocumentID)
			b, _ := json.Marshal(map[string]any{
				"code": CodeSuccess, "msg": "SUCCESS",
				"data": map[string]string{"document_id": d.DocumentID, "found_by": "required-documents"},
			})
			return &handlers.Response{Code: CodeSuccess, Message: "already uploaded by an earlier attempt", Body: b}, nil
		}
	}
	return nil, nil
}
