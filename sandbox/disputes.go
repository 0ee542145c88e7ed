package sandbox

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"
)

// TimeLayout is how the disputeapi writes and reads times.
const TimeLayout = "2006-01-02T15:04:05-07:00"

// UTC8 is the zone the disputeapi writes its times in.
var UTC8 = time.FixedZone("UTC+8", 8*3600)

// List statuses of the list API.
const (
	StatusPending  = "pending"
	StatusClose    = "close"
	StatusNoAction = "noaction"
)

// Merchant of a disputeapi record.
type Merchant struct {
	MerchantID   string `json:"merchant_id"`
	MerchantName string `json:"merchant_name"`
}

// DisputeInfo is the "disputes" node of a disputeapi record.
type DisputeInfo struct {
	DisputesID              string `json:"disputes_id"`
	DisputesType            string `json:"disputes_type"`
	DisputesReason          string `json:"disputes_reason"`
	DisputesReference       string `json:"disputes_reference"`
	DisputesAmount          string `json:"disputes_amount"`
	DisputesCurrency        string `json:"disputes_currency"`
	DisputesTimes           string `json:"disputes_times"`
	DisputesPeriodFrom      string `json:"disputes_period_from"`
	DisputesPeriodTo        string `json:"disputes_period_to"`
	DisputesDate            string `json:"disputes_date"`
	DisputesComment         string `json:"disputes_comment"`
	DisputesCommentsHistory string `json:"disputes_comments_history"`
	DisputesReplyDeadline   string `json:"disputes_reply_deadline"`
	DisputesAppealStatus    string `json:"disputes_appeal_status"`
	DisputesStatus          string `json:"disputes_status"`
}

// Record is one disputeapi list record, field for field as the list API
// serves it (docs/contract.md section 5).
type Record struct {
	Terminal      string      `json:"terminal"`
	Currency      string      `json:"currency"`
	Amount        string      `json:"amount"`
	Methods       string      `json:"methods"`
	PaymentID     string      `json:"payment_id"`
	OrderID       string      `json:"order_id"`
	Merchant      Merchant    `json:"merchant"`
	Status        string      `json:"status"`
	Disputes      DisputeInfo `json:"disputes"`
	ResultCode    string      `json:"result_code"`
	ResultMessage string      `json:"result_message"`
}

// FormatTime writes t as the disputeapi does.
func FormatTime(t time.Time) string { return t.In(UTC8).Format(TimeLayout) }

// ParseTime reads a disputeapi time (any numeric offset).
func ParseTime(s string) (time.Time, error) {
	if len(s) != len(TimeLayout) {
		return time.Time{}, fmt.Errorf("sandbox: time %q is not in the form %s", s, TimeLayout)
	}
	return time.Parse(TimeLayout, s)
}

// document is a file uploaded to a disputeapi dispute.
type document struct {
	ID          string `json:"document_id"`
	FileName    string `json:"file_name"`
	ContentType string `json:"content_type"`
	SHA256      string `json:"sha256"`
	Size        int    `json:"-"`
}

// stored is a record with what the list needs precomputed.
type stored struct {
	rec      Record // Status holds the override, "" when derived
	seq      int64
	created  int64  // unix nanoseconds: disputes_date plus frac
	frac     int64  // sub-second part of the stored creation time (Config.CreatedPrecision)
	category string // the list type of the record under PeriodCategory
	deadline int64  // unix seconds of the reply deadline (0: none)
	periodTo int64  // unix seconds of disputes_period_to (0: none)
	periodFr int64
	times    int
	docs     []document
}

func (d *stored) closed() bool   { return d.rec.Disputes.DisputesStatus == "closed" }
func (d *stored) defended() bool { return d.rec.Disputes.DisputesAppealStatus == "appealed" }

// status derives the list status (list API) at now.
func (d *stored) status(now int64) string {
	switch {
	case d.rec.Status != "":
		return d.rec.Status
	case d.closed() || d.defended():
		return StatusClose
	case d.times > 1 || d.deadline > now:
		return StatusPending
	default:
		return StatusNoAction
	}
}

// served returns the record as the list serves it at now.
func (d *stored) served(now int64) Record {
	r := d.rec
	r.Status = d.status(now)
	return r
}

// appendJSON writes the record as the list serves it at now.
func (d *stored) appendJSON(b []byte, now int64) []byte {
	return appendRecord(b, &d.rec, d.status(now))
}

// index recomputes the parsed fields after rec changed.
func (d *stored) index() {
	d.created = unixOr(d.rec.Disputes.DisputesDate, 0)*int64(time.Second) + d.frac
	d.category = ListDispute
	if t := d.rec.Disputes.DisputesType; t == "second_chargeback" || t == "pre_arbitration" {
		d.category = ListDisputesPeriod
	}
	d.deadline = unixOr(d.rec.Disputes.DisputesReplyDeadline, 0)
	d.periodFr = unixOr(d.rec.Disputes.DisputesPeriodFrom, 0)
	d.periodTo = unixOr(d.rec.Disputes.DisputesPeriodTo, 0)
	d.times, _ = strconv.Atoi(d.rec.Disputes.DisputesTimes)
}

func unixOr(s string, def int64) int64 {
	t, err := ParseTime(s)
	if err != nil {
		return def
	}
	return t.Unix()
}

// disputeStore keeps records sorted by (creation time, seq) ascending, so a
// window is two binary searches and a page is a slice walked backwards.
type disputeStore struct {
	recs []*stored
	byID map[string]*stored
	seq  int64
	// version counts mutations, to key the disputes-period cache.
	version int64

	listMu    sync.Mutex
	listKey   listKey
	listCache []*stored
}

type listKey struct {
	typ                    string
	version, from, to, now int64
}

func newDisputeStore() *disputeStore { return &disputeStore{byID: map[string]*stored{}} }

func less(a, b *stored) bool {
	if a.created != b.created {
		return a.created < b.created
	}
	return a.seq < b.seq
}

// insert adds d (its seq and index already set).
func (st *disputeStore) insert(d *stored) {
	i := sort.Search(len(st.recs), func(i int) bool { return less(d, st.recs[i]) })
	st.recs = append(st.recs, nil)
	copy(st.recs[i+1:], st.recs[i:])
	st.recs[i] = d
	st.byID[d.rec.Disputes.DisputesID] = d
	st.version++
}

// remove drops d from the sorted slice and the id map.
func (st *disputeStore) remove(d *stored) {
	i := sort.Search(len(st.recs), func(i int) bool { return !less(st.recs[i], d) })
	if i < len(st.recs) && st.recs[i] == d {
		st.recs = append(st.recs[:i], st.recs[i+1:]...)
	}
	delete(st.byID, d.rec.Disputes.DisputesID)
	st.version++
}

// window returns the index range [lo, hi) of records whose stored creation
// time lies in [from, to] (unix seconds, inclusive): a stored time with a
// sub-second part beyond to is outside, as with a provider keeping finer
// times than the window's bounds.
func (st *disputeStore) window(from, to int64) (lo, hi int) {
	fromNs, toNs := from*int64(time.Second), to*int64(time.Second)
	lo = sort.Search(len(st.recs), func(i int) bool { return st.recs[i].created >= fromNs })
	hi = sort.Search(len(st.recs), func(i int) bool { return st.recs[i].created > toNs })
	return lo, max(lo, hi)
}

// list returns the records of list type typ created in [from, to] at now,
// ascending, under the given reading of "disputes-period". A filtered answer
// is cached for the same store version, type, window and second, so paging
// through it costs one scan, not one per page. The caller holds the store's
// read lock.
func (st *disputeStore) list(reading, typ string, from, to, now int64) []*stored {
	lo, hi := st.window(from, to)
	if reading != PeriodCategory && typ == ListDispute {
		return st.recs[lo:hi]
	}
	key := listKey{typ, st.version, from, to, now}
	st.listMu.Lock()
	defer st.listMu.Unlock()
	if st.listCache != nil && st.listKey == key {
		return st.listCache
	}
	out := make([]*stored, 0, 64)
	for _, d := range st.recs[lo:hi] {
		var in bool
		if reading == PeriodCategory {
			in = d.category == typ
		} else {
			in = !d.closed() && d.periodFr <= now && now <= d.periodTo
		}
		if in {
			out = append(out, d)
		}
	}
	st.listKey, st.listCache = key, out
	return out
}
