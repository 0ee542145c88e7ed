package sandbox

import (
	"net/http"
	"time"
)

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.disputeAPIRoutes()
	s.alipayRoutes()
	s.alipayPlusRoutes()
	s.ingenicoRoutes()
	s.controlRoutes()
	// Unknown Alipay-style APIs answer as the gateway does.
	for prefix, provider := range map[string]string{"/ams/": ProviderAlipay, "/aps/": ProviderAlipayPlus} {
		sc := s.scheme(provider)
		s.mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
			s.write(w, s.resultOnly(sc, r, "NO_INTERFACE_DEF"))
		})
	}
}

// seedProviderObjects creates a few ready-to-use objects per provider, so
// that `disputesync dev` can print working examples.
func (s *Server) seedProviderObjects() {
	now := s.now()
	for range 3 {
		s.CreateAlipayDispute(AlipayDispute{})
	}
	s.CreateAlipayDispute(AlipayDispute{DefenseDueTime: now.Add(-time.Hour)})
	for _, m := range []string{"SHOP", "SHOP", "SHOP", "APPLE", "GOOGLE"} {
		s.CreateAlipayPlusPayment(AlipayPlusPayment{Merchant: m})
	}
	for range 3 {
		s.CreateIngenicoDispute(IngenicoDispute{})
	}
}
