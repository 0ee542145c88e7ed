package ingenico

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"strings"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/internal/params"
)

// Path operations of the Dispute REST service.
const (
	opSubmit = "submit"
	opCancel = "cancel"
	opUpload = "files"
)

// Field limits disputesync checks before sending. Seed 004 documents none
// for these; they are generous bounds that keep ids fit for a URL path and
// a header.
const (
	MaxIDChars       = 64  // disputeRequestId (docs/contract.md section 2) and disputeId
	MaxFileNameChars = 255 // params.fileName
	maxFileTypeChars = 127 // params.fileType (RFC 6838 names are at most 127 characters per part)
)

// action is the Handler of one contract action.
type action struct {
	name string
	op   string
	c    *Client // nil for the validation-only handlers
	// place puts an --attach evidence reference in params; nil for an
	// action without an attachment.
	place func(map[string]any, handlers.ContentRef, string)
}

func newActions(c *Client) []*action {
	return []*action{
		{name: handlers.ActionUploadFile, op: opUpload, place: placeUpload, c: c},
		{name: handlers.ActionSubmitDispute, op: opSubmit, c: c},
		{name: handlers.ActionCancelDispute, op: opCancel, c: c},
	}
}

// placeUpload is the upload's evidence placement: the reference stands in
// for content; fileName and fileType (the MIME type of the extension) are
// filled in unless params gives them.
func placeUpload(p map[string]any, ref handlers.ContentRef, fileName string) {
	p["contentRef"] = ref
	params.SetDefault(p, "fileName", fileName)
	params.SetDefault(p, "fileType", mimeType(params.Ext(fileName)))
}

// mimeType is the MIME type of the file extensions disputes carry.
func mimeType(ext string) string {
	switch ext {
	case "pdf":
		return "application/pdf"
	case "jpg", "jpeg":
		return "image/jpeg"
	case "png":
		return "image/png"
	case "gif":
		return "image/gif"
	}
	return "application/octet-stream"
}

// upload is the body of a file upload.
type upload struct {
	FileName string `json:"fileName"`
	FileType string `json:"fileType"`
	Content  string `json:"content"`
}

// request is a validated command.
type request struct {
	file       *upload            // upload_file only; Content is empty when att is a reference
	attachment *params.Attachment // upload_file only
}

// Validate checks the command against the documented field rules; no I/O.
func (a *action) Validate(cmd *handlers.Command) error {
	_, err := a.parse(cmd)
	return err
}

func (a *action) parse(cmd *handlers.Command) (*request, error) {
	if cmd == nil {
		return nil, handlers.Invalid("", "command is missing")
	}
	if err := checkID("disputeRequestId", cmd.DisputeRequestID); err != nil {
		return nil, err
	}
	if err := checkID("disputeId", cmd.DisputeID); err != nil {
		return nil, err
	}
	if a.op != opUpload {
		if _, err := params.Decode(cmd.Params, "params", ""); err != nil {
			return nil, err
		}
		return &request{}, nil
	}
	p, err := params.Decode(cmd.Params, "params", "", "fileName", "fileType", "content", "contentRef")
	if err != nil {
		return nil, err
	}
	f := &upload{}
	if f.FileName, err = p.String("fileName", true, 0); err != nil {
		return nil, err
	}
	if err := params.CheckText(p.Field("fileName"), f.FileName, MaxFileNameChars); err != nil {
		return nil, err
	}
	if strings.ContainsAny(f.FileName, `/\`) || f.FileName == "." || f.FileName == ".." {
		return nil, handlers.Invalid(p.Field("fileName"), "must be a file name, not a path")
	}
	if f.FileType, err = p.String("fileType", true, 0); err != nil {
		return nil, err
	}
	if err := checkFileType(p.Field("fileType"), f.FileType); err != nil {
		return nil, err
	}
	att, err := params.ParseAttachment(p)
	if err != nil {
		return nil, err
	}
	return &request{file: f, attachment: att}, nil
}

// checkID applies the rules of ids that travel in a URL path or a header.
func checkID(field, id string) error {
	if id == "" {
		return handlers.Invalid(field, "is required")
	}
	if err := params.CheckText(field, id, MaxIDChars); err != nil {
		return err
	}
	if id == "." || id == ".." {
		// Escaping leaves dots alone, and a server would resolve them as a path step.
		return handlers.Invalid(field, "must not be %q", id)
	}
	return nil
}

// checkFileType accepts a bare MIME type "type/subtype".
func checkFileType(field, t string) error {
	mt, mtParams, err := mime.ParseMediaType(t)
	if err != nil || len(mtParams) != 0 || !strings.EqualFold(mt, t) || !strings.Contains(mt, "/") || len(t) > 2*maxFileTypeChars+1 {
		return handlers.Invalid(field, "must be a MIME type such as application/pdf")
	}
	return nil
}

// Apply sends the command to Ingenico. Call.Recover needs no extra step:
// the same X-GCS-Idempotence-Key makes Ingenico answer a repeat with the
// first outcome instead of applying it twice.
func (a *action) Apply(ctx context.Context, call *handlers.Call) (*handlers.Response, error) {
	if a.c == nil {
		return nil, ErrValidateOnly
	}
	req, err := a.parse(call.Command)
	if err != nil {
		return nil, err
	}
	var body []byte
	if req.file != nil {
		if req.file.Content, err = req.attachment.Base64(ctx, a.c.cfg.Evidence); err != nil {
			return nil, fmt.Errorf("ingenico %s: %w", a.name, err)
		}
		if body, err = json.Marshal(req.file); err != nil {
			return nil, handlers.Permanent(fmt.Errorf("ingenico %s: encoding body: %w", a.name, err))
		}
	}
	return a.c.post(ctx, a.name, call.Command, a.op, body)
}
