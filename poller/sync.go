package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/disputesync/disputesync/metrics"
)

// checkpoint is the poller's durable progress, "<source>.checkpoint" in the
// poller bucket. It is written after each completed window, only once every
// event of the window has its PubAck.
type checkpoint struct {
	// Watermark is the frozen end of the last completed new-disputes scan;
	// the next one starts Overlap before it.
	Watermark time.Time `json:"watermark"`
	// A full rescan in progress covers [FullFrom, FullTo] from the newest
	// chunk down; FullCursor is the end of the next chunk (zero: none in
	// progress). FullTo is frozen when the rescan starts.
	FullFrom   time.Time `json:"fullFrom"`
	FullTo     time.Time `json:"fullTo"`
	FullCursor time.Time `json:"fullCursor"`
	// FullDoneAt is when the last full rescan finished.
	FullDoneAt time.Time `json:"fullDoneAt"`
	// Chunk is the full rescan's current window length, adapted so a chunk
	// holds a moderate number of pages.
	Chunk time.Duration `json:"chunk"`
	// Reading is how the provider reads the list type "disputes-period":
	// "" until it has shown otherwise (a view of the open disputes in their
	// appeal period, also listed under "dispute"), readingCategory once the
	// period list returned a record no view would hold (closed, or outside
	// its appeal period): each record is then listed under one type only.
	Reading string `json:"reading,omitempty"`
}

// readingCategory: see checkpoint.Reading.
const readingCategory = "category"

// indexEntry is all the poller keeps in memory per tracked dispute: enough to
// find its creation window and to export the open-dispute gauges.
type indexEntry struct {
	created  int64 // unix seconds
	deadline int64 // unix seconds; 0 = none
	pending  bool
	dormant  bool   // counted, not looked up (see tracking)
	period   bool   // last seen under "disputes-period" (its list under the category reading)
	seen     uint64 // the cycle that last saw it
}

// CycleStats describes one cycle.
type CycleStats struct {
	Pages   int            // list calls that answered
	Records int            // records observed
	Events  map[string]int // by type
	Scans   []ScanStats
	// FullRescanPending: a full rescan is in progress and ran out of its
	// page budget in this cycle.
	FullRescanPending bool
	// FullRescanDone: a full rescan finished in this cycle.
	FullRescanDone bool
	Tracked        int // disputes in the in-memory index after the cycle
	Duration       time.Duration
}

// ScanStats describes one scan (one kind of windows) of a cycle.
type ScanStats struct {
	Kind     string // "new", "open", "lookup", "full"
	ListType string
	Windows  int
	Pages    int
	Records  int
	Rescans  int // windows rescanned because total_count changed
	Events   map[string]int
	Duration time.Duration
}

const (
	maxWindowRescans = 3           // attempts per window when the list changes under it
	minChunk         = time.Minute // smallest full-rescan chunk
	startChunk       = 7 * 24 * time.Hour
	chunkMaxPages    = 40               // a chunk with more pages is halved (costs one page)
	chunkMinPages    = 8                // a chunk with fewer pages doubles the next one
	lookupMergeGap   = 10 * time.Minute // lookups closer than this share a window
	// precision is the list's time resolution: its window bounds are whole
	// seconds, inclusive, but the provider may keep creation times finer
	// than that, so a record shown at second S can be outside [.., S].
	// Adjacent windows therefore share their boundary second instead of
	// abutting, and a record shown at S is looked for in [S, S+precision].
	precision = time.Second
)

// errWindowChanged: total_count kept changing under every rescan.
var errWindowChanged = errors.New("poller: window kept changing while it was paged")

// Cycle runs one poll cycle (see the package doc for the strategy). It is
// what Run calls while it holds the lease; tests call it directly.
func (p *Poller) Cycle(ctx context.Context) (CycleStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	st, err := p.cycle(ctx, start)
	st.Duration = time.Since(start)
	return st, err
}

func (p *Poller) cycle(ctx context.Context, start time.Time) (CycleStats, error) {
	st := CycleStats{Events: map[string]int{}}
	if err := p.loadState(ctx); err != nil {
		return st, err
	}
	cycleID := uint64(start.UnixNano())
	now := p.cfg.Now()
	to := now.Truncate(time.Second)
	oldest := to.Add(-p.cfg.Lookback)
	cp := p.cp
	add := func(s ScanStats) {
		st.Scans = append(st.Scans, s)
		st.Pages += s.Pages
		st.Records += s.Records
		for k, v := range s.Events {
			st.Events[k] += v
		}
		p.logScan(ctx, s)
	}

	// 1. New disputes: from the watermark (less the overlap) to now. The
	// first cycle ever has no watermark: it starts a full rescan over the
	// lookback instead, which is the initial sync.
	if cp.Watermark.IsZero() {
		cp.Watermark = to
		cp.FullFrom, cp.FullTo, cp.FullCursor = oldest, to, to
		if err := p.saveCheckpoint(ctx); err != nil {
			return st, err
		}
	} else {
		from := laterOf(cp.Watermark.Add(-p.cfg.Overlap), oldest)
		for _, lt := range p.listTypes() {
			s := ScanStats{Kind: "new", ListType: lt}
			err := p.scanWindow(ctx, &s, lt, from, to, cycleID, true)
			add(s)
			if err != nil {
				return st, err
			}
		}
		cp.Watermark = to
		if err := p.saveCheckpoint(ctx); err != nil {
			return st, err
		}
	}

	// 2. Disputes not yet final. Under the view reading the disputes-period
	// list holds those in their appeal period; every tracked dispute it did
	// not return (closed, period over, deleted) is looked up in its own
	// creation window. Under the category reading that list holds every
	// appeal-stage record, closed ones included, so it is not paged whole:
	// every live dispute is looked up instead, in its own list.
	if cp.Reading != readingCategory {
		s := ScanStats{Kind: "open", ListType: ListPeriod}
		err := p.scanWindow(ctx, &s, ListPeriod, oldest, to, cycleID, false)
		add(s)
		if err != nil {
			return st, err
		}
	}
	if err := p.lookupMissing(ctx, cycleID, oldest, add); err != nil {
		return st, err
	}

	// 3. The full rescan over the lookback, on its slower schedule, within
	// a page budget per cycle; it resumes from FullCursor.
	if cp.FullCursor.IsZero() && now.Sub(cp.FullTo) >= p.cfg.FullRescanInterval {
		cp.FullFrom, cp.FullTo, cp.FullCursor = oldest, to, to
		if err := p.saveCheckpoint(ctx); err != nil {
			return st, err
		}
	}
	if !cp.FullCursor.IsZero() {
		done, err := p.fullRescan(ctx, cycleID, add)
		if err != nil {
			return st, err
		}
		st.FullRescanDone, st.FullRescanPending = done, !done
	}

	p.exportOpen(now)
	st.Tracked = len(p.index)
	p.cfg.Metrics.PollLastSuccess.WithLabelValues(p.cfg.Source).Set(float64(p.cfg.Now().Unix()))
	return st, nil
}

// fullRescan scans chunks from FullCursor down to FullFrom until done or the
// page budget is spent.
func (p *Poller) fullRescan(ctx context.Context, cycleID uint64, add func(ScanStats)) (bool, error) {
	cp := p.cp
	s := ScanStats{Kind: "full", ListType: ListDispute}
	start := time.Now()
	defer func() {
		s.Duration = time.Since(start)
		add(s)
	}()
	if cp.Chunk <= 0 {
		cp.Chunk = startChunk
	}
	for s.Pages < p.cfg.FullRescanPagesPerCycle {
		hi := cp.FullCursor
		lo := laterOf(hi.Add(-cp.Chunk), cp.FullFrom)
		// Probe the first page: a chunk far too large is halved before it is
		// paged, so a chunk stays small enough to finish between changes.
		pg, err := p.client.list(ctx, ListDispute, lo, hi, 1)
		if err != nil {
			return false, err
		}
		s.Pages++
		if pg.TotalPages > chunkMaxPages && cp.Chunk > minChunk {
			cp.Chunk = max(minChunk, cp.Chunk/2)
			continue
		}
		if err := p.scanPages(ctx, &s, ListDispute, lo, hi, cycleID, true, pg); err != nil {
			return false, err
		}
		if cp.Reading == readingCategory {
			// The appeal-stage records are listed under their own type only.
			if err := p.scanWindow(ctx, &s, ListPeriod, lo, hi, cycleID, true); err != nil {
				return false, err
			}
		}
		if pg.TotalPages < chunkMinPages {
			cp.Chunk = min(cp.Chunk*2, p.cfg.Lookback)
		}
		if !lo.After(cp.FullFrom) {
			cp.FullCursor, cp.FullDoneAt = time.Time{}, p.cfg.Now()
			return true, p.saveCheckpoint(ctx)
		}
		cp.FullCursor = lo // the next chunk shares lo: see precision
		if err := p.saveCheckpoint(ctx); err != nil {
			return false, err
		}
	}
	return false, nil
}

// listTypes are the lists that hold new disputes: "dispute" alone under the
// view reading, both types under the category reading.
func (p *Poller) listTypes() []string {
	if p.cp.Reading == readingCategory {
		return []string{ListDispute, ListPeriod}
	}
	return []string{ListDispute}
}

// listOf is the list a tracked dispute is looked up in: its own type under
// the category reading, "dispute" (which holds every dispute) otherwise.
func (p *Poller) listOf(e indexEntry) string {
	if e.period && p.cp.Reading == readingCategory {
		return ListPeriod
	}
	return ListDispute
}

func otherList(listType string) string {
	if listType == ListPeriod {
		return ListDispute
	}
	return ListPeriod
}

// lookupMissing looks up every live tracked dispute this cycle has not seen,
// in windows around its creation time, in its own list; one still unseen is
// looked up once in the other list (a record may change its type), and
// leaves the index only when neither list holds it.
func (p *Poller) lookupMissing(ctx context.Context, cycleID uint64, oldest time.Time, add func(ScanStats)) error {
	missing := func(other bool) map[string][]int64 {
		byList := map[string][]int64{}
		for _, e := range p.index {
			if e.seen != cycleID && !e.dormant {
				lt := p.listOf(e)
				if other {
					lt = otherList(lt)
				}
				byList[lt] = append(byList[lt], e.created)
			}
		}
		return byList
	}
	for _, other := range []bool{false, true} {
		for lt, times := range missing(other) {
			s := ScanStats{Kind: "lookup", ListType: lt}
			err := p.lookupTimes(ctx, &s, lt, times, oldest, cycleID)
			add(s)
			if err != nil {
				return err
			}
		}
	}
	// A tracked dispute still unseen after its own window was paged in both
	// lists is gone from the provider's list (deleted, or outside the
	// lookback): stop tracking it; its snapshot keeps the last published
	// state.
	for id, e := range p.index {
		if e.seen != cycleID && !e.dormant {
			p.logger.LogAttrs(ctx, slog.LevelWarn, "tracked dispute no longer listed", slog.String("dispute_id", id))
			delete(p.index, id)
		}
	}
	return nil
}

// lookupCostMin is the fewest lookup windows worth a probe of their whole
// span: below it the probe would cost as much as it may save.
const lookupCostMin = 3

// lookupTimes pages the creation windows of the given creation times in
// one list. Times closer than lookupMergeGap share a window. Then by window
// cost: when the windows outnumber the pages of the window spanning them
// all (one probe page gives total_pages), the span is paged instead; else
// each half of the windows is weighed the same way once, and what remains
// is paged window by window.
func (p *Poller) lookupTimes(ctx context.Context, s *ScanStats, listType string, times []int64, oldest time.Time, cycleID uint64) error {
	slices.Sort(times)
	type window struct{ lo, hi time.Time }
	var ws []window
	for i := 0; i < len(times); {
		j := i
		for j+1 < len(times) && times[j+1]-times[j] <= int64(lookupMergeGap/time.Second) {
			j++
		}
		// A creation time shown as S may be stored as S plus a fraction:
		// the window reaches to the next second (see precision).
		lo, hi := laterOf(time.Unix(times[i], 0), oldest), time.Unix(times[j], 0).Add(precision)
		if hi.Before(lo) {
			lo = hi
		}
		ws = append(ws, window{lo, hi})
		i = j + 1
	}
	var weigh func(ws []window, depth int) error
	weigh = func(ws []window, depth int) error {
		if len(ws) >= lookupCostMin {
			lo, hi := ws[0].lo, ws[len(ws)-1].hi
			pg, err := p.client.list(ctx, listType, lo, hi, 1)
			if err != nil {
				return err
			}
			s.Pages++
			if pg.TotalPages < len(ws) {
				return p.scanPages(ctx, s, listType, lo, hi, cycleID, false, pg)
			}
			if depth == 0 {
				half := len(ws) / 2
				if err := weigh(ws[:half], 1); err != nil {
					return err
				}
				return weigh(ws[half:], 1)
			}
		}
		for _, w := range ws {
			if err := p.scanWindow(ctx, s, listType, w.lo, w.hi, cycleID, false); err != nil {
				return err
			}
		}
		return nil
	}
	return weigh(ws, 0)
}

// scanWindow pages one window [from, to] (to frozen by the caller). If
// total_count changes between pages, records have entered or left the
// window and pages may have shifted: the window is scanned again, split in
// two halves (newer first), each checked the same way. Splitting converges:
// the changes concentrate near "now" (new disputes stamped slightly in the
// past), and a window small enough to fit on one page cannot change between
// its pages. A one-second window that still changes is paged again up to
// maxWindowRescans times; after that a strict scan fails (its checkpoint does
// not advance) and a non-strict one keeps what it read, because the open scan
// and the lookups are repeated every cycle anyway.
func (p *Poller) scanWindow(ctx context.Context, s *ScanStats, listType string, from, to time.Time, cycleID uint64, strict bool) error {
	return p.scanPages(ctx, s, listType, from, to, cycleID, strict, nil)
}

// scanPages is scanWindow, optionally with page 1 already fetched.
func (p *Poller) scanPages(ctx context.Context, s *ScanStats, listType string, from, to time.Time, cycleID uint64, strict bool, first *page) error {
	start := time.Now()
	defer func() { s.Duration += time.Since(start) }()
	if s.Events == nil {
		s.Events = map[string]int{}
	}
	return p.scanSplit(ctx, s, listType, from, to, cycleID, strict, first)
}

func (p *Poller) scanSplit(ctx context.Context, s *ScanStats, listType string, from, to time.Time, cycleID uint64, strict bool, first *page) error {
	s.Windows++
	for attempt := 1; ; attempt++ {
		changed, err := p.pageThrough(ctx, s, listType, from, to, cycleID, first)
		first = nil
		if err != nil || !changed {
			return err
		}
		s.Rescans++
		if span := to.Sub(from); span >= 2*precision {
			// The halves share mid (see precision).
			mid := from.Add(span / 2).Truncate(precision)
			if err := p.scanSplit(ctx, s, listType, mid, to, cycleID, strict, nil); err != nil {
				return err
			}
			return p.scanSplit(ctx, s, listType, from, mid, cycleID, strict, nil)
		}
		if attempt >= maxWindowRescans {
			if strict {
				return fmt.Errorf("%w: %s [%s, %s]", errWindowChanged, listType, formatProviderTime(from), formatProviderTime(to))
			}
			return nil
		}
	}
}

// pageThrough reads every page of one window once; changed reports that
// total_count moved between pages.
func (p *Poller) pageThrough(ctx context.Context, s *ScanStats, listType string, from, to time.Time, cycleID uint64, first *page) (changed bool, err error) {
	// The next page is fetched while this one goes through the detector, so
	// the list's round trip and the publishes overlap; a fetch no longer
	// wanted (an error, a changed window) is cancelled on return.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		pg  *page
		err error
	}
	fetch := func(pageNo int) <-chan fetched {
		ch := make(chan fetched, 1)
		go func() {
			pg, err := p.client.list(ctx, listType, from, to, pageNo)
			ch <- fetched{pg, err}
		}()
		return ch
	}
	pg := first
	if pg == nil {
		if pg, err = p.client.list(ctx, listType, from, to, 1); err != nil {
			return false, err
		}
		s.Pages++
	}
	total := pg.TotalCount
	for pageNo := 1; ; pageNo++ {
		// Stop at the last page, or on an empty one (a page past the end
		// answers an empty list), whichever comes first.
		last := len(pg.Records) == 0 || pageNo >= pg.TotalPages
		var next <-chan fetched
		if !last {
			next = fetch(pageNo + 1)
		}
		if err := p.observePage(ctx, s, listType, pg, cycleID); err != nil {
			return false, err
		}
		if last {
			return false, nil
		}
		f := <-next
		if f.err != nil {
			return false, f.err
		}
		s.Pages++
		if pg = f.pg; pg.TotalCount != total {
			return true, nil
		}
	}
}

// observeParallelism is how many records of a page go through the
// detector at once. Each record is a different dispute (one page never holds
// a dispute twice), so their order does not matter, and the snapshot reads
// and PubAcks are round trips worth overlapping.
const observeParallelism = 16

// observePage runs a page's records through the detector and updates the
// index; the page is done only when every record is.
func (p *Poller) observePage(ctx context.Context, s *ScanStats, listType string, pg *page, cycleID uint64) error {
	type result struct {
		events []Event
		err    error
	}
	res := make([]result, len(pg.Records))
	sem := make(chan struct{}, observeParallelism)
	var wg sync.WaitGroup
	for i := range pg.Records {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			res[i].events, res[i].err = p.detector.ObserveAt(ctx, p.cfg.Source, listType, pg.Records[i], pg.Raw[i], pg.AsOf, p.fence)
		})
	}
	wg.Wait()
	now := p.cfg.Now()
	var errs []error
	for i, r := range res {
		s.Records++
		for _, ev := range r.events {
			s.Events[ev.Type]++
		}
		if r.err != nil {
			errs = append(errs, fmt.Errorf("dispute %s: %w", pg.Records[i].DisputeID, r.err))
			continue
		}
		p.track(pg.Records[i], listType, now, cycleID)
		if listType == ListPeriod && p.cp.Reading != readingCategory && notInView(pg.Records[i], pg.AsOf) {
			p.cp.Reading = readingCategory
			p.logger.LogAttrs(ctx, slog.LevelInfo, "the list type disputes-period is a category here: scanning both types",
				slog.String("dispute_id", pg.Records[i].DisputeID))
		}
	}
	return errors.Join(errs...)
}

// fence is the lease check before each publish and checkpoint write.
// Cycle called directly (tests, tools) outside Run holds no lease and is not
// fenced.
func (p *Poller) fence() error {
	if !p.leading.Load() {
		return nil
	}
	return p.lease.fence()
}

// tracking says what the index keeps of a dispute: nothing when it is
// closed or neither pending nor in its appeal period; a live entry (looked
// up each cycle if the period list misses it) when it is in its appeal
// period, or pending with its deadline ahead (its warnings are still to
// come); a dormant entry when it is pending past its deadline outside its
// period: it is counted in disputes_open ("overdue") but only the full
// rescan revisits it, since nothing but the provider can change it now.
func tracking(rec Record, now time.Time) (keep, live bool) {
	if rec.Closed() {
		return false, false
	}
	if rec.InPeriod(now) {
		return true, true
	}
	if !rec.Pending() {
		return false, false
	}
	dl, ok := rec.Deadline()
	return true, ok && dl.After(now)
}

// notInView reports a record of the disputes-period list that no view of
// the open disputes in their appeal period would hold: closed, or outside
// its period by more than a minute around the page's time. It shows the
// provider reads the type as a category.
func notInView(rec Record, asOf time.Time) bool {
	return rec.Closed() || !rec.InPeriod(asOf.Add(-time.Minute)) && !rec.InPeriod(asOf) && !rec.InPeriod(asOf.Add(time.Minute))
}

func (p *Poller) track(rec Record, listType string, now time.Time, cycleID uint64) {
	keep, live := tracking(rec, now)
	if !keep {
		delete(p.index, rec.DisputeID)
		return
	}
	e := indexEntry{created: rec.Created().Unix(), pending: rec.Pending(), dormant: !live, period: listType == ListPeriod, seen: cycleID}
	if dl, ok := rec.Deadline(); ok {
		e.deadline = dl.Unix()
	}
	p.index[rec.DisputeID] = e
}

// exportOpen sets disputes_open and the next reply deadline from the index.
func (p *Poller) exportOpen(now time.Time) {
	counts := map[string]int{metrics.DeadlineOverdue: 0, metrics.Deadline24h: 0, metrics.Deadline72h: 0, metrics.Deadline7d: 0, metrics.DeadlineLater: 0}
	var next int64
	for _, e := range p.index {
		if !e.pending {
			continue
		}
		if e.deadline == 0 {
			counts[metrics.DeadlineLater]++
			continue
		}
		counts[metrics.DeadlineBucket(time.Unix(e.deadline, 0), now)]++
		if next == 0 || e.deadline < next {
			next = e.deadline
		}
	}
	for b, n := range counts {
		p.cfg.Metrics.DisputesOpen.WithLabelValues(p.cfg.Source, b).Set(float64(n))
	}
	if next > 0 {
		p.cfg.Metrics.NextDeadline.WithLabelValues(p.cfg.Source).Set(float64(next))
	} else {
		p.cfg.Metrics.NextDeadline.DeleteLabelValues(p.cfg.Source)
	}
}

func (p *Poller) logScan(ctx context.Context, s ScanStats) {
	attrs := []slog.Attr{
		slog.String("scan", s.Kind), slog.String("list_type", s.ListType), slog.Int("windows", s.Windows),
		slog.Int("pages", s.Pages), slog.Int("records", s.Records), slog.Int("rescans", s.Rescans),
		slog.Duration("duration", s.Duration),
	}
	var ev []any
	for _, t := range []string{TypeOpened, TypeUpdated, TypeClosed, TypeDeadlineApproaching} {
		if n := s.Events[t]; n > 0 {
			ev = append(ev, slog.Int(t, n))
		}
	}
	attrs = append(attrs, slog.Group("events", ev...))
	p.logger.LogAttrs(ctx, slog.LevelInfo, "scan", attrs...)
}

// loadState reads the checkpoint and rebuilds the index of tracked disputes
// from the snapshot bucket, once per process (or after a lost lease).
func (p *Poller) loadState(ctx context.Context) error {
	if p.cp == nil {
		e, err := p.ckpt.Get(ctx, p.checkpointKey())
		cp := &checkpoint{}
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read checkpoint: %w", err)
		default:
			if err := json.Unmarshal(e.Value(), cp); err != nil {
				return fmt.Errorf("decode checkpoint: %w", err)
			}
		}
		p.cp = cp
	}
	if p.indexLoaded {
		return nil
	}
	p.index = map[string]indexEntry{}
	w, err := p.detector.kv.Watch(ctx, p.cfg.Source+".>", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read snapshots: %w", err)
	}
	defer w.Stop()
	now := p.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("read snapshots: watcher closed")
			}
			if e == nil { // all current values delivered
				p.indexLoaded = true
				return nil
			}
			var s snapshot
			if err := json.Unmarshal(e.Value(), &s); err != nil {
				continue
			}
			p.track(s.Record, s.ListType, now, 0)
		}
	}
}

// checkpointKey is the checkpoint's key in the poller bucket.
func (p *Poller) checkpointKey() string { return p.cfg.Source + ".checkpoint" }

func (p *Poller) saveCheckpoint(ctx context.Context) error {
	if err := p.fence(); err != nil {
		return fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	b, err := json.Marshal(p.cp)
	if err != nil {
		return err
	}
	if _, err := p.ckpt.Put(ctx, p.checkpointKey(), b); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
