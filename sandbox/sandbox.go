package sandbox

import (
	"context"
	"crypto/rsa"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/disputesync/disputesync/internal/alipaysig"
)

// Provider names, as used in Effects, Requests and SetFaults.
const (
	ProviderDisputeAPI = "disputeapi"
	ProviderAlipay     = "alipay"
	ProviderAlipayPlus = "alipayplus"
	ProviderIngenico   = "ingenico"
)

// Config of a Server; zero values are the documented defaults.
type Config struct {
	Disputes int           // generated disputeapi population size (default 200; negative: none)
	Seed     int64         // generator seed (default 1)
	Tick     time.Duration // living-population clock; 0 = static (tests call Tick themselves)
	Keys     Keys          // default TestKeys
	Now      func() time.Time
	Logger   *slog.Logger
	// SpecialMerchants are the Alipay+ merchants whose escalations need
	// merchantDisputeId, customerIdAssignedByMerchant and
	// merchantNotRefundRecord (default APPLE, GOOGLE; compared upper-cased).
	SpecialMerchants []string
	// ClockSkew shifts the creation time of disputes made by the living
	// population (reliability test P7).
	ClockSkew time.Duration
	// CreatedPrecision is how finely the list API keeps creation times.
	// Zero or a second and above: whole seconds, as disputes_date shows
	// them. Finer (e.g. time.Millisecond): each dispute's stored creation
	// time has a sub-second part below its disputes_date (derived from its
	// id, so it is stable), and the list compares it with the whole-second
	// window bounds, as a provider storing finer times would: a dispute
	// whose disputes_date is 12:00:00 may then be outside [.., 12:00:00].
	CreatedPrecision time.Duration
	// PeriodReading is how the list reads type "disputes-period":
	// PeriodView (default) or PeriodCategory (see the package doc).
	PeriodReading string
}

// Readings of the list type "disputes-period" (Config.PeriodReading).
const (
	// PeriodView: the disputes still inside their appeal period and not
	// closed; they are also listed under "dispute".
	PeriodView = "view"
	// PeriodCategory: a category; each record is listed under exactly one
	// type: "disputes-period" for the appeal stages (disputes_type
	// second_chargeback or pre_arbitration), whatever their status or
	// period, "dispute" for the others.
	PeriodCategory = "category"
)

// Server is the provider sandbox; it implements http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	keys    Keys
	now     func() time.Time
	mux     *http.ServeMux
	special map[string]bool

	// Parsed keys; nil when the configured PEM is missing or unusable.
	alipayPub      *rsa.PublicKey
	alipayPriv     *rsa.PrivateKey
	alipayPlusPub  *rsa.PublicKey
	alipayPlusPriv *rsa.PrivateKey

	mu       sync.RWMutex // guards everything below
	store    *disputeStore
	pop      *rand.Rand // population dice; guarded by mu (write lock)
	effects  []Effect
	requests map[string]int
	faults   map[string]Faults
	buckets  map[string]*bucket

	alipayDisputes map[string]*AlipayDispute
	apPayments     map[string]*AlipayPlusPayment
	apEscalations  map[string]*AlipayPlusEscalation // by disputeId
	apByRequest    map[string]*apStored             // by disputeRequestId
	ingDisputes    map[string]*IngenicoDispute
	ingIdem        map[string]*ingStored
	seq            int64

	rngMu sync.Mutex
	rng   *rand.Rand // fault dice; guarded by rngMu
}

// New returns a Server with a generated population.
func New(cfg Config) *Server {
	if cfg.Disputes == 0 {
		cfg.Disputes = 200
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Keys == (Keys{}) {
		cfg.Keys = TestKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PeriodReading == "" {
		cfg.PeriodReading = PeriodView
	}
	if cfg.SpecialMerchants == nil {
		cfg.SpecialMerchants = []string{"APPLE", "GOOGLE"}
	}
	s := &Server{
		cfg:            cfg,
		log:            cfg.Logger,
		keys:           cfg.Keys,
		now:            cfg.Now,
		special:        map[string]bool{},
		pop:            rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		rng:            rand.New(rand.NewPCG(uint64(cfg.Seed), 0xfa17)),
		requests:       map[string]int{},
		faults:         map[string]Faults{},
		buckets:        map[string]*bucket{},
		alipayDisputes: map[string]*AlipayDispute{},
		apPayments:     map[string]*AlipayPlusPayment{},
		apEscalations:  map[string]*AlipayPlusEscalation{},
		apByRequest:    map[string]*apStored{},
		ingDisputes:    map[string]*IngenicoDispute{},
		ingIdem:        map[string]*ingStored{},
	}
	for _, m := range cfg.SpecialMerchants {
		s.special[strings.ToUpper(m)] = true
	}
	s.alipayPub = s.parsePub("alipay merchant public", cfg.Keys.AlipayMerchantPublicPEM)
	s.alipayPriv = s.parsePriv("alipay provider private", cfg.Keys.AlipayProviderPrivatePEM)
	s.alipayPlusPub = s.parsePub("alipayplus merchant public", cfg.Keys.AlipayPlusMerchantPublicPEM)
	s.alipayPlusPriv = s.parsePriv("alipayplus provider private", cfg.Keys.AlipayPlusProviderPrivatePEM)

	s.store = newDisputeStore()
	s.generate(max(cfg.Disputes, 0))
	s.seedProviderObjects()
	s.routes()
	return s
}

func (s *Server) parsePub(what, pemText string) *rsa.PublicKey {
	if pemText == "" {
		return nil
	}
	k, err := alipaysig.ParsePublicKey([]byte(pemText))
	if err != nil {
		// The error never holds key material; requests get KEY_NOT_FOUND.
		s.log.Error("sandbox: unusable key", "key", what, "err", err)
		return nil
	}
	return k
}

func (s *Server) parsePriv(what, pemText string) *rsa.PrivateKey {
	if pemText == "" {
		return nil
	}
	k, err := alipaysig.ParsePrivateKey([]byte(pemText))
	if err != nil {
		s.log.Error("sandbox: unusable key", "key", what, "err", err)
		return nil
	}
	return k
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Run runs the living-population clock until ctx ends. With Tick 0 it only
// waits for ctx.
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Tick <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Tick()
		}
	}
}

// Effect is one state change an action endpoint applied.
type Effect struct {
	Provider         string            `json:"provider"`
	Operation        string            `json:"operation"`
	DisputeID        string            `json:"disputeId"`
	DisputeRequestID string            `json:"disputeRequestId,omitempty"`
	IdempotencyKey   string            `json:"idempotencyKey,omitempty"`
	At               time.Time         `json:"at"`
	Detail           map[string]string `json:"detail,omitempty"`
}

// recordEffect appends an effect; the caller holds s.mu.
func (s *Server) recordEffect(r *http.Request, e Effect) {
	e.At = s.now()
	if e.DisputeRequestID == "" && r != nil {
		e.DisputeRequestID = r.Header.Get("Dispute-Request-Id")
	}
	if e.IdempotencyKey == "" && r != nil {
		e.IdempotencyKey = r.Header.Get("Idempotency-Key")
	}
	s.effects = append(s.effects, e)
	s.log.Debug("sandbox: effect", "provider", e.Provider, "operation", e.Operation, "dispute", e.DisputeID)
}

// Effects returns every effect applied so far, oldest first.
func (s *Server) Effects() []Effect {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Effect, len(s.effects))
	copy(out, s.effects)
	return out
}

// EffectsFor filters Effects; empty arguments match anything.
func (s *Server) EffectsFor(provider, disputeRequestID, disputeID string) []Effect {
	var out []Effect
	for _, e := range s.Effects() {
		if (provider == "" || e.Provider == provider) &&
			(disputeRequestID == "" || e.DisputeRequestID == disputeRequestID) &&
			(disputeID == "" || e.DisputeID == disputeID) {
			out = append(out, e)
		}
	}
	return out
}

// Requests returns the number of calls per "provider.endpoint".
func (s *Server) Requests() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// nextID returns a fresh sequence number; the caller holds s.mu.
func (s *Server) nextID() int64 {
	s.seq++
	return s.seq
}

// SampleIDs are ready-to-use ids per provider, for printed examples.
type SampleIDs struct {
	DisputeAPI         []string `json:"disputeapi"`
	Alipay             []string `json:"alipay"`
	AlipayPlusPayments []string `json:"alipayplusPayments"`
	AlipayPlusSpecial  []string `json:"alipayplusSpecialPayments"`
	Ingenico           []string `json:"ingenico"`
	IngenicoMerchantID string   `json:"ingenicoMerchantId"`
}

// SampleIDs returns a few open, actionable ids per provider.
func (s *Server) SampleIDs() SampleIDs {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	out := SampleIDs{IngenicoMerchantID: s.keys.IngenicoMerchantID}
	for i := len(s.store.recs) - 1; i >= 0 && len(out.DisputeAPI) < 3; i-- {
		d := s.store.recs[i]
		if !d.closed() && !d.defended() {
			out.DisputeAPI = append(out.DisputeAPI, d.rec.Disputes.DisputesID)
		}
	}
	for _, id := range sortedKeys(s.alipayDisputes) {
		d := s.alipayDisputes[id]
		if d.Status == AlipayStatusWaitDefense && now.Before(d.DefenseDueTime) && len(out.Alipay) < 3 {
			out.Alipay = append(out.Alipay, id)
		}
	}
	for _, id := range sortedKeys(s.apPayments) {
		p := s.apPayments[id]
		if s.special[strings.ToUpper(p.Merchant)] {
			if len(out.AlipayPlusSpecial) < 3 {
				out.AlipayPlusSpecial = append(out.AlipayPlusSpecial, id)
			}
		} else if len(out.AlipayPlusPayments) < 3 {
			out.AlipayPlusPayments = append(out.AlipayPlusPayments, id)
		}
	}
	for _, id := range sortedKeys(s.ingDisputes) {
		if s.ingDisputes[id].Status == IngenicoDraft && len(out.Ingenico) < 3 {
			out.Ingenico = append(out.Ingenico, id)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
