package ingenico_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/ingenico"
	"github.com/disputesync/disputesync/sandbox"
)

// A client registered on a Mux, submitting a dispute at the sandbox.
func Example() {
	sb := sandbox.New(sandbox.Config{Disputes: -1})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	dispute := sb.CreateIngenicoDispute(sandbox.IngenicoDispute{})

	c, err := ingenico.New(ingenico.Config{
		BaseURL:      srv.URL,
		MerchantID:   sandbox.TestKeys.IngenicoMerchantID,
		APIKeyID:     sandbox.TestKeys.IngenicoAPIKeyID,
		SecretAPIKey: []byte(sandbox.TestKeys.IngenicoSecretAPIKey),
	})
	if err != nil {
		panic(err)
	}
	mux := handlers.NewMux()
	c.Register(mux)
	h, _ := mux.Handler("ingenico", "submit_dispute")
	cmd := &handlers.Command{DisputeRequestID: "ops-0001", DisputeID: dispute.ID}
	resp, err := h.Apply(context.Background(), &handlers.Call{Provider: "ingenico", Action: "submit_dispute", Command: cmd, Attempt: 1})
	fmt.Println(resp.Code, err)
	// Output: CREATED <nil>
}
