package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The command-line part of docs/contract.md (section 1) is checked against
// the code's own tables here: the flag table is generated from the
// subcommands' flag definitions, and the subcommand and exit-status tables
// must list exactly what the code has.

var updateContract = flag.Bool("update-contract", false, "rewrite the generated parts of docs/contract.md")

const contractPath = "../../docs/contract.md"

func readContract(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(contractPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// flagTable renders every flag of every subcommand as a Markdown table: one
// row per flag, or per variant where subcommands give one flag a different
// default or meaning.
func flagTable() string {
	type variant struct {
		opt  *option
		cmds []string
	}
	var rows []*variant
	for _, sc := range subcommands() {
		o := newOptions(sc.name)
		sc.flags(o, &config{})
		for _, opt := range o.opts {
			i := slices.IndexFunc(rows, func(v *variant) bool {
				return v.opt.name == opt.name && v.opt.def == opt.def && v.opt.usage == opt.usage && v.opt.meta == opt.meta
			})
			if i < 0 {
				rows = append(rows, &variant{opt: opt})
				i = len(rows) - 1
			}
			rows[i].cmds = append(rows[i].cmds, sc.name)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].opt.name < rows[j].opt.name })
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString("| flag | environment variable | default | subcommands | meaning |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		name := "`--" + r.opt.name
		if r.opt.meta != "" {
			name += " " + r.opt.meta
		}
		name += "`"
		def := "none"
		if r.opt.def != "" {
			shown := r.opt.def
			if r.opt.secret {
				shown = redactSecret(shown)
			}
			def = "`" + shown + "`"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", name, envName(r.opt.name), def, strings.Join(r.cmds, ", "), cell(r.opt.usage))
	}
	return b.String()
}

// generated returns the text between the BEGIN and END markers of a
// generated part, and the document with that text replaced by content.
func generated(t *testing.T, doc, name, content string) (current, updated string) {
	t.Helper()
	begin := regexp.MustCompile(`(?m)^<!-- BEGIN GENERATED ` + name + `:[^\n]*-->\n`).FindStringIndex(doc)
	endMarker := "<!-- END GENERATED " + name + " -->"
	end := strings.Index(doc, endMarker)
	if begin == nil || end < begin[1] {
		t.Fatalf("docs/contract.md has no generated part %q (markers <!-- BEGIN GENERATED %s: ... --> and %s)", name, name, endMarker)
	}
	return doc[begin[1]:end], doc[:begin[1]] + content + doc[end:]
}

// TestContractFlags: every flag of every subcommand is in docs/contract.md,
// with its environment variable and default, and the document names no flag
// the code lacks.
func TestContractFlags(t *testing.T) {
	t.Parallel()
	doc := readContract(t)
	want := flagTable()
	current, updated := generated(t, doc, "flags", want)
	if current == want {
		return
	}
	if *updateContract {
		if err := os.WriteFile(contractPath, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the flag table of docs/contract.md")
		return
	}
	t.Errorf("the flag table of docs/contract.md is not the code's; run\n  go test ./cmd/disputesync -run TestContractFlags -update-contract\ndocument:\n%s\ncode:\n%s", current, want)
}

// tableRows returns the first cell of every row of the Markdown table that
// follows heading (the first table after it).
func tableRows(t *testing.T, doc, heading string) []string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/contract.md has no heading %q", heading)
	}
	var rows []string
	inTable := false
	for _, line := range strings.Split(doc[i+len(heading)+2:], "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		first := strings.TrimSpace(cells[0])
		if strings.HasPrefix(first, "---") || first == "subcommand" || first == "status" {
			continue
		}
		rows = append(rows, first)
	}
	return rows
}

// TestContractSubcommands: the subcommand table lists exactly the code's
// subcommands.
func TestContractSubcommands(t *testing.T) {
	t.Parallel()
	rows := tableRows(t, readContract(t), "## 1. Command line")
	var want []string
	for _, sc := range subcommands() {
		want = append(want, sc.name)
	}
	var got []string
	for _, r := range rows {
		m := regexp.MustCompile("^`disputesync ([a-z]+)").FindStringSubmatch(r)
		if m == nil {
			t.Errorf("subcommand row %q does not start with `disputesync NAME", r)
			continue
		}
		got = append(got, m[1])
	}
	if !slices.Equal(got, want) {
		t.Errorf("docs/contract.md section 1 lists subcommands %v; the code has %v", got, want)
	}
}

// TestContractExitStatuses: the exit-status table lists exactly the
// statuses the code returns, each with its outcome.
func TestContractExitStatuses(t *testing.T) {
	t.Parallel()
	doc := readContract(t)
	rows := tableRows(t, doc, "### Exit statuses")
	want := map[int]string{exitOK: "succeeded", exitError: "error", exitUsage: "usage",
		exitFailed: "failed", exitRejected: "rejected", exitTimeout: "--wait"}
	seen := map[int]bool{}
	for _, r := range rows {
		var n int
		if _, err := fmt.Sscan(r, &n); err != nil {
			t.Errorf("exit-status row %q: %v", r, err)
			continue
		}
		seen[n] = true
		word, ok := want[n]
		if !ok {
			t.Errorf("docs/contract.md names exit status %d, which the code does not have", n)
			continue
		}
		line := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(r) + ` \|.*$`).FindString(doc)
		if !strings.Contains(line, word) {
			t.Errorf("exit status %d: %q does not say %q", n, line, word)
		}
	}
	for n := range want {
		if !seen[n] {
			t.Errorf("docs/contract.md does not list exit status %d", n)
		}
	}
}
