package rules

import (
	"fmt"
	"strings"
)

// Meta is the Sigma-style metadata a rule file may carry besides Musubi's
// own keys: who wrote it and when, free tags, and, for a rule imported from
// Sigma, the original rule's id and licence. None of it changes what the
// rule matches.
type Meta struct {
	Author   string   `json:"author,omitempty"`
	Date     string   `json:"date,omitempty"`
	Modified string   `json:"modified,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	License  string   `json:"license,omitempty"`
	SigmaID  string   `json:"sigma_id,omitempty"`
}

// ruleMeta copies the metadata keys of a rule document.
func ruleMeta(d ruleDoc) Meta {
	m := Meta{Date: d.Date, Modified: d.Modified, Tags: d.Tags, License: d.License, SigmaID: d.SigmaID}
	switch a := d.Author.(type) {
	case string:
		m.Author = a
	case []any:
		var names []string
		for _, x := range a {
			names = append(names, fmt.Sprint(x))
		}
		m.Author = strings.Join(names, ", ")
	}
	return m
}

// severityOrLevel returns the rule's severity: severity, or Sigma's level
// as an alias of it. Both given and different is a problem.
func severityOrLevel(d ruleDoc, bad func(string)) string {
	switch {
	case d.Level == "":
		return d.Severity
	case d.Severity == "":
		return d.Level
	case !strings.EqualFold(d.Severity, d.Level):
		bad(fmt.Sprintf("level %q and severity %q disagree; level is an alias of severity, give one", d.Level, d.Severity))
	}
	return d.Severity
}
