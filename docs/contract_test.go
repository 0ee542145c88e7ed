package docs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/disputesync/disputesync/handlers"
	"github.com/disputesync/disputesync/handlers/alipay"
	"github.com/disputesync/disputesync/handlers/alipayplus"
	"github.com/disputesync/disputesync/internal/testenv"
	"github.com/disputesync/disputesync/internal/topology"
	"github.com/disputesync/disputesync/metrics"
	"github.com/disputesync/disputesync/poller"
	"github.com/disputesync/disputesync/webhook"
	"github.com/disputesync/disputesync/worker"
)

// contract.md is checked here against the code's own tables, in both
// directions: a name the code has and the document lacks fails, and so does
// a name the document promises and the code lacks. (The command line is
// checked in cmd/disputesync/contract_test.go.)

func readContract(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("contract.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text from heading to the next heading of the same or
// a higher level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("contract.md has no heading %q", heading)
	}
	level := strings.Index(heading, " ")
	rest := doc[i+len(heading)+2:]
	if h := regexp.MustCompile(fmt.Sprintf(`(?m)^#{1,%d} `, level)).FindStringIndex(rest); h != nil {
		return rest[:h[0]]
	}
	return rest
}

// table returns the cells of the rows of the first Markdown table in text,
// header and separator rows left out, code quotes kept.
func table(text string) [][]string {
	var rows [][]string
	in, header := false, true
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "|") {
			if in {
				break
			}
			continue
		}
		in = true
		if header {
			header = false
			continue
		}
		if strings.HasPrefix(line, "|---") {
			continue
		}
		line = strings.ReplaceAll(line, `\|`, "\x00")
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|")))
		}
		rows = append(rows, cells)
	}
	return rows
}

// quoted lists the `code` spans of a cell.
func quoted(cell string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

func unquote(cell string) string { return strings.Trim(cell, "`") }

// sameSet reports the differences between what the document lists and what
// the code has.
func sameSet(t *testing.T, what string, doc, code []string) {
	t.Helper()
	for _, c := range code {
		if !slices.Contains(doc, c) {
			t.Errorf("%s %q is in the code but not in docs/contract.md", what, c)
		}
	}
	for _, d := range doc {
		if !slices.Contains(code, d) {
			t.Errorf("docs/contract.md names %s %q, which the code does not have", what, d)
		}
	}
}

// TestContractMetrics: the metrics table of section 4 is exactly what the
// metrics registry exports (names, types and labels), the consumer gauges
// included, read from a real JetStream consumer.
func TestContractMetrics(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	env.Setup(t, topology.Options{})
	m := metrics.New()
	m.WatchConsumers(env.JS, []metrics.ConsumerTarget{{Stream: env.Names.ActionsStream(), Consumer: env.Names.WorkerConsumer()}})
	// Every vector of the struct gets one series, so that Gather shows it:
	// the number of labels is found by trying.
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		get := v.Field(i).MethodByName("GetMetricWithLabelValues")
		if !v.Field(i).CanInterface() || !get.IsValid() {
			continue
		}
		for n := 0; n <= 8; n++ {
			args := make([]reflect.Value, n)
			for j := range args {
				args[j] = reflect.ValueOf("x")
			}
			if out := get.Call(args); out[1].IsNil() {
				break
			} else if n == 8 {
				t.Fatalf("metrics field %s: no label count works", v.Type().Field(i).Name)
			}
		}
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	type metric struct{ typ, labels string }
	code := map[string]metric{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "go_") || strings.HasPrefix(f.GetName(), "process_") {
			continue
		}
		var labels []string
		if len(f.GetMetric()) > 0 {
			for _, l := range f.GetMetric()[0].GetLabel() {
				labels = append(labels, l.GetName())
			}
		}
		sort.Strings(labels)
		typ := map[dto.MetricType]string{dto.MetricType_COUNTER: "counter", dto.MetricType_GAUGE: "gauge",
			dto.MetricType_HISTOGRAM: "histogram", dto.MetricType_SUMMARY: "summary"}[f.GetType()]
		code[f.GetName()] = metric{typ, strings.Join(labels, ",")}
	}
	doc := map[string]metric{}
	for _, row := range table(section(t, readContract(t), "## 4. Metrics")) {
		labels := quoted(row[2])
		sort.Strings(labels)
		doc[unquote(row[0])] = metric{row[1], strings.Join(labels, ",")}
	}
	if len(code) < 16 {
		t.Fatalf("only %d metrics gathered: %v", len(code), code)
	}
	for name, c := range code {
		d, ok := doc[name]
		switch {
		case !ok:
			t.Errorf("metric %s (%s {%s}) is exported but not in docs/contract.md section 4", name, c.typ, c.labels)
		case d != c:
			t.Errorf("metric %s: docs/contract.md says %s {%s}, the code exports %s {%s}", name, d.typ, d.labels, c.typ, c.labels)
		}
	}
	for name := range doc {
		if _, ok := code[name]; !ok {
			t.Errorf("docs/contract.md section 4 names metric %s, which the code does not export", name)
		}
	}
}

// TestContractSubjectsAndNames: the subject and stream table of section 2
// is the topology's, retention included, and every other name the topology
// derives (consumer, buckets, Redis keys) is in the document.
func TestContractSubjectsAndNames(t *testing.T) {
	t.Parallel()
	doc := readContract(t)
	sec := section(t, doc, "## 2. Subjects, streams and messages")
	n := topology.MustNew("P")
	type row struct{ subject, stream string }
	code := []row{
		{n.EventSubject("<source>", "<type>"), n.EventsStream()},
		{n.ActionSubject("<provider>", "<action>"), n.ActionsStream()},
		{n.ResultSubject("<provider>", "<action>"), n.ResultsStream()},
		{n.DLQSubject("<provider>", "<action>"), n.DLQStream()},
	}
	rows := table(sec)
	var docRows, codeRows []string
	for _, r := range rows {
		docRows = append(docRows, unquote(r[0])+" "+unquote(r[1]))
	}
	for _, r := range code {
		codeRows = append(codeRows, r.subject+" "+r.stream)
	}
	sameSet(t, "subject and stream", docRows, codeRows)

	// Every stream of the topology is in the table, with its subjects and
	// retention.
	retention := map[jetstream.RetentionPolicy]string{jetstream.LimitsPolicy: "limits", jetstream.WorkQueuePolicy: "work queue", jetstream.InterestPolicy: "interest"}
	streams := n.Streams(topology.Options{})
	if len(streams) != len(code) {
		t.Errorf("the topology has %d streams, the table %d", len(streams), len(code))
	}
	for _, s := range streams {
		i := slices.IndexFunc(rows, func(r []string) bool { return unquote(r[1]) == s.Name })
		if i < 0 {
			t.Errorf("stream %s is not in the table of section 2", s.Name)
			continue
		}
		for _, f := range s.Subjects {
			if !strings.HasPrefix(unquote(rows[i][0]), strings.TrimSuffix(f, ">")) {
				t.Errorf("stream %s holds %s, the table says %s", s.Name, f, rows[i][0])
			}
		}
		if want := retention[s.Retention]; !strings.HasPrefix(rows[i][2], want) {
			t.Errorf("stream %s: retention %q in the table, %q in the topology", s.Name, rows[i][2], want)
		}
	}

	// Every other name: each method of Names that takes nothing and
	// returns a string.
	nv := reflect.ValueOf(n)
	for i := range nv.NumMethod() {
		meth := nv.Method(i)
		if meth.Type().NumIn() != 0 || meth.Type().NumOut() != 1 || meth.Type().Out(0).Kind() != reflect.String {
			continue
		}
		name := meth.Call(nil)[0].String()
		name = strings.TrimRight(name, ">*") // P.events.> is documented as P.events.<source>.<type>
		if name != "P" && !strings.Contains(sec, "`"+name) {
			t.Errorf("Names.%s = %q is not in docs/contract.md section 2", nv.Type().Method(i).Name, name)
		}
	}
}

// TestContractHeaders: the header table of section 2 names exactly the
// headers the code sets and the header schemas describe.
func TestContractHeaders(t *testing.T) {
	t.Parallel()
	code := []string{poller.HeaderMsgID, poller.HeaderDisputeID, worker.HeaderMsgID, worker.HeaderDisputeRequestID,
		worker.HeaderDLQReason, worker.HeaderDLQError, worker.HeaderDLQSubject, worker.HeaderDLQSequence, worker.HeaderDLQDeliveries}
	files, err := filepath.Glob("schemas/headers.*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no header schemas: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s struct{ Properties map[string]any }
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for h := range s.Properties {
			code = append(code, h)
		}
	}
	slices.Sort(code)
	code = slices.Compact(code)
	var doc []string
	for _, r := range table(section(t, readContract(t), "### Headers")) {
		if h := unquote(r[0]); !slices.Contains(doc, h) {
			doc = append(doc, h)
		}
	}
	sameSet(t, "header", doc, code)
}

// TestContractActionsAndEvents: the action table is the handlers' table,
// the event types are the poller's, and every provider and webhook path the
// code exports is in the document.
func TestContractActionsAndEvents(t *testing.T) {
	t.Parallel()
	doc := readContract(t)
	var docActions, codeActions []string
	for _, r := range table(section(t, doc, "### Action commands")) {
		docActions = append(docActions, unquote(r[0])+"."+unquote(r[1]))
	}
	for _, p := range handlers.Providers() {
		for _, a := range handlers.Actions(p) {
			codeActions = append(codeActions, p+"."+a)
		}
	}
	sameSet(t, "action", docActions, codeActions)

	var docTypes []string
	for _, r := range table(section(t, doc, "### Events")) {
		docTypes = append(docTypes, unquote(r[0]))
	}
	sameSet(t, "event type", docTypes, []string{poller.TypeOpened, poller.TypeUpdated, poller.TypeClosed, poller.TypeDeadlineApproaching, poller.TypeNotified})

	var docPaths []string
	for _, r := range table(section(t, doc, "## 6. Notifications from providers")) {
		docPaths = append(docPaths, strings.TrimPrefix(unquote(r[0]), "POST "))
	}
	sameSet(t, "webhook path", docPaths, []string{webhook.PathAlipayNotifyDispute, webhook.PathAlipayPlusResponseEscalation, webhook.PathDisputeAPINotify})

	providers := section(t, doc, "## 5. Providers")
	for _, p := range []string{alipay.PathAcceptDispute, alipay.PathSupplyDefenseDocument, alipayplus.PathInitiateEscalation} {
		if !strings.Contains(providers, "`POST "+p+"`") {
			t.Errorf("provider path %s is not in docs/contract.md section 5", p)
		}
	}
}

// TestNoReferenceOutsideTheRepository: no file of the repository cites the
// contract or the provider pages kept outside it; citations point into the
// repository (docs/contract.md). The patterns are assembled so that this
// file does not match itself.
func TestNoReferenceOutsideTheRepository(t *testing.T) {
	t.Parallel()
	outside := regexp.MustCompile(strings.Join([]string{
		`shared` + `/`,                       // the folder beside the repository
		`CONTR` + `ACT`,                      // its contract file, and citations of its sections
		`\bseeds? ?0` + `[0-9]`,              // a provider page cited by its number
		`\b0[0-9]{2}_[0-9a-f]{16}\.t` + `xt`, // a provider page's file name
	}, "|"))
	checked := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// .git, the dev data folder, the AsyncAPI checker's packages.
			if path != ".." && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s:%d refers outside the repository (%q): cite docs/contract.md or the provider API by name\n\t%s",
					strings.TrimPrefix(path, "../"), i+1, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d files checked: is the walk rooted at the repository?", checked)
	}
}
