package alipayfake

import (
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/handlerstest"
	"github.com/disputesync/disputesync/handlers/internal/alipayclient"
)

// The parts of a handlerstest.Provider that Alipay and Alipay+ share.

// Code is a documented result code and its outcome (handlerstest.Kind);
// Recover applies it as a retry after an unknown outcome.
type Code struct {
	Code, Status, Kind string
	Recover            bool
}

// Answers returns one handlerstest.Answer per code and action: a signed
// result with the code, message "msg <code>" and the extra JSON members
// fields (",\"disputeId\":...").
func Answers(actions []string, codes []Code, fields string) []handlerstest.Answer {
	var out []handlerstest.Answer
	for _, tc := range codes {
		for _, action := range actions {
			a := handlerstest.Answer{
				Name:   fmt.Sprintf("%s/%s/recover=%v", action, tc.Code, tc.Recover),
				Action: action, Status: http.StatusOK, Kind: tc.Kind, Code: tc.Code, Recover: tc.Recover,
				Body: fmt.Sprintf(`{"result":{"resultCode":%q,"resultStatus":%q,"resultMessage":"msg %s"}%s}`, tc.Code, tc.Status, tc.Code, fields),
			}
			switch {
			case tc.Code == "REPEAT_REQUEST" && tc.Kind == "succeeded":
				a.Message = alipayclient.MessageAlreadyApplied
			case tc.Kind == "permanent":
				a.Message = "msg " + tc.Code
			case tc.Kind == "retry_after":
				a.Delay = alipayclient.ThrottleDelay
			}
			out = append(out, a)
		}
	}
	return out
}

// Responder writes an Answer signed with keys, for handlerstest.Provider.Respond.
func Responder(keys Keys) func(http.ResponseWriter, *http.Request, handlerstest.Answer) {
	return func(w http.ResponseWriter, r *http.Request, a handlerstest.Answer) {
		WriteSigned(w, r, keys, a.Status, []byte(a.Body))
	}
}

// Registrar is a provider client.
type Registrar interface{ Register(*handlers.Mux) }

// Mux registers the handlers of the client newClient makes with the
// merchant key it is given: keys' own, or with wrongKey other's, which the
// provider refuses. The client logs nowhere.
func Mux(t *testing.T, keys, other Keys, wrongKey bool, newClient func(key *rsa.PrivateKey, log *slog.Logger) (Registrar, error)) *handlers.Mux {
	key := keys.MerchantKey
	if wrongKey {
		key = other.MerchantKey
	}
	c, err := newClient(key, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	mux := handlers.NewMux()
	c.Register(mux)
	return mux
}

// CheckCovered fails the test for each code of the provider's table that
// has no row in codes.
func CheckCovered(t *testing.T, codes []Code, table alipayclient.Table) {
	t.Helper()
	covered := map[string]bool{}
	for _, tc := range codes {
		covered[tc.Code] = true
	}
	for code := range table {
		if !covered[code] {
			t.Errorf("code %s of the table has no test row", code)
		}
	}
}
