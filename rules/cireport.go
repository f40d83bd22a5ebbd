package rules

import (
	"cmp"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
)

// CICase is one checked item for CI output: a rule in lint, an inline test
// in test. Failure is empty when it passed. Warnings do not fail it (an
// exception that expires soon, an imported rule without a technique); they
// are written as JUnit system-out, SARIF results of level warning and
// GitHub ::warning annotations.
type CICase struct {
	Name      string // the rule id, or "rule id / test name"
	File      string
	Line, Col int
	RuleID    string
	Failure   string
	Warnings  []*Problem
}

// LintCases turns a lint report into one case per rule and one per problem
// that names no loaded rule (a file that does not parse).
func LintCases(rep *LintReport) []CICase {
	byRule := map[string][]*Problem{}
	var orphans []*Problem
	for _, p := range rep.Problems {
		if p.RuleID == "" {
			orphans = append(orphans, p)
			continue
		}
		byRule[p.RuleID] = append(byRule[p.RuleID], p)
	}
	var out []CICase
	for id, file := range rep.files {
		if _, bad := byRule[id]; !bad {
			out = append(out, CICase{Name: id, RuleID: id, File: file})
		}
	}
	for id, ps := range byRule {
		for _, p := range ps {
			out = append(out, CICase{Name: id, RuleID: id, File: p.File, Line: p.Line, Col: p.Col, Failure: p.Msg})
		}
	}
	for _, p := range orphans {
		out = append(out, CICase{Name: p.File, File: p.File, Line: p.Line, Col: p.Col, Failure: p.Msg})
	}
	sortCases(out)
	// A warning goes with the first case of its rule; a warning about
	// something that is no rule (an exception) is a passing case of its own.
	for _, w := range rep.Warnings {
		i := slices.IndexFunc(out, func(c CICase) bool { return w.RuleID != "" && c.RuleID == w.RuleID })
		if i < 0 {
			name := cmp.Or(w.RuleID, w.File)
			out = append(out, CICase{Name: name, RuleID: w.RuleID, File: w.File, Line: w.Line, Col: w.Col})
			i = len(out) - 1
		}
		out[i].Warnings = append(out[i].Warnings, w)
	}
	sortCases(out)
	return out
}

// TestCases turns a test report into one case per inline test, plus one
// failed case per load problem.
func TestCases(rep *TestReport) []CICase {
	var out []CICase
	for _, r := range rep.Rules {
		for _, t := range r.Tests {
			c := CICase{Name: r.RuleID + " / " + t.Name, RuleID: r.RuleID, File: r.File, Line: t.Line, Col: 1}
			if !t.Pass {
				c.Failure = fmt.Sprintf("got match=%t, want %t", t.Got, t.Want)
				if t.Error != "" {
					c.Failure += ": " + t.Error
				}
			}
			out = append(out, c)
		}
	}
	for _, x := range rep.Exceptions {
		for _, t := range x.Tests {
			c := CICase{Name: "exception " + x.ExceptionID + " / " + t.Name, RuleID: x.ExceptionID, File: x.File, Line: t.Line, Col: 1}
			if !t.Pass {
				c.Failure = fmt.Sprintf("rule %s: got suppressed=%t, want %t", t.Rule, t.Got, t.Want)
				if t.Error != "" {
					c.Failure += ": " + t.Error
				}
			}
			out = append(out, c)
		}
	}
	for _, p := range rep.Problems {
		out = append(out, CICase{Name: p.File, RuleID: p.RuleID, File: p.File, Line: p.Line, Col: p.Col, Failure: p.Msg})
	}
	sortCases(out)
	return out
}

// sortCases puts the cases in a stable, readable order: by file, line,
// name.
func sortCases(cs []CICase) {
	slices.SortStableFunc(cs, func(a, b CICase) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), strings.Compare(a.Name, b.Name))
	})
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Failure   *junitFailure `xml:"failure"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the cases as one JUnit XML test suite. A case's
// warnings go to its system-out, one "warning: file:line:col: message"
// line each, which Jenkins, GitLab and the JUnit report actions show with
// the test and which does not fail it.
func WriteJUnit(w io.Writer, suite string, cases []CICase) error {
	s := junitSuite{Name: suite, Tests: len(cases)}
	for _, c := range cases {
		jc := junitCase{Name: c.Name, Classname: suite, File: c.File, Line: c.Line}
		if c.Failure != "" {
			s.Failures++
			jc.Failure = &junitFailure{Message: c.Failure, Text: fmt.Sprintf("%s:%d:%d: %s", c.File, c.Line, c.Col, c.Failure)}
		}
		var out strings.Builder
		for _, wp := range c.Warnings {
			fmt.Fprintf(&out, "warning: %s:%d:%d: %s\n", wp.File, wp.Line, wp.Col, wp.Msg)
		}
		jc.SystemOut = out.String()
		s.Cases = append(s.Cases, jc)
	}
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Tests: s.Tests, Failures: s.Failures, Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteSARIF writes the failed cases as a SARIF 2.1.0 log, one result of
// level error per failure and one of level warning per warning, with the
// rule id as the result's ruleId.
func WriteSARIF(w io.Writer, tool, version string, cases []CICase) error {
	type region struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn,omitempty"`
	}
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
			Region *region `json:"region,omitempty"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID    string            `json:"ruleId"`
		Level     string            `json:"level"`
		Message   map[string]string `json:"message"`
		Locations []location        `json:"locations"`
	}
	results := []result{}
	add := func(level, ruleID, file string, line, col int, msg string) {
		var l location
		l.PhysicalLocation.ArtifactLocation.URI = strings.TrimPrefix(file, "./")
		if line > 0 {
			l.PhysicalLocation.Region = &region{StartLine: line, StartColumn: col}
		}
		results = append(results, result{RuleID: cmp.Or(ruleID, "load"), Level: level, Message: map[string]string{"text": msg}, Locations: []location{l}})
	}
	for _, c := range cases {
		if c.Failure != "" {
			add("error", c.RuleID, c.File, c.Line, c.Col, c.Failure)
		}
		for _, wp := range c.Warnings {
			add("warning", wp.RuleID, wp.File, wp.Line, wp.Col, wp.Msg)
		}
	}
	log := map[string]any{
		"version": "2.1.0",
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]any{"name": tool, "version": version, "informationUri": "https://github.com/musubi-xdr/musubi"}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// WriteGitHub writes one GitHub Actions ::error workflow command per failed
// case and one ::warning per warning, so each shows on the file and line of
// the pull request.
func WriteGitHub(w io.Writer, cases []CICase) error {
	esc := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	escProp := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
	annotate := func(cmd, ruleID, file string, line, col int, msg string) error {
		props := "file=" + escProp.Replace(file)
		if line > 0 {
			props += fmt.Sprintf(",line=%d", line)
			if col > 0 {
				props += fmt.Sprintf(",col=%d", col)
			}
		}
		if ruleID != "" {
			props += ",title=" + escProp.Replace(ruleID)
		}
		_, err := fmt.Fprintf(w, "::%s %s::%s\n", cmd, props, esc.Replace(msg))
		return err
	}
	for _, c := range cases {
		if c.Failure != "" {
			if err := annotate("error", c.RuleID, c.File, c.Line, c.Col, c.Failure); err != nil {
				return err
			}
		}
		for _, wp := range c.Warnings {
			if err := annotate("warning", wp.RuleID, wp.File, wp.Line, wp.Col, wp.Msg); err != nil {
				return err
			}
		}
	}
	return nil
}
