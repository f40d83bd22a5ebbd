// Package apitest is the fixture of the API's integration tests on the real
// ClickHouse store: two tenants, acme (account 111111111111) and globex
// (account 222222222222), their incidents, and the secrets of the test
// tokens. The API's own tests (package api_test) and the console's browser
// test in cmd/musubi share it.
package apitest

import (
	"context"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/storage"
)

// The tenants' AWS accounts.
const (
	AcmeAccount   = "111111111111"
	GlobexAccount = "222222222222"
)

// Token secrets of the test server.
const (
	TokAcmeAnalyst   = "acme-analyst-secret"
	TokAcmeAnalyst2  = "acme-analyst2-secret"
	TokAcmeViewer    = "acme-viewer-secret"
	TokAcmeAdmin     = "acme-admin-secret"
	TokGlobexAnalyst = "globex-analyst-secret"
	TokGlobexAdmin   = "globex-admin-secret"
	TokRootAdmin     = "root-admin-secret"
	TokExpired       = "expired-secret"
)

// SeedIncidents writes, per tenant, events, alerts and incidents:
//
//	acme:   inc-a1 (high, 2 alerts, 3 events), inc-a2 (medium), inc-a3 (high, later merged)
//	globex: inc-b1 (critical), sharing the bucket name "artifacts" with acme
func SeedIncidents(t testing.TB, s *storage.Store, base time.Time) {
	t.Helper()
	at := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	event := func(tenant, account, uid string, d time.Duration) ocsf.Event {
		var e ocsf.Event
		e.SetClass(ocsf.ClassAPIActivity, 1, "Create")
		e.Time = at(d)
		e.SeverityID = ocsf.SeverityInformational
		e.Metadata.UID, e.Metadata.TenantUID, e.Metadata.LogName = uid, tenant, "cloudtrail"
		e.Metadata.Product.Name = "CloudTrail"
		e.Cloud.Account.UID, e.Cloud.Region = account, "eu-west-1"
		e.API.Operation, e.API.Service.Name = "PutObject", "s3.amazonaws.com"
		e.AddObservable(ocsf.EntityBucket, "resources.uid", "artifacts")
		e.AddObservable(ocsf.EntityObject, "resources.uid", "artifacts/releases/app.zip")
		e.Raw = []byte(`{"eventID":"` + uid + `","eventName":"PutObject"}`)
		return e
	}
	mkAlert := func(tenant, account, id, rule string, sev int, d time.Duration, events ...string) alert.Alert {
		return alert.Alert{ID: id, TenantUID: tenant, RuleID: rule, RuleVersion: "3", Title: "alert " + id, Severity: sev,
			Stage: "tampering", Tactics: []string{"TA0040"}, Techniques: []string{"T1565"}, Time: at(d), AccountUID: account,
			Region: "eu-west-1", Source: "cloudtrail",
			Entities: []ocsf.Observable{ocsf.NewObservable(ocsf.EntityBucket, "resources.uid", "artifacts")},
			EventIDs: events, Summary: "s"}
	}
	mkIncident := func(id, title string, sev int, alerts ...alert.Alert) incident.Incident {
		in := incident.Incident{ID: id, Version: 1, TenantUID: alerts[0].TenantUID, Title: title, Severity: sev, RiskScore: 20 * sev,
			Status: "new", Stages: []string{"tampering"}, Tactics: []string{"TA0040"}, Techniques: []string{"T1565"},
			Accounts: []string{alerts[0].AccountUID}}
		for i, a := range alerts {
			if i == 0 || a.Time < in.FirstSeen {
				in.FirstSeen = a.Time
			}
			in.LastSeen = max(in.LastSeen, a.Time)
			in.AlertIDs, in.RuleIDs = append(in.AlertIDs, a.ID), append(in.RuleIDs, a.RuleID)
			in.Nodes = append(in.Nodes, incident.Node{ID: "alert:" + a.ID, Kind: incident.NodeAlert, Value: a.ID, Title: a.Title, Severity: a.Severity, FirstSeen: a.Time})
			in.Timeline = append(in.Timeline, incident.TimelineEntry{Time: a.Time, AlertID: a.ID, RuleID: a.RuleID, Title: a.Title, Stage: a.Stage, Severity: a.Severity})
			in.Edges = append(in.Edges, incident.Edge{ID: "e:" + a.ID, Source: "alert:" + a.ID, Target: "bucket:artifacts", Relation: "touches",
				RuleID: a.RuleID, RuleVersion: a.RuleVersion, JoinKey: "bucket", GapMS: 1000, Time: a.Time, EventIDs: a.EventIDs})
		}
		in.Nodes = append(in.Nodes, incident.Node{ID: "bucket:artifacts", Kind: incident.NodeEntity, Entity: ocsf.EntityBucket, Value: "artifacts", Title: "artifacts", FirstSeen: in.FirstSeen})
		return in
	}
	a1 := mkAlert("acme", AcmeAccount, "al-a1", "aws.s3.appspec_tamper", ocsf.SeverityHigh, 0, "ev-a1", "ev-a2")
	a2 := mkAlert("acme", AcmeAccount, "al-a2", "aws.codedeploy.bundle", ocsf.SeverityHigh, 10*time.Minute, "ev-a3")
	a3 := mkAlert("acme", AcmeAccount, "al-a3", "aws.iam.policy", ocsf.SeverityMedium, 20*time.Minute, "ev-a4")
	a4 := mkAlert("acme", AcmeAccount, "al-a4", "aws.s3.appspec_tamper", ocsf.SeverityHigh, 30*time.Minute, "ev-a5")
	b1 := mkAlert("globex", GlobexAccount, "al-b1", "aws.s3.appspec_tamper", ocsf.SeverityCritical, 5*time.Minute, "ev-b1")
	batch := storage.Batch{
		Events: []ocsf.Event{
			event("acme", AcmeAccount, "ev-a1", 0), event("acme", AcmeAccount, "ev-a2", time.Second), event("acme", AcmeAccount, "ev-a3", 10*time.Minute),
			event("acme", AcmeAccount, "ev-a4", 20*time.Minute), event("acme", AcmeAccount, "ev-a5", 30*time.Minute),
			event("globex", GlobexAccount, "ev-b1", 5*time.Minute),
		},
		Alerts: []alert.Alert{a1, a2, a3, a4, b1},
		Incidents: []incident.Incident{
			mkIncident("inc-a1", "Pipeline poisoning in acme", ocsf.SeverityHigh, a1, a2),
			mkIncident("inc-a2", "IAM policy change", ocsf.SeverityMedium, a3),
			mkIncident("inc-a3", "appspec rewritten again", ocsf.SeverityHigh, a4),
			mkIncident("inc-b1", "Pipeline poisoning in globex", ocsf.SeverityCritical, b1),
		},
	}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}
