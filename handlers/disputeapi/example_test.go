package disputeapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/disputeapi"
	"github.com/disputesync/disputesync/sandbox"
)

// A client registered on a Mux, defending a dispute at the sandbox; the
// CLI's validation-only handlers reject a malformed command without I/O.
func Example() {
	sb := sandbox.New(sandbox.Config{Disputes: 5})
	srv := httptest.NewServer(sb)
	defer srv.Close()

	c, err := disputeapi.New(disputeapi.Config{BaseURL: srv.URL, Token: []byte(sandbox.TestKeys.DisputeAPIToken)})
	if err != nil {
		panic(err)
	}
	mux := handlers.NewMux()
	c.Register(mux)
	h, _ := mux.Handler("disputeapi", "submit_defense")
	cmd := &handlers.Command{
		DisputeRequestID: "ops-0002",
		DisputeID:        sb.SampleIDs().DisputeAPI[0],
		Params:           []byte(`{"comment":"Delivered on time; tracking attached."}`),
	}
	resp, err := h.Apply(context.Background(), &handlers.Call{Command: cmd, Attempt: 1})
	fmt.Println(resp.Code, resp.Message, err)

	cli := handlers.NewMux()
	disputeapi.Validators(cli)
	v, _ := cli.Handler("disputeapi", "upload_document")
	fmt.Println(v.Validate(&handlers.Command{DisputeRequestID: "ops-0003", DisputeID: "D1",
		Params: []byte(`{"file_name":"a.pdf","content_type":"application/pdf","content":"QQ=="}`)}))
	// Output:
	// 200 SUCCESS <nil>
	// params.content_type: must be one of pdf, doc, docx, xls, xlsx, bmp, jpg, jpeg, png, gif
}
