// Package promexpr reads the PromQL expressions of the shipped Grafana
// dashboard and Prometheus rules and names the metrics they use, so tests
// can check that deploy/ asks only for metrics the binary exports.
package promexpr

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// DashboardExprs returns the expr of every target of every panel of a
// Grafana dashboard, rows' nested panels included. An empty expression is
// an error.
func DashboardExprs(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []string
	var walk func([]json.RawMessage) error
	walk = func(raw []json.RawMessage) error {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					return fmt.Errorf("%s: panel %q has an empty expression", file, p.Title)
				}
				out = append(out, tg.Expr)
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(dash.Panels)
}

// RuleExprs extracts the `expr:` values of a rules file.
func RuleExprs(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	exprs, err := ParseRuleExprs(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return exprs, nil
}

// ParseRuleExprs extracts `expr:` values without a YAML library: a plain or
// quoted scalar on the same line, or a block scalar (| or >) made of the
// following, more indented lines.
func ParseRuleExprs(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimPrefix(strings.TrimLeft(line, " "), "- ")
		if !strings.HasPrefix(trimmed, "expr:") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		val := strings.TrimSpace(strings.TrimPrefix(trimmed, "expr:"))
		if strings.HasPrefix(val, "|") || strings.HasPrefix(val, ">") {
			var block []string
			for i+1 < len(lines) {
				next := lines[i+1]
				if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
					break
				}
				block = append(block, strings.TrimSpace(next))
				i++
			}
			val = strings.TrimSpace(strings.Join(block, " "))
		} else if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') {
			val = val[1 : len(val)-1]
		}
		if val == "" {
			return nil, fmt.Errorf("empty expr at line %d", i+1)
		}
		out = append(out, val)
	}
	return out, nil
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promBraces = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGroup  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promToken  = regexp.MustCompile(`[0-9][0-9a-zA-Z_.]*|[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promWords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true,
		"without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
		"atan2": true}
)

// MetricNames returns the metric names of a PromQL expression: what is left
// after removing strings, label matchers, ranges, grouping clauses,
// keywords, numbers and function names (identifiers followed by "(").
func MetricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promBraces.ReplaceAllString(s, " ")
	s = promGroup.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promToken.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || promWords[strings.ToLower(tok)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function
		}
		names = append(names, tok)
	}
	return names
}
