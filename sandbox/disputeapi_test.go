package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func window(from, to time.Time, typ, page, limit string) map[string]string {
	m := map[string]string{"from_created_at": FormatTime(from), "to_created_at": FormatTime(to), "type": typ}
	if page != "" {
		m["page"] = page
	}
	if limit != "" {
		m["limit"] = limit
	}
	return m
}

func TestListParamErrors(t *testing.T) {
	_, ts, _ := newTestServer(t, Config{Disputes: 20})
	from, to := fixedNow.Add(-100*24*time.Hour), fixedNow
	ok := window(from, to, ListDispute, "", "")
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range ok {
			m[a] = b
		}
		if v == "<delete>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		body any
		code string
	}{
		{"valid", ok, "200"},
		{"limit 10", with("limit", "10"), "200"},
		{"limit 50", with("limit", "50"), "200"},
		{"limit 100", with("limit", "100"), "200"},
		{"limit 20", with("limit", "20"), "400"},
		{"limit 0", with("limit", "0"), "400"},
		{"limit empty", with("limit", ""), "400"},
		{"limit as number", `{"from_created_at":"` + ok["from_created_at"] + `","to_created_at":"` + ok["to_created_at"] + `","type":"dispute","limit":10}`, "400"},
		{"page 0", with("page", "0"), "400"},
		{"page abc", with("page", "abc"), "400"},
		{"page too long", with("page", "123456"), "400"},
		{"page 99999 past the end", with("page", "99999"), "200"},
		{"missing from", with("from_created_at", "<delete>"), "400"},
		{"missing to", with("to_created_at", "<delete>"), "400"},
		{"missing type", with("type", "<delete>"), "400"},
		{"bad type", with("type", "chargebacks"), "400"},
		{"period type", with("type", ListDisputesPeriod), "200"},
		{"bad from", with("from_created_at", "2026-04-02 16:28:09"), "400"},
		{"from in Z form", with("from_created_at", "2026-04-02T16:28:09Z"), "400"},
		{"from after to", with("from_created_at", FormatTime(to.Add(time.Second))), "400"},
		{"not json", "{", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := dapiPost(t, ts, "/dispute-api/v1/list", tt.body)
			if env.Code != tt.code {
				t.Fatalf("code = %q (%s), want %q", env.Code, env.Msg, tt.code)
			}
			if tt.code == "400" && env.Msg != "PARAM_ERROR" {
				t.Fatalf("msg = %q, want PARAM_ERROR", env.Msg)
			}
		})
	}
}

func TestListAuthorization(t *testing.T) {
	_, ts, _ := newTestServer(t, Config{Disputes: 5})
	body := window(fixedNow.Add(-time.Hour), fixedNow, ListDispute, "", "")
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": TestKeys.DisputeAPIToken}} {
		status, b := postJSON(t, ts, "/dispute-api/v1/list", h, body)
		if status != http.StatusUnauthorized || string(b) != `{"code":"401","msg":"UNAUTHORIZED"}` {
			t.Fatalf("headers %v: HTTP %d %s", h, status, b)
		}
	}
	// Without a configured token nothing is required.
	keys := TestKeys
	keys.DisputeAPIToken = ""
	_, ts2, _ := newTestServer(t, Config{Disputes: 5, Keys: keys})
	if status, b := postJSON(t, ts2, "/dispute-api/v1/list", nil, body); status != http.StatusOK {
		t.Fatalf("no token configured: HTTP %d %s", status, b)
	}
}

// scan pages through a window and returns every record in order.
func scan(t *testing.T, tsURL func(body any) dapiEnvelope, from, to time.Time, typ, limit string) ([]Record, listData) {
	t.Helper()
	var all []Record
	var first listData
	for page := 1; ; page++ {
		env := tsURL(window(from, to, typ, itoa(page), limit))
		if env.Code != "200" {
			t.Fatalf("page %d: %s %s", page, env.Code, env.Msg)
		}
		var d listData
		if err := json.Unmarshal(env.Data, &d); err != nil {
			t.Fatal(err)
		}
		if page == 1 {
			first = d
		}
		if d.Page != itoa(page) {
			t.Fatalf("page = %q, want %d", d.Page, page)
		}
		if len(d.Lists) == 0 {
			return all, first
		}
		all = append(all, d.Lists...)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func jsonInt(i int) string { return strconv.Itoa(i) }

func TestListPaginationNewestFirst(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: 235})
	post := func(body any) dapiEnvelope { return dapiPost(t, ts, "/dispute-api/v1/list", body) }
	from, to := fixedNow.Add(-populationWindow-time.Hour), fixedNow
	for _, limit := range []string{"10", "50", "100"} {
		all, first := scan(t, post, from, to, ListDispute, limit)
		if len(all) != 235 || first.TotalCount != "235" {
			t.Fatalf("limit %s: got %d records, total_count %s", limit, len(all), first.TotalCount)
		}
		wantPages := map[string]string{"10": "24", "50": "5", "100": "3"}[limit]
		if first.TotalPages != wantPages {
			t.Fatalf("limit %s: total_pages %s, want %s", limit, first.TotalPages, wantPages)
		}
		seen := map[string]bool{}
		for i, r := range all {
			if seen[r.Disputes.DisputesID] {
				t.Fatalf("duplicate %s", r.Disputes.DisputesID)
			}
			seen[r.Disputes.DisputesID] = true
			if i > 0 && r.Disputes.DisputesDate > all[i-1].Disputes.DisputesDate {
				t.Fatalf("not newest first at %d: %s after %s", i, r.Disputes.DisputesDate, all[i-1].Disputes.DisputesDate)
			}
		}
		// The list serves exactly the ground truth.
		truth := s.Disputes()
		for i := range truth {
			if truth[i] != all[i] {
				t.Fatalf("record %d differs from ground truth:\n%+v\n%+v", i, all[i], truth[i])
			}
		}
	}
}

func TestListWindowInclusive(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	at := fixedNow.Add(-48 * time.Hour)
	for i := range 3 {
		s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(at.Add(time.Duration(i) * time.Second))}})
	}
	tests := []struct {
		from, to time.Time
		want     int
	}{
		{at, at, 1},
		{at, at.Add(2 * time.Second), 3},
		{at.Add(time.Second), at.Add(time.Second), 1},
		{at.Add(3 * time.Second), fixedNow, 0},
		{at.Add(-time.Hour), at.Add(-time.Second), 0},
		{at.Add(-time.Hour), at.Add(time.Second), 2},
	}
	for _, tt := range tests {
		env := dapiPost(t, ts, "/dispute-api/v1/list", window(tt.from, tt.to, ListDispute, "", ""))
		var d listData
		_ = json.Unmarshal(env.Data, &d)
		if len(d.Lists) != tt.want || d.TotalCount != jsonInt(tt.want) {
			t.Fatalf("[%s, %s]: %d records (total %s), want %d", FormatTime(tt.from), FormatTime(tt.to), len(d.Lists), d.TotalCount, tt.want)
		}
	}
	// A window in another offset means the same instants.
	env := dapiPost(t, ts, "/dispute-api/v1/list", map[string]string{
		"from_created_at": at.UTC().Format(TimeLayout), "to_created_at": at.UTC().Format(TimeLayout), "type": ListDispute})
	var d listData
	_ = json.Unmarshal(env.Data, &d)
	if len(d.Lists) != 1 {
		t.Fatalf("UTC window: %d records", len(d.Lists))
	}
}

func TestListAllScalarsAreStrings(t *testing.T) {
	_, ts, _ := newTestServer(t, Config{Disputes: 30})
	status, b := postJSON(t, ts, "/dispute-api/v1/list", bearer, window(fixedNow.Add(-populationWindow), fixedNow, ListDispute, "1", "100"))
	if status != 200 {
		t.Fatal(status)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	n := 0
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range x {
				walk(path+"[]", e)
			}
		case string:
			n++
		default:
			t.Fatalf("%s is %T, not a string", path, v)
		}
	}
	walk("", v)
	if n < 30*20 {
		t.Fatalf("only %d strings", n)
	}
}

func TestStatusLogic(t *testing.T) {
	s, _, c := newTestServer(t, Config{Disputes: -1})
	mk := func(age time.Duration, f func(*Record)) string {
		r := Record{Disputes: DisputeInfo{DisputesDate: FormatTime(fixedNow.Add(-age))}}
		if f != nil {
			f(&r)
		}
		return s.CreateDispute(r).Disputes.DisputesID
	}
	fresh := mk(time.Hour, nil)
	old := mk(20*24*time.Hour, nil)
	second := mk(20*24*time.Hour, func(r *Record) { r.Disputes.DisputesTimes = "2" })
	closed := mk(time.Hour, func(r *Record) { r.Disputes.DisputesStatus = "closed" })
	defended := mk(time.Hour, func(r *Record) { r.Disputes.DisputesAppealStatus = "appealed" })
	opaque := mk(time.Hour, func(r *Record) { r.Status = "under_review" })
	tests := []struct {
		id, want string
	}{
		{fresh, StatusPending}, {old, StatusNoAction}, {second, StatusPending},
		{closed, StatusClose}, {defended, StatusClose}, {opaque, "under_review"},
	}
	for _, tt := range tests {
		if r, _ := s.Dispute(tt.id); r.Status != tt.want {
			t.Errorf("%s: status %q, want %q", tt.id, r.Status, tt.want)
		}
	}
	// Time passes the reply deadline: pending becomes noaction.
	c.t = fixedNow.Add(11 * 24 * time.Hour)
	if r, _ := s.Dispute(fresh); r.Status != StatusNoAction {
		t.Fatalf("after the deadline: %q", r.Status)
	}
	// An explicit status overrides; "" derives again.
	s.UpdateDispute(fresh, func(r *Record) { r.Status = "weird" })
	if r, _ := s.Dispute(fresh); r.Status != "weird" {
		t.Fatalf("override: %q", r.Status)
	}
	s.UpdateDispute(fresh, func(r *Record) { r.Status = "" })
	if r, _ := s.Dispute(fresh); r.Status != StatusNoAction {
		t.Fatalf("derived again: %q", r.Status)
	}
	// An unrelated update keeps deriving.
	s.UpdateDispute(old, func(r *Record) { r.Disputes.DisputesComment = "x" })
	c.t = fixedNow
	s.UpdateDispute(old, func(r *Record) { r.Disputes.DisputesReplyDeadline = FormatTime(fixedNow.Add(time.Hour)) })
	if r, _ := s.Dispute(old); r.Status != StatusPending || r.Disputes.DisputesComment != "x" {
		t.Fatalf("after deadline moved: %+v", r)
	}
}

func TestListDisputesPeriod(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	inside := s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(fixedNow.Add(-time.Hour))}}).Disputes.DisputesID
	s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(fixedNow.Add(-20 * 24 * time.Hour))}})                                                    // period over
	s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(fixedNow.Add(-2 * time.Hour)), DisputesStatus: "closed"}})                                // closed
	s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(fixedNow.Add(-3 * time.Hour)), DisputesPeriodFrom: FormatTime(fixedNow.Add(time.Hour))}}) // not yet
	from := fixedNow.Add(-30 * 24 * time.Hour)
	for typ, want := range map[string]int{ListDispute: 4, ListDisputesPeriod: 1} {
		env := dapiPost(t, ts, "/dispute-api/v1/list", window(from, fixedNow, typ, "", ""))
		var d listData
		_ = json.Unmarshal(env.Data, &d)
		if len(d.Lists) != want {
			t.Fatalf("%s: %d records, want %d", typ, len(d.Lists), want)
		}
		if typ == ListDisputesPeriod && d.Lists[0].Disputes.DisputesID != inside {
			t.Fatalf("period list has %s", d.Lists[0].Disputes.DisputesID)
		}
	}
}

func TestDisputeAPIActions(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	mk := func(f func(*Record)) string {
		r := Record{Disputes: DisputeInfo{DisputesDate: FormatTime(fixedNow.Add(-time.Hour)), DisputesReason: "goods_not_received"}}
		if f != nil {
			f(&r)
		}
		return s.CreateDispute(r).Disputes.DisputesID
	}
	open := mk(nil)
	closed := mk(func(r *Record) { r.Disputes.DisputesStatus = "closed" })
	defended := mk(func(r *Record) { r.Disputes.DisputesAppealStatus = "appealed" })
	content := base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 evidence"))

	// Upload first to get a document id for the remove rows.
	env := dapiPost(t, ts, "/dispute-api/v1/documents/upload", map[string]string{"disputes_id": open, "file_name": "a.pdf", "content_type": "application/pdf", "content": content})
	var up struct {
		DocumentID string `json:"document_id"`
	}
	if err := json.Unmarshal(env.Data, &up); env.Code != "200" || err != nil || up.DocumentID == "" {
		t.Fatalf("upload: %+v %s", env, env.Data)
	}

	tests := []struct {
		name, path string
		body       any
		code, msg  string
	}{
		{"required documents", "required-documents", map[string]string{"disputes_id": open}, "200", "SUCCESS"},
		{"required documents of a closed dispute", "required-documents", map[string]string{"disputes_id": closed}, "200", "SUCCESS"},
		{"required documents unknown", "required-documents", map[string]string{"disputes_id": "nope"}, "400", "DISPUTE_NOT_FOUND"},
		{"upload missing file name", "documents/upload", map[string]string{"disputes_id": open, "content_type": "application/pdf", "content": content}, "400", "PARAM_ERROR"},
		{"upload not base64", "documents/upload", map[string]string{"disputes_id": open, "file_name": "a.pdf", "content_type": "application/pdf", "content": "%%%"}, "400", "PARAM_ERROR"},
		{"upload unknown dispute", "documents/upload", map[string]string{"disputes_id": "nope", "file_name": "a.pdf", "content_type": "application/pdf", "content": content}, "400", "DISPUTE_NOT_FOUND"},
		{"upload closed", "documents/upload", map[string]string{"disputes_id": closed, "file_name": "a.pdf", "content_type": "application/pdf", "content": content}, "400", "DISPUTE_ALREADY_CLOSED"},
		{"upload defended", "documents/upload", map[string]string{"disputes_id": defended, "file_name": "a.pdf", "content_type": "application/pdf", "content": content}, "400", "DISPUTE_ALREADY_DEFENDED"},
		{"remove unknown document", "documents/remove", map[string]string{"disputes_id": open, "document_id": "DOC0"}, "400", "DOCUMENT_NOT_FOUND"},
		{"remove missing document id", "documents/remove", map[string]string{"disputes_id": open}, "400", "PARAM_ERROR"},
		{"remove", "documents/remove", map[string]string{"disputes_id": open, "document_id": up.DocumentID}, "200", "SUCCESS"},
		{"remove again", "documents/remove", map[string]string{"disputes_id": open, "document_id": up.DocumentID}, "400", "DOCUMENT_NOT_FOUND"},
		{"defend missing comment", "defend", map[string]string{"disputes_id": open}, "400", "PARAM_ERROR"},
		{"defend", "defend", map[string]string{"disputes_id": open, "comment": "delivered, see POD"}, "200", "SUCCESS"},
		{"defend again", "defend", map[string]string{"disputes_id": open, "comment": "again"}, "400", "DISPUTE_ALREADY_DEFENDED"},
		{"defend closed", "defend", map[string]string{"disputes_id": closed, "comment": "x"}, "400", "DISPUTE_ALREADY_CLOSED"},
		{"abandon unknown", "abandon", map[string]string{"disputes_id": "nope"}, "400", "DISPUTE_NOT_FOUND"},
		{"abandon missing id", "abandon", map[string]string{}, "400", "PARAM_ERROR"},
		{"abandon id as number", "abandon", `{"disputes_id":5}`, "400", "PARAM_ERROR"},
		{"abandon", "abandon", map[string]string{"disputes_id": open}, "200", "SUCCESS"},
		{"abandon again", "abandon", map[string]string{"disputes_id": open}, "400", "DISPUTE_ALREADY_CLOSED"},
	}
	for _, tt := range tests {
		env := dapiPost(t, ts, "/dispute-api/v1/"+tt.path, tt.body)
		if env.Code != tt.code || env.Msg != tt.msg {
			t.Errorf("%s: %s %s, want %s %s", tt.name, env.Code, env.Msg, tt.code, tt.msg)
		}
	}
	r, _ := s.Dispute(open)
	if r.Status != StatusClose || r.Disputes.DisputesStatus != "closed" || r.Disputes.DisputesAppealStatus != "appealed" || r.Disputes.DisputesComment != "delivered, see POD" {
		t.Fatalf("after actions: %+v", r)
	}
	var ops []string
	for _, e := range s.EffectsFor(ProviderDisputeAPI, "", open) {
		ops = append(ops, e.Operation)
	}
	if want := "documents/upload documents/remove defend abandon"; strings.Join(ops, " ") != want {
		t.Fatalf("effects %q, want %q", strings.Join(ops, " "), want)
	}
	if n := len(s.Effects()); n != 4 {
		t.Fatalf("%d effects in all, want 4", n)
	}
}

func TestRequiredDocumentsAnswer(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1})
	id := s.CreateDispute(Record{Disputes: DisputeInfo{DisputesReason: "unauthorized_purchase"}}).Disputes.DisputesID
	content := base64.StdEncoding.EncodeToString([]byte("abc"))
	dapiPost(t, ts, "/dispute-api/v1/documents/upload", map[string]string{"disputes_id": id, "file_name": "r.png", "content_type": "image/png", "content": content})
	env := dapiPost(t, ts, "/dispute-api/v1/required-documents", map[string]string{"disputes_id": id})
	var d struct {
		Required  []string            `json:"required_documents"`
		Documents []map[string]string `json:"documents"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Required) != 3 || len(d.Documents) != 1 || d.Documents[0]["file_name"] != "r.png" ||
		d.Documents[0]["sha256"] != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("required documents: %s", env.Data)
	}
}

// TestListCreatedPrecision: under a sub-second precision a dispute shown at
// second S is outside the window [.., S] unless its fraction is zero, and
// inside [S, S+1]; whole-second windows that overlap by a second find every
// dispute, abutting ones lose those with a fraction.
func TestListCreatedPrecision(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1, CreatedPrecision: time.Millisecond})
	at := fixedNow.Add(-48 * time.Hour)
	var withFraction []string
	for i := range 50 {
		r := s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(at.Add(time.Duration(i%5) * time.Second))}})
		if s.createdFraction(r.Disputes.DisputesID) > 0 {
			withFraction = append(withFraction, r.Disputes.DisputesID)
		}
	}
	if len(withFraction) < 40 {
		t.Fatalf("only %d of 50 disputes have a sub-second creation time", len(withFraction))
	}
	count := func(from, to time.Time, typ string) int {
		env := dapiPost(t, ts, "/dispute-api/v1/list", window(from, to, typ, "1", "100"))
		var d listData
		if err := json.Unmarshal(env.Data, &d); err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(d.TotalCount)
		return n
	}
	tests := []struct {
		name     string
		from, to time.Time
		want     int
	}{
		// Only a zero fraction is inside the bound.
		{"exact second", at, at, 10 - countIn(s, withFraction, at)},
		// All of the first second, the next one's zero fractions.
		{"second and the next", at, at.Add(time.Second), 20 - countIn(s, withFraction, at.Add(time.Second))},
	}
	for _, tt := range tests {
		if got := count(tt.from, tt.to, ListDispute); got != tt.want {
			t.Errorf("%s: %d records, want %d", tt.name, got, tt.want)
		}
	}
	whole := count(at, at.Add(5*time.Second), ListDispute)
	abut := count(at, at.Add(time.Second), ListDispute) + count(at.Add(2*time.Second), at.Add(5*time.Second), ListDispute)
	if whole != 50 || abut >= 50 {
		t.Errorf("whole window %d (want 50), abutting windows %d (want fewer: the one-second gap)", whole, abut)
	}
	// Records still show whole seconds.
	r, _ := s.Dispute(withFraction[0])
	if _, err := ParseTime(r.Disputes.DisputesDate); err != nil {
		t.Errorf("disputes_date %q: %v", r.Disputes.DisputesDate, err)
	}
}

// countIn counts the disputes of ids whose disputes_date is at.
func countIn(s *Server, ids []string, at time.Time) int {
	n := 0
	for _, id := range ids {
		if r, _ := s.Dispute(id); r.Disputes.DisputesDate == FormatTime(at) {
			n++
		}
	}
	return n
}

// TestListPeriodCategory: under PeriodCategory every record is listed under
// exactly one type, the appeal stages under "disputes-period" whatever their
// status or period.
func TestListPeriodCategory(t *testing.T) {
	s, ts, _ := newTestServer(t, Config{Disputes: -1, PeriodReading: PeriodCategory})
	at := fixedNow.Add(-time.Hour)
	first := s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(at)}}).Disputes.DisputesID
	second := s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(at), DisputesType: "second_chargeback"}}).Disputes.DisputesID
	old := s.CreateDispute(Record{Disputes: DisputeInfo{DisputesDate: FormatTime(fixedNow.Add(-40 * 24 * time.Hour)), DisputesType: "pre_arbitration", DisputesStatus: "closed"}}).Disputes.DisputesID
	from := fixedNow.Add(-60 * 24 * time.Hour)
	ids := func(typ string) []string {
		env := dapiPost(t, ts, "/dispute-api/v1/list", window(from, fixedNow, typ, "1", "100"))
		var d listData
		if err := json.Unmarshal(env.Data, &d); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range d.Lists {
			out = append(out, r.Disputes.DisputesID)
		}
		return out
	}
	if got := ids(ListDispute); len(got) != 1 || got[0] != first {
		t.Errorf("dispute list %v, want [%s]", got, first)
	}
	if got := ids(ListDisputesPeriod); len(got) != 2 || got[0] != second || got[1] != old {
		t.Errorf("disputes-period list %v, want [%s %s] (closed and out of period included)", got, second, old)
	}
	// A change of disputes_type moves the record to the other list.
	s.UpdateDispute(first, func(r *Record) { r.Disputes.DisputesType = "pre_arbitration" })
	if got := ids(ListDispute); len(got) != 0 {
		t.Errorf("dispute list after the type change %v, want none", got)
	}
}
