package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/rules"
)

const rulesUsage = `Usage: musubi rules <lint|test|coverage> [-format FORMAT] [-cost] [-scenarios DIR] DIR
       musubi rules import sigma [-out DIR] [-license ID] FILE|DIR

  lint      parse, type-check and compile every rule, detection and
            correlation; check the metadata a shipped rule must have (ATT&CK,
            stage, sources, entities, tests); with -cost, list each rule's
            worst-case CEL cost, whether it runs untracked or tracked, and
            what prefilters it
  test      run every rule's inline tests; with -scenarios, also replay every
            scenario directory (telemetry files + expected.json) under DIR
            through normalize → rules → correlate, in file order and in
            -orders shuffled orders, and check the expected incident
  coverage  print the ATT&CK coverage; with -format json an ATT&CK Navigator
            layer (format 4.5) under "layer", with -format navigator the
            layer alone, ready to upload
  import    convert Sigma rules (AWS CloudTrail; Linux process_creation,
            file_event, network_connection) into Musubi rule files with
            generated tests; every rule that cannot convert is listed with
            the reason

lint and test also write -format junit (JUnit XML), sarif (SARIF 2.1.0) and
github (GitHub Actions annotations) for CI.

The exit code is 1 when any rule fails.
`

// rulesActions are the actions of `musubi rules` and their help.
var rulesActions = map[string]string{
	"lint": "rules lint [-format text|json] [-cost] DIR\n\nParses, type-checks and compiles every rule, detection and correlation, and\nchecks the metadata a shipped rule must have (ATT&CK, stage, sources,\nentities, tests). The exit code is 1 when any rule fails.\n\n" +
		"With -cost it also lists every detection rule and correlation stage\ncondition, most expensive first: its worst-case CEL cost (STRICT, the\nestimate over the size hints the engine checks on each event; unbounded\nwhen it has none; LOAD, the estimate checked against the load limit),\nwhether the engine evaluates it untracked (no cost tracking, no deadline;\nonly rules whose strict estimate is within the cost limit) or tracked and\nwhy, and what gates it: the operations of its sources and the literal\nconjuncts of its condition checked before it runs, or \"evaluated for every\nevent of\" its classes. Cost alone never fails the lint.",
	"test":     "rules test [-format text|json] [-scenarios DIR] [-orders N] DIR\n\nRuns every rule's and every exception's inline tests; with -scenarios, also replays every scenario\ndirectory (telemetry files + expected.json) through normalize → rules →\ncorrelate, in file order and in shuffled orders, and checks the expected\nincident. The exit code is 1 when any rule or scenario fails.",
	"import":   "rules import sigma [-out DIR] [-license ID] [-format text|json] FILE|DIR\n\nConverts Sigma rules into Musubi rule files under -out, each with a\ngenerated matching and non-matching test checked against the converted\ncondition. A rule with a construct Musubi cannot express is not written; it\nis listed with every reason. -license is recorded for rules that name none\n(DRL-1.1 for SigmaHQ's). The exit code is 1 when any rule was not converted.",
	"coverage": "rules coverage [-format text|json|navigator] DIR\n\nPrints the ATT&CK coverage; with -format json an ATT&CK Navigator layer\n(format 4.5) under \"layer\".",
}

func rulesCommand(args []string, stdout, stderr io.Writer) int {
	if wantsHelp(args) {
		fmt.Fprint(stdout, rulesUsage)
		return 0
	}
	if len(args) == 0 || rulesActions[args[0]] == "" {
		fmt.Fprint(stderr, rulesUsage)
		return 2
	}
	action := args[0]
	if action == "import" {
		return rulesImport(args[1:], stdout, stderr)
	}
	fs := newFlagSet("rules "+action, rulesActions[action], stdout, stderr)
	formats := map[string][]string{
		"lint":     {"text", "json", "junit", "sarif", "github"},
		"test":     {"text", "json", "junit", "sarif", "github"},
		"coverage": {"text", "json", "navigator"},
	}[action]
	format := fs.String("format", "text", "output format: "+strings.Join(formats, ", "))
	scenarios, orders, withCost := new(string), new(int), new(bool)
	if action == "lint" {
		fs.BoolVar(withCost, "cost", false, "also list each rule's static cost, evaluation path (untracked or tracked) and prefilter")
	}
	if action == "test" {
		fs.StringVar(scenarios, "scenarios", "", "directory of scenario tests")
		fs.IntVar(orders, "orders", 5, "orders each scenario is replayed in: file order, then shuffled")
	}
	if code, stop := fs.parse(args[1:]); stop {
		return code
	}
	if fs.NArg() != 1 || !slices.Contains(formats, *format) {
		return fs.usageError()
	}
	dir := fs.Arg(0)
	var report any
	ok := false
	var text func()
	var cases []rules.CICase // for junit, sarif, github
	switch action {
	case "lint":
		rep := rules.Lint(dir)
		seqProblems := lintCorrelation(dir)
		cases = lintCases(rep, seqProblems)
		var costs *rules.CostReport
		if *withCost {
			costs = costReport(dir)
		}
		report, ok = struct {
			*rules.LintReport
			Correlation []string          `json:"correlation_problems,omitempty"`
			Cost        *rules.CostReport `json:"cost,omitempty"`
		}{rep, seqProblems, costs}, rep.OK && len(seqProblems) == 0
		text = func() {
			for _, p := range rep.Problems {
				fmt.Fprintln(stdout, p)
			}
			for _, p := range seqProblems {
				fmt.Fprintln(stdout, p)
			}
			for _, w := range rep.Warnings {
				fmt.Fprintln(stdout, "warning:", w)
			}
			seq, _ := correlate.LoadRules(dir)
			if costs != nil {
				writeCostTable(stdout, costs)
			}
			fmt.Fprintf(stdout, "%d detection rules, %d correlation rules, %d problems\n", rep.Rules, len(seq), len(rep.Problems)+len(seqProblems))
		}
	case "test":
		rep := rules.Test(dir)
		var scen []ScenarioReport
		if *scenarios != "" {
			dirs, err := findScenarios(*scenarios)
			if err != nil || len(dirs) == 0 {
				fmt.Fprintf(stderr, "musubi rules test: no scenarios under %s (%v)\n", *scenarios, err)
				return 1
			}
			for _, d := range dirs {
				scen = append(scen, runScenario(d, dir, max(*orders, 1)))
			}
		}
		scenOK := true
		for _, sr := range scen {
			scenOK = scenOK && sr.Pass
		}
		cases = rules.TestCases(rep)
		for _, sr := range scen {
			c := rules.CICase{Name: "scenario " + sr.Dir, File: sr.Dir}
			if !sr.Pass {
				c.Failure = strings.Join(sr.Failures, "; ")
			}
			cases = append(cases, c)
		}
		report = struct {
			*rules.TestReport
			Scenarios []ScenarioReport `json:"scenarios,omitempty"`
		}{rep, scen}
		ok = rep.OK && len(rep.Problems) == 0 && scenOK
		text = func() {
			for _, sr := range scen {
				status := "ok"
				if !sr.Pass {
					status = "FAIL"
				}
				fmt.Fprintf(stdout, "scenario %s: %d orders: %s\n", sr.Dir, sr.Orders, status)
				for _, f := range sr.Failures {
					fmt.Fprintf(stdout, "  %s\n", f)
				}
			}
			for _, p := range rep.Problems {
				fmt.Fprintln(stdout, p)
			}
			for _, r := range rep.Rules {
				for _, t := range r.Tests {
					if !t.Pass {
						fmt.Fprintf(stdout, "FAIL %s %s:%d test %q: got match=%t, want %t %s\n", r.RuleID, r.File, t.Line, t.Name, t.Got, t.Want, t.Error)
					}
				}
			}
			for _, x := range rep.Exceptions {
				for _, t := range x.Tests {
					if !t.Pass {
						fmt.Fprintf(stdout, "FAIL exception %s %s:%d test %q (rule %s): got suppressed=%t, want %t %s\n", x.ExceptionID, x.File, t.Line, t.Name, t.Rule, t.Got, t.Want, t.Error)
					}
				}
			}
			fmt.Fprintf(stdout, "%d passed, %d failed\n", rep.Passed, rep.Failed)
		}
	case "coverage":
		rep := rules.Coverage(dir)
		report, ok = rep, rep.OK
		text = func() {
			for _, p := range rep.Problems {
				fmt.Fprintln(stdout, p)
			}
			fmt.Fprintf(stdout, "%d rules cover %d ATT&CK techniques across %d tactics\n", rep.Rules, len(rep.Techniques), len(rep.Tactics))
			for _, t := range rep.Layer.Techniques {
				fmt.Fprintf(stdout, "  %-10s %-22s %d  %s\n", t.TechniqueID, t.Tactic, t.Score, t.Comment)
			}
		}
	default:
		fmt.Fprint(stderr, rulesUsage)
		return 2
	}
	var err error
	switch *format {
	case "junit":
		err = rules.WriteJUnit(stdout, "musubi rules "+action, cases)
	case "sarif":
		err = rules.WriteSARIF(stdout, "musubi rules "+action, version, cases)
	case "github":
		err = rules.WriteGitHub(stdout, cases)
	case "navigator":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(report.(*rules.CoverageReport).Layer)
	}
	if err != nil {
		fmt.Fprintf(stderr, "musubi rules: %v\n", err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			fmt.Fprintf(stderr, "musubi rules: %v\n", err)
			return 1
		}
	} else if *format == "text" {
		text()
	}
	if !ok {
		return 1
	}
	return 0
}

// costReport is the -cost report of dir: its detection rules and the
// stage conditions of its correlation rules. Rules that do not load are
// left out (lint lists their problems).
func costReport(dir string) *rules.CostReport {
	rep := &rules.CostReport{Rules: []rules.RuleCost{}}
	if s, err := rules.Load(dir); err == nil {
		rep = s.Cost()
	}
	if seq, err := correlate.LoadRules(dir); err == nil {
		for _, r := range seq {
			for _, c := range r.Cost() {
				rep.Add(c)
			}
		}
	}
	return rep
}

// writeCostTable prints the -cost report as a table and a summary line.
func writeCostTable(w io.Writer, rep *rules.CostReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSTRICT\tLOAD\tEVALUATION\tGATED BY")
	det, corr := 0, 0
	for _, c := range rep.Rules {
		name := c.RuleID
		if c.Kind == rules.KindCorrelation {
			name += " [" + c.Stage + "]"
			corr++
		} else {
			det++
		}
		strict := strconv.FormatUint(c.Strict, 10)
		if c.Unbounded {
			strict = "unbounded"
		}
		eval := "untracked"
		if c.UntrackedWithin != "" {
			eval = fmt.Sprintf("untracked within %s (estimate %d), else tracked", c.UntrackedWithin, c.UntrackedBound)
			if c.Deadline {
				eval += "+deadline"
			}
		}
		if !c.Untracked {
			eval = "tracked"
			if c.Deadline {
				eval += "+deadline"
			}
			eval += ": " + c.TrackedBecause
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", name, strict, c.Estimate, eval, c.Gate)
	}
	tw.Flush()
	fmt.Fprintf(w, "cost: %d rules (%d detection, %d correlation stage conditions), %d untracked, %d prefiltered\n",
		len(rep.Rules), det, corr, rep.Untracked, rep.Prefiltered)
}

// lintCorrelation loads the correlation rules of dir and lists their
// problems.
func lintCorrelation(dir string) []string {
	if _, err := correlate.LoadRules(dir); err != nil {
		return strings.Split(err.Error(), "\n")
	}
	return nil
}

// lintCases turns a lint run into CI cases: one per detection rule (failed
// with each of its problems), one per correlation problem.
func lintCases(rep *rules.LintReport, seqProblems []string) []rules.CICase {
	cases := rules.LintCases(rep)
	for _, p := range seqProblems {
		if p == "" {
			continue
		}
		file := p
		if i := strings.IndexByte(p, ':'); i > 0 {
			file = p[:i]
		}
		cases = append(cases, rules.CICase{Name: "correlation", File: file, Failure: p})
	}
	return cases
}
