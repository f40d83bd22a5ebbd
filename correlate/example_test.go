package correlate_test

import (
	"fmt"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/ocsf"
)

// A web server's instance credentials are read on the host and used from
// outside: two alerts from two sources, joined through the instance id
// that is the role session's name.
func ExampleCorrelator_Process() {
	c, err := correlate.New(correlate.DefaultConfig(), nil, nil, nil)
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	imds := alert.Alert{
		ID: "a1", TenantUID: "acme", RuleID: "host.imds_credentials_from_webserver", RuleVersion: "3",
		Title: "Instance role credentials read by a web server descendant", Severity: ocsf.SeverityCritical,
		Stage: "credential_access", Source: "agent", Time: t0.UnixMilli(), EventIDs: []string{"e1"},
		Entities: []ocsf.Observable{
			ocsf.NewObservable(ocsf.EntityHost, "device.hostname", "web-1"),
			ocsf.NewObservable(ocsf.EntityInstance, "device.instance_uid", "i-0a1b2c3d4e5f60718"),
		},
	}
	used := alert.Alert{
		ID: "a2", TenantUID: "acme", RuleID: "aws.instance_credentials_used_outside_instance", RuleVersion: "1",
		Title: "Instance credentials used outside the instance", Severity: ocsf.SeverityMedium,
		Stage: "discovery", Source: "cloudtrail", Time: t0.Add(30 * time.Minute).UnixMilli(), EventIDs: []string{"e2"},
		Entities: []ocsf.Observable{
			ocsf.NewObservable(ocsf.EntityInstance, "actor.session.name", "i-0a1b2c3d4e5f60718"),
			ocsf.NewObservable(ocsf.EntityAccessKey, "actor.user.credential_uid", "ASIA4WEBAPPROLE7QX2K"),
			ocsf.NewObservable(ocsf.EntityIP, "src_endpoint.ip", "203.0.113.9"),
		},
	}
	c.Process(nil, []alert.Alert{imds})
	res := c.Process(nil, []alert.Alert{used})
	for _, in := range res.Incidents {
		fmt.Println(in.Title)
		fmt.Println(ocsf.SeverityName(in.Severity), in.Stages, len(in.AlertIDs), "alerts")
		rule := map[string]string{}
		for _, t := range in.Timeline {
			rule["alert:"+t.AlertID] = t.RuleID
		}
		for _, e := range in.Edges {
			if e.Relation == correlate.RelShared {
				fmt.Println(rule[e.Source], "→", rule[e.Target], "via", e.JoinKey, "after", time.Duration(e.GapMS)*time.Millisecond)
			}
		}
	}
	// Output:
	// credential access → discovery: Instance role credentials read by a web server descendant (+1 alerts)
	// High [credential_access discovery] 2 alerts
	// host.imds_credentials_from_webserver → aws.instance_credentials_used_outside_instance via instance:i-0a1b2c3d4e5f60718 after 30m0s
}
