package rules_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/rules"
)

// Example loads a one-rule directory, installs it in an engine and
// evaluates a normalized CloudTrail event against it.
func Example() {
	dir, _ := os.MkdirTemp("", "rules")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "stop_logging.yaml"), []byte(`
id: example.cloudtrail_stopped
title: CloudTrail logging stopped
severity: high
stage: defense_evasion
attack: {tactics: [TA0005], techniques: [T1562.008]}
sources: {log_names: [cloudtrail], operations: [StopLogging]}
condition: request.name != "sandbox-trail"
entities: [principal, ip]
`), 0o644)

	set, err := rules.Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	engine := rules.NewEngine(prometheus.NewRegistry(), nil)
	engine.Swap(set)

	ev := ocsf.Event{ClassUID: ocsf.ClassAPIActivity, Time: 1722375075000}
	ev.Metadata.LogName, ev.Metadata.UID = "cloudtrail", "6e2f1c9a"
	ev.API.Operation = "StopLogging"
	ev.API.Request.Data = json.RawMessage(`{"name":"main-trail"}`)
	ev.AddObservable(ocsf.EntityIP, "src_endpoint.ip", "198.51.100.7")

	for _, a := range engine.Evaluate(&ev) {
		fmt.Println(a.RuleID, ocsf.SeverityName(a.Severity), a.Techniques, a.Entities[0].Value, a.EventIDs)
	}
	// Output:
	// example.cloudtrail_stopped High [T1562.008] 198.51.100.7 [6e2f1c9a]
}

// ExampleLoad shows how a misspelled field is reported: with the file, line
// and column, and the rule id.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "rules")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "typo.yaml"), []byte(`id: example.typo
title: typo
severity: low
sources: {log_names: [cloudtrail]}
condition: event.api.opration == "StopLogging"
`), 0o644)
	_, err := rules.Load(dir)
	for _, p := range rules.Problems(err) {
		fmt.Printf("%s:%d:%d: rule %s: %s\n", filepath.Base(p.File), p.Line, p.Col, p.RuleID, p.Msg)
	}
	// Output:
	// typo.yaml:5:21: rule example.typo: condition: undefined field 'opration'
}
