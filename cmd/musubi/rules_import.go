package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/musubi-xdr/musubi/rules/sigma"
)

// rulesImport runs `musubi rules import sigma [-out DIR] FILE|DIR`.
func rulesImport(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "sigma" {
		fmt.Fprintln(stderr, "musubi rules import: the only format is sigma: musubi rules import sigma [-out DIR] FILE|DIR")
		return 2
	}
	fs := newFlagSet("rules import sigma", rulesActions["import"], stdout, stderr)
	out := fs.String("out", "", "directory the converted rules are written to (none: only report)")
	license := fs.String("license", "", "licence recorded in rules that name none (DRL-1.1 for SigmaHQ's rules)")
	format := fs.String("format", "text", "output format: text or json")
	if code, stop := fs.parse(args[1:]); stop {
		return code
	}
	if fs.NArg() != 1 || (*format != "text" && *format != "json") {
		return fs.usageError()
	}
	rep, err := sigma.Import(fs.Arg(0), *out, *license)
	if err != nil {
		fmt.Fprintf(stderr, "musubi rules import: %v\n", err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "musubi rules import: %v\n", err)
			return 1
		}
	} else {
		for _, r := range rep.Results {
			if r.OK() {
				fmt.Fprintf(stdout, "ok   %s -> %s\n", r.File, r.RuleID)
			} else {
				fmt.Fprintf(stdout, "SKIP %s (%s)\n", r.File, r.Title)
				for _, u := range r.Unsupported {
					fmt.Fprintf(stdout, "       unsupported: %s\n", u)
				}
			}
			for _, n := range r.Notes {
				fmt.Fprintf(stdout, "       note: %s\n", n)
			}
		}
		fmt.Fprintf(stdout, "%d converted, %d not converted\n", rep.Converted, rep.Skipped)
	}
	if rep.Skipped > 0 {
		return 1
	}
	return 0
}
