package handlers

import (
	"context"
	"reflect"
	"testing"
)

type nopHandler struct{}

func (nopHandler) Validate(*Command) error                         { return nil }
func (nopHandler) Apply(context.Context, *Call) (*Response, error) { return &Response{}, nil }

// TestNames: the table of docs/contract.md section 2, declared once.
func TestNames(t *testing.T) {
	t.Parallel()
	if got, want := Providers(), []string{ProviderAlipay, ProviderAlipayPlus, ProviderDisputeAPI, ProviderIngenico}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Providers() = %v, want %v", got, want)
	}
	if got, want := Actions(ProviderIngenico), []string{ActionUploadFile, ActionSubmitDispute, ActionCancelDispute}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Actions(ingenico) = %v, want %v", got, want)
	}
	if !Known(ProviderAlipay, ActionAcceptDispute) || Known(ProviderAlipay, ActionAbandon) || Known("paypal", ActionAbandon) {
		t.Fatal("Known disagrees with the table")
	}
}

// TestWithEvidence: a nil placement leaves the handler as it is; a
// placement makes it an EvidencePlacer that still validates and applies.
func TestWithEvidence(t *testing.T) {
	t.Parallel()
	if _, ok := WithEvidence(nopHandler{}, nil).(EvidencePlacer); ok {
		t.Fatal("a handler without a placement places evidence")
	}
	h := WithEvidence(nopHandler{}, func(p map[string]any, ref ContentRef, fileName string) { p["ref"] = ref.Name + "/" + fileName })
	placer, ok := h.(EvidencePlacer)
	if !ok {
		t.Fatal("WithEvidence did not make an EvidencePlacer")
	}
	p := map[string]any{}
	placer.PlaceEvidence(p, ContentRef{Name: "ev"}, "a.pdf")
	if p["ref"] != "ev/a.pdf" {
		t.Fatalf("params %v", p)
	}
	if _, err := h.Apply(context.Background(), &Call{}); err != nil || h.Validate(&Command{}) != nil {
		t.Fatal("the wrapped handler no longer validates or applies")
	}
	mux := NewMux()
	mux.Register(ProviderIngenico, ActionUploadFile, h)
	if got, ok := mux.Handler(ProviderIngenico, ActionUploadFile); !ok || got != h {
		t.Fatal("the registered placer is not the handler")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering an action outside the contract did not panic")
		}
	}()
	mux.Register(ProviderIngenico, ActionAbandon, h)
}
