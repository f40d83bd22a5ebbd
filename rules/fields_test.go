package rules

import (
	"fmt"
	"strings"
	"testing"
)

// classRule is a lint-clean rule over the given classes with a condition,
// an optional suppression key and the given test events.
func classRule(id, classes, cond, key string, tests ...string) string {
	s := "id: " + id + `
title: t
description: d
status: test
severity: low
stage: command_and_control
attack: {tactics: [TA0011], techniques: [T1071]}
sources: {log_names: [agent]` + classes + `}
entities: [host]
condition: |
  ` + cond + "\n"
	if key != "" {
		s += "suppression: {key: '" + key + "', window: 1h}\n"
	}
	s += "tests:\n"
	for _, t := range tests {
		s += "  - " + t + "\n"
	}
	return s
}

// TestLintClassFields checks that lint rejects, at its file:line:col, a
// field that none of the rule's classes defines, and accepts the field
// where OCSF puts it.
func TestLintClassFields(t *testing.T) {
	hit := `{name: hit, match: true, event: {class_uid: 4001, metadata: {log_name: agent}, actor: {process: {name: x}}}}`
	miss := `{name: miss, match: false, event: {class_uid: 4001, metadata: {log_name: agent}}}`
	for _, tc := range []struct {
		name, rule string
		want       []string // "line:col: message part"; none: lint-clean
	}{
		{name: "network rule reads actor.process", rule: classRule("t.ok", ", classes: [4001]", `event.actor.process.name == "x"`, "", hit, miss)},
		{name: "network rule reads process", rule: classRule("t.bad", ", classes: [4001]", `event.dst_endpoint.port > 0 && event.process.name == "x"`, "",
			`{name: hit, match: true, event: {class_uid: 4001, metadata: {log_name: agent}, dst_endpoint: {port: 1}, process: {name: x}}}`, miss),
			want: []string{
				"11:34: condition: event.process.name: process is not defined by class 4001 Network Activity; the process that acted is actor.process",
				`13:109: test "hit": event: process: process is not defined by class 4001 Network Activity`,
			}},
		{name: "suppression key is checked too", rule: classRule("t.key", ", classes: [4001]", `event.actor.process.name == "x"`, `event.device.uid + event.process.name`, hit, miss),
			want: []string{"12:40: suppression key: event.process.name: process is not defined by class 4001"}},
		{name: "one of several classes defining the field is enough", rule: classRule("t.two", ", classes: [1007, 2004]",
			`cel.bind(p, event.class_uid == 1007 ? event.process : event.actor.process, p.name == "x")`, "",
			`{name: hit, match: true, event: {class_uid: 1007, metadata: {log_name: agent}, process: {name: x}}}`,
			`{name: finding, match: true, event: {class_uid: 2004, metadata: {log_name: agent}, actor: {process: {name: x}}}}`, miss)},
		{name: "a finding field in a file rule", rule: classRule("t.fi", ", classes: [1001]", `event.finding_info.title == "x" && event.file.path != ""`, "",
			`{name: hit, match: true, event: {class_uid: 1001, metadata: {log_name: agent}, file: {path: /a}, finding_info: {title: x}}}`,
			`{name: miss, match: false, event: {class_uid: 1001, metadata: {log_name: agent}}}`),
			want: []string{
				"11:3: condition: event.finding_info.title: finding_info is not defined by class 1001 File System Activity (defined by classes 2002 Vulnerability Finding, 2004 Detection Finding or 2005 Incident Finding)",
				`13:102: test "hit": event: finding_info`,
			}},
		{name: "request reads api, defined everywhere", rule: classRule("t.req", ", classes: [3002]", `request.x == "y" && event.user.name != ""`, "",
			`{name: hit, match: true, event: {class_uid: 3002, metadata: {log_name: agent}, user: {name: u}, api: {request: {data: {x: y}}}}}`,
			`{name: miss, match: false, event: {class_uid: 3002, metadata: {log_name: agent}}}`)},
		{name: "no declared class: the union", rule: classRule("t.any", "", `event.process.name == "x" && event.query.hostname != ""`, "",
			`{name: hit, match: true, event: {class_uid: 1007, metadata: {log_name: agent}, process: {name: x}, query: {hostname: h}}}`,
			`{name: miss, match: false, event: {metadata: {log_name: agent}, process: {name: y}}}`),
			want: []string{`13:104: test "hit": event: query: query is not defined by class 1007 Process Activity (defined by classes 2004 Detection Finding or 4003 DNS Activity)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"r.yaml": tc.rule})
			rep := Lint(dir)
			var got []string
			for _, p := range rep.Problems {
				got = append(got, fmt.Sprintf("%d:%d: %s", p.Line, p.Col, p.Msg))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d:\ngot  %s\nwant %s…", i, got[i], w)
				}
			}
			if rep.OK != (len(tc.want) == 0) {
				t.Errorf("ok: got %v", rep.OK)
			}
			for _, p := range rep.Problems {
				if !strings.HasPrefix(p.Error(), p.File+":"+fmt.Sprint(p.Line)+":"+fmt.Sprint(p.Col)+": rule ") {
					t.Errorf("problem not located as file:line:col: %s", p.Error())
				}
			}
		})
	}
}
