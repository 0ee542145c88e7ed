package disputeapi

// Helpers shared by the package's tests; the provider itself is emulated
// only by the sandbox (and httptest servers for single answers).

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/testsupport"
)

const testToken = "t0ken-SECRET-never-logged-42"

type seenRequest struct {
	Path   string
	Header http.Header
	Body   []byte
}

// logBuffer collects log output for the secret checks.
type logBuffer = testsupport.LogBuffer

func newTestClient(t *testing.T, baseURL string, mod func(*Config)) (*Client, *logBuffer) {
	log, logs := testsupport.DebugLogger()
	return testsupport.NewClient(t, Config{BaseURL: baseURL, Token: []byte(testToken), Timeout: time.Minute, Logger: log}, mod, New), logs
}

func handler(t *testing.T, mux *handlers.Mux, action string) handlers.Handler {
	return handlerstest.Handler(t, mux, Provider, action)
}

func clientHandler(t *testing.T, c *Client, action string) handlers.Handler {
	t.Helper()
	mux := handlers.NewMux()
	c.Register(mux)
	return handler(t, mux, action)
}

func command(reqID, disputeID, params string) *handlers.Command {
	cmd := &handlers.Command{DisputeRequestID: reqID, DisputeID: disputeID}
	if params != "" {
		cmd.Params = json.RawMessage(params)
	}
	return cmd
}

// kind names the outcome class an Apply error stands for.
var kind = handlerstest.Kind
