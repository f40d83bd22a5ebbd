package rules

import (
	"strings"
	"testing"
)

// rawRule is a rule over several sources whose tests give raw records.
const rawRule = `id: raw.test
title: raw test
severity: low
sources: {log_names: [cloudtrail, vpcflow, guardduty, falco, agent]}
condition: |
  event.api.operation == "StopLogging" ||
  (event.metadata.log_name == "vpcflow" && event.dst_endpoint.port == 4444) ||
  event.finding_info.types.exists(t, t.startsWith("CryptoCurrency:")) ||
  event.actor.process.cmd_line.contains("169.254.169.254") ||
  event.process.cmd_line.contains("xmrig")
tests:
  - name: cloudtrail string
    match: true
    source: cloudtrail
    raw: '{"eventVersion":"1.08","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventTime":"2024-01-01T00:00:00Z","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","userIdentity":{"type":"IAMUser","userName":"alice","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice"},"requestParameters":{"name":"main"},"eventID":"e1"}'
  - name: cloudtrail mapping
    match: false
    source: ct
    raw:
      eventVersion: "1.08"
      eventSource: cloudtrail.amazonaws.com
      eventName: StartLogging
      eventTime: "2024-01-01T00:00:00Z"
      awsRegion: us-east-1
      sourceIPAddress: 203.0.113.9
      userIdentity: {type: IAMUser, userName: alice, accountId: "111122223333"}
      requestParameters: {name: main}
      eventID: e2
  - name: flow line
    match: true
    source: vpcflow
    raw: 2 111122223333 eni-0a1b2c3d 10.0.1.25 198.51.100.7 40822 4444 6 10 840 1700000000 1700000060 ACCEPT OK
  - name: flow line other port
    match: false
    source: vpcflow
    raw: 2 111122223333 eni-0a1b2c3d 10.0.1.25 198.51.100.7 40822 443 6 10 840 1700000000 1700000060 ACCEPT OK
  - name: guardduty
    match: true
    source: guardduty
    raw: {schemaVersion: "2.0", accountId: "111122223333", region: us-east-1, partition: aws, id: f1, arn: "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/f1", type: "CryptoCurrency:EC2/BitcoinTool.B!DNS", severity: 8, createdAt: "2024-01-01T00:00:00.000Z", updatedAt: "2024-01-01T00:00:00.000Z", title: t, description: d, resource: {resourceType: Instance, instanceDetails: {instanceId: i-0123456789abcdef0}}, service: {serviceName: guardduty, count: 1}}
  - name: falco
    match: true
    source: falco
    raw: '{"output":"x","priority":"Warning","rule":"Contact EC2 Instance Metadata Service From Host","time":"2025-03-04T10:15:41.300000000Z","hostname":"web-1","output_fields":{"proc.cmdline":"curl http://169.254.169.254/latest/meta-data/","proc.name":"curl"}}'
  - name: agent
    match: true
    source: agent
    raw: {class_uid: 1007, activity_id: 1, time: 1700000000000, metadata: {uid: a1}, process: {cmd_line: "./xmrig -o pool:3333"}}
`

func TestRawTests(t *testing.T) {
	s := mustLoad(t, map[string]string{"r.yaml": rawRule})
	r := s.Rules()[0]
	res := r.RunTests()
	if len(res) != 7 {
		t.Fatalf("got %d results, want 7", len(res))
	}
	for i, tr := range res {
		if !tr.Pass {
			t.Errorf("%s: got match %v, want %v %s", tr.Name, tr.Got, tr.Want, tr.Error)
		}
		if r.Tests[i].Source == "" {
			t.Errorf("%s: got no source on the test", tr.Name)
		}
	}
	// The normalizer ran: the CloudTrail record carries its actor and log
	// name, as the engine would see it.
	ev := r.Tests[0].Event
	if ev.Metadata.LogName != "cloudtrail" || ev.Actor.User.Name != "alice" || ev.SrcEndpoint.IP != "203.0.113.9" {
		t.Errorf("got log_name %q user %q ip %q, want cloudtrail alice 203.0.113.9", ev.Metadata.LogName, ev.Actor.User.Name, ev.SrcEndpoint.IP)
	}
}

// TestRawTestsThatFail checks that a raw test can fail: the wrong verdict is
// reported, not hidden by the normalization.
func TestRawTestsThatFail(t *testing.T) {
	body := strings.Replace(rawRule, "  - name: flow line other port\n    match: false", "  - name: flow line other port\n    match: true", 1)
	r := mustLoad(t, map[string]string{"r.yaml": body}).Rules()[0]
	var failed []string
	for _, tr := range r.RunTests() {
		if !tr.Pass {
			failed = append(failed, tr.Name)
		}
	}
	if len(failed) != 1 || failed[0] != "flow line other port" {
		t.Errorf("got failed %v, want [flow line other port]", failed)
	}
}

func TestRawTestProblems(t *testing.T) {
	head := ruleYAML("raw.bad", `event.api.operation == "StopLogging"`) + "tests:\n  - name: t\n    match: true\n"
	for _, tt := range []struct {
		name, test, want string
	}{
		{"no source", "    raw: '{}'\n", "source is required with raw"},
		{"unknown source", "    source: syslog\n    raw: 'x'\n", `unknown source "syslog"`},
		{"both", "    source: cloudtrail\n    raw: '{}'\n    event: {class_uid: 6003}\n", "either event or raw, not both"},
		{"source alone", "    source: cloudtrail\n", "source is given without raw"},
		{"neither", "", "event or raw is required"},
		{"bad json", "    source: cloudtrail\n    raw: '{\"eventName\": '\n", "raw cloudtrail record"},
		{"two records", "    source: cloudtrail\n    raw: '{\"Records\":[{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"A\",\"eventTime\":\"2024-01-01T00:00:00Z\"},{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"B\",\"eventTime\":\"2024-01-01T00:00:00Z\"}]}'\n", "normalized to 2 events, want exactly 1"},
		{"scalar", "    source: cloudtrail\n    raw: 5\n", "want a string or a mapping"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadString(t, map[string]string{"r.yaml": head + tt.test})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
