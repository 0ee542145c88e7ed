package sandbox

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"
)

// Default durations of a generated dispute.
const (
	replyWindow      = 10 * 24 * time.Hour // reply deadline and appeal period after creation
	populationWindow = 90 * 24 * time.Hour // generated disputes were created in the last 90 days
)

var (
	genReasons   = []string{"goods_not_received", "return", "incorrect_invoice", "already_paid", "faulty-goods", "pandemic_impact", "unauthorized_purchase"}
	genTypes     = []string{"chargeback", "chargeback", "chargeback", "retrieval_request", "second_chargeback", "pre_arbitration"}
	genCurrency  = []string{"USD", "USD", "EUR", "HKD", "SGD"}
	genMethods   = []string{"visa", "mastercard", "amex", "jcb", "unionpay"}
	genMerchants = []Merchant{{"M1", "Shop"}, {"M2", "Book Corner"}, {"M3", "Tea House"}, {"M4", "Gadget Store"}}
	genComments  = []string{"cardholder sent new information", "issuer asked for the invoice", "second presentment received", "deadline extended by the scheme"}
)

// generate creates n disputes spread over the last 90 days, oldest first so
// that ids grow with creation time. The caller need not lock (New only).
func (s *Server) generate(n int) {
	now := s.now()
	offsets := make([]int64, n)
	for i := range offsets {
		offsets[i] = s.pop.Int64N(int64(populationWindow / time.Second))
	}
	// Oldest first: larger offset first.
	slices.Sort(offsets)
	slices.Reverse(offsets)
	for _, off := range offsets {
		created := now.Add(-time.Duration(off) * time.Second)
		r := s.randomRecord(created)
		// Some history: closed or defended by the merchant, second disputes.
		switch x := s.pop.IntN(100); {
		case x < 15:
			r.Disputes.DisputesStatus = "closed"
		case x < 22:
			r.Disputes.DisputesAppealStatus = "appealed"
			r.Disputes.DisputesComment = "merchant defended"
		case x < 32:
			r.Disputes.DisputesTimes = "2"
			r.Disputes.DisputesComment = genComments[2]
			r.Disputes.DisputesCommentsHistory = FormatTime(created) + " " + genComments[2]
		}
		s.createLocked(r)
	}
}

// randomRecord returns a fresh open dispute created at created, without id.
func (s *Server) randomRecord(created time.Time) Record {
	cur := genCurrency[s.pop.IntN(len(genCurrency))]
	cents := 100 + s.pop.IntN(50000)
	amount := fmt.Sprintf("%d.%02d", cents/100, cents%100)
	return Record{
		Terminal: fmt.Sprintf("T%03d", 1+s.pop.IntN(20)),
		Currency: cur,
		Amount:   amount,
		Methods:  genMethods[s.pop.IntN(len(genMethods))],
		Merchant: genMerchants[s.pop.IntN(len(genMerchants))],
		Disputes: DisputeInfo{
			DisputesType:         genTypes[s.pop.IntN(len(genTypes))],
			DisputesReason:       genReasons[s.pop.IntN(len(genReasons))],
			DisputesAmount:       amount,
			DisputesCurrency:     cur,
			DisputesDate:         FormatTime(created),
			DisputesAppealStatus: "none",
			DisputesStatus:       "open",
		},
	}
}

// fillDefaults completes a record for storage; the caller holds s.mu.
func (s *Server) fillDefaults(r *Record) {
	n := s.nextID()
	d := &r.Disputes
	if d.DisputesID == "" {
		d.DisputesID = fmt.Sprintf("D%09d", n)
	}
	if r.PaymentID == "" {
		r.PaymentID = fmt.Sprintf("P%09d", n)
	}
	if r.OrderID == "" {
		r.OrderID = fmt.Sprintf("O%09d", n)
	}
	if d.DisputesReference == "" {
		d.DisputesReference = fmt.Sprintf("R%09d", n)
	}
	if r.Terminal == "" {
		r.Terminal = "T001"
	}
	if r.Currency == "" {
		r.Currency = "USD"
	}
	if r.Amount == "" {
		r.Amount = "25.00"
	}
	if r.Methods == "" {
		r.Methods = "visa"
	}
	if r.Merchant == (Merchant{}) {
		r.Merchant = genMerchants[0]
	}
	if d.DisputesType == "" {
		d.DisputesType = "chargeback"
	}
	if d.DisputesReason == "" {
		d.DisputesReason = "goods_not_received"
	}
	if d.DisputesAmount == "" {
		d.DisputesAmount = r.Amount
	}
	if d.DisputesCurrency == "" {
		d.DisputesCurrency = r.Currency
	}
	if d.DisputesTimes == "" {
		d.DisputesTimes = "1"
	}
	created, err := ParseTime(d.DisputesDate)
	if err != nil {
		created = s.now()
		d.DisputesDate = FormatTime(created)
	}
	if d.DisputesReplyDeadline == "" {
		d.DisputesReplyDeadline = FormatTime(created.Add(replyWindow))
	}
	if d.DisputesPeriodFrom == "" {
		d.DisputesPeriodFrom = d.DisputesDate
	}
	if d.DisputesPeriodTo == "" {
		d.DisputesPeriodTo = d.DisputesReplyDeadline
	}
	if d.DisputesAppealStatus == "" {
		d.DisputesAppealStatus = "none"
	}
	if d.DisputesStatus == "" {
		d.DisputesStatus = "open"
	}
	if r.ResultCode == "" {
		r.ResultCode = "0000"
	}
	if r.ResultMessage == "" {
		r.ResultMessage = "success"
	}
}

// createLocked stores r (replacing a record with the same id); the caller
// holds s.mu or is New.
func (s *Server) createLocked(r Record) *stored {
	s.fillDefaults(&r)
	if old, ok := s.store.byID[r.Disputes.DisputesID]; ok {
		s.store.remove(old)
	}
	s.store.seq++
	d := &stored{rec: r, seq: s.store.seq, frac: s.createdFraction(r.Disputes.DisputesID)}
	d.index()
	s.store.insert(d)
	return d
}

// createdFraction is the sub-second part of a dispute's stored creation
// time under a CreatedPrecision finer than a second: a hash of its id, so
// that it is spread over the second and stays the same across updates.
func (s *Server) createdFraction(id string) int64 {
	prec := s.cfg.CreatedPrecision
	if prec <= 0 || prec >= time.Second {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	frac := int64(h.Sum64() % uint64(time.Second))
	return frac - frac%int64(prec)
}

// CreateDispute stores a dispute, filling ids, times and defaults; it
// returns the record as the list serves it. A non-empty Status is kept as an
// override of the seed's status logic.
func (s *Server) CreateDispute(r Record) Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.createLocked(r)
	return d.served(s.now().Unix())
}

// Dispute returns a record as the list serves it now.
func (s *Server) Dispute(id string) (Record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.store.byID[id]
	if !ok {
		return Record{}, false
	}
	return d.served(s.now().Unix()), true
}

// Disputes returns every record as the list serves it now, newest first.
func (s *Server) Disputes() []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now().Unix()
	out := make([]Record, 0, len(s.store.recs))
	for i := len(s.store.recs) - 1; i >= 0; i-- {
		out = append(out, s.store.recs[i].served(now))
	}
	return out
}

// UpdateDispute changes a dispute: f sees the record as served (with its
// derived status); a Status f changes becomes an override ("" derives again).
// The id cannot change.
func (s *Server) UpdateDispute(id string, f func(*Record)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.store.byID[id]
	if !ok {
		return false
	}
	s.updateLocked(d, f)
	return true
}

// updateLocked applies f to d and re-sorts it; the caller holds s.mu.
func (s *Server) updateLocked(d *stored, f func(*Record)) {
	now := s.now().Unix()
	r := d.served(now)
	derived := r.Status
	f(&r)
	r.Disputes.DisputesID = d.rec.Disputes.DisputesID
	switch {
	case r.Status == "":
		// derive again
	case r.Status == derived && d.rec.Status == "":
		r.Status = "" // untouched: keep deriving
	}
	s.store.remove(d)
	d.rec = r
	d.index()
	s.store.insert(d)
}

// CloseDispute marks a dispute closed (disputes_status "closed").
func (s *Server) CloseDispute(id string) bool {
	return s.UpdateDispute(id, func(r *Record) { r.Disputes.DisputesStatus = "closed" })
}

// DeleteDispute removes a dispute from the list.
func (s *Server) DeleteDispute(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.store.byID[id]
	if !ok {
		return false
	}
	s.store.remove(d)
	return true
}

// Tick is one step of the living population: about 1% new disputes (at least
// one), and a few existing open ones get a comment, a second dispute with a
// new deadline, or are closed by the scheme.
func (s *Server) Tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := max(1, len(s.store.recs)/100)
	for range n {
		s.createLocked(s.randomRecord(now.Add(s.cfg.ClockSkew)))
	}
	if len(s.store.recs) == 0 {
		return
	}
	for range max(1, n/2) {
		d := s.store.recs[s.pop.IntN(len(s.store.recs))]
		if d.closed() {
			continue
		}
		switch s.pop.IntN(3) {
		case 0:
			c := genComments[s.pop.IntN(len(genComments))]
			s.updateLocked(d, func(r *Record) { addComment(r, now, c) })
		case 1:
			s.updateLocked(d, func(r *Record) {
				t, _ := strconv.Atoi(r.Disputes.DisputesTimes)
				r.Disputes.DisputesTimes = strconv.Itoa(t + 1)
				r.Disputes.DisputesReplyDeadline = FormatTime(now.Add(replyWindow))
				r.Disputes.DisputesPeriodTo = r.Disputes.DisputesReplyDeadline
				r.Disputes.DisputesAppealStatus = "none"
				addComment(r, now, genComments[2])
			})
		default:
			s.updateLocked(d, func(r *Record) { r.Disputes.DisputesStatus = "closed" })
		}
	}
}

func addComment(r *Record, now time.Time, c string) {
	r.Disputes.DisputesComment = c
	line := FormatTime(now) + " " + c
	if r.Disputes.DisputesCommentsHistory != "" {
		line = r.Disputes.DisputesCommentsHistory + "\n" + line
	}
	r.Disputes.DisputesCommentsHistory = line
}
