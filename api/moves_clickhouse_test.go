package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/storage"
)

// incidentAlerts returns the ids of an incident's alerts and evidence
// events as GET /v1/incidents/{id} answers them, sorted, and its ETag.
func (e *apiEnv) incidentAlerts(t *testing.T, id string) (alerts, evidence []string, etag string) {
	t.Helper()
	var d casework.IncidentDetail
	r := e.get("/v1/incidents/"+id, apitest.TokAcmeViewer, &d)
	for _, a := range d.Alerts {
		alerts = append(alerts, a.ID)
	}
	for _, ev := range d.Evidence {
		evidence = append(evidence, ev.ID)
	}
	slices.Sort(alerts)
	slices.Sort(evidence)
	ownIDs := slices.Sorted(slices.Values(d.AlertIDs))
	if len(d.MergedFrom) == 0 && !slices.Equal(ownIDs, alerts) {
		t.Errorf("%s: alert_ids %v differ from its alerts %v", id, ownIDs, alerts)
	}
	return alerts, evidence, r.header.Get("ETag")
}

// queueAlertIDs returns the alert ids of one queue row.
func (e *apiEnv) queueAlertIDs(t *testing.T, id string) []string {
	t.Helper()
	var page casework.IncidentPage
	e.get("/v1/incidents?q="+id, apitest.TokAcmeViewer, &page)
	if len(page.Items) != 1 {
		t.Fatalf("queue q=%s: got %v, want one row", id, ids(page.Items))
	}
	return slices.Sorted(slices.Values(page.Items[0].AlertIDs))
}

// TestAPIMoveAlert: an analyst moves an alert to another incident of its
// tenant with the target's ETag. Every read follows the move — the
// incidents' alerts, evidence and queue rows, the alert queue — also after
// the correlator rewrites the source from its own state; both ETags move;
// both incidents and the request are audited, refusals included; roles and
// tenants hold.
func TestAPIMoveAlert(t *testing.T) {
	e := newAPIEnv(t)
	move := func(token, alertID string, body any, ifMatch string) response {
		t.Helper()
		var h []string
		if ifMatch != "" {
			h = []string{"If-Match", ifMatch}
		}
		return e.do(http.MethodPost, "/v1/alerts/"+alertID+"/move", token, body, h...)
	}
	to := func(id string) map[string]string {
		return map[string]string{"to": id, "reason": "same session key as the rest"}
	}

	refusals := []struct {
		name, token, alert string
		body               any
		ifMatch            string
		code               int
		want               string
	}{
		{"a viewer", apitest.TokAcmeViewer, "al-a1", to("inc-a2"), `"1.0"`, 403, ""},
		{"no If-Match", apitest.TokAcmeAnalyst, "al-a1", to("inc-a2"), "", 428, ""},
		{"a weak ETag", apitest.TokAcmeAnalyst, "al-a1", to("inc-a2"), `W/"1.0"`, 412, "weak"},
		{"a stale ETag", apitest.TokAcmeAnalyst, "al-a1", to("inc-a2"), `"1.3"`, 412, "changed"},
		{"the source's ETag is not the target's", apitest.TokAcmeAnalyst, "al-a1", to("inc-a2"), `"2.0"`, 412, ""},
		{"no reason", apitest.TokAcmeAnalyst, "al-a1", map[string]string{"to": "inc-a2"}, `"1.0"`, 422, "reason"},
		{"a bad target id", apitest.TokAcmeAnalyst, "al-a1", to("../x"), `"1.0"`, 422, "not an incident id"},
		{"an unknown field", apitest.TokAcmeAnalyst, "al-a1", map[string]string{"to": "inc-a2", "reason": "x", "into": "y"}, `"1.0"`, 400, "unknown field"},
		{"a bad alert id", apitest.TokAcmeAnalyst, "al%20a1", to("inc-a2"), `"1.0"`, 400, "not an id"},
		{"into its own incident", apitest.TokAcmeAnalyst, "al-a1", to("inc-a1"), `"1.0"`, 422, "already"},
		{"another tenant's alert", apitest.TokAcmeAnalyst, "al-b1", to("inc-a2"), `"1.0"`, 404, ""},
		{"into another tenant's incident", apitest.TokAcmeAnalyst, "al-a1", to("inc-b1"), `"1.0"`, 422, "no such incident"},
		{"an alert of acme by globex", apitest.TokGlobexAnalyst, "al-a1", to("inc-b1"), `"1.0"`, 404, ""},
		{"into a missing incident", apitest.TokAcmeAnalyst, "al-a1", to("inc-none"), `"1.0"`, 422, "no such incident"},
	}
	for _, c := range refusals {
		r := move(c.token, c.alert, c.body, c.ifMatch)
		if r.code != c.code {
			t.Errorf("%s: got %d %.300s, want %d", c.name, r.code, r.body, c.code)
			continue
		}
		p := r.problem(t)
		if got := p.Detail + " " + strings.Join(p.Errors, " "); !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q, want it to mention %q", c.name, got, c.want)
		}
		if c.code == 412 && r.header.Get("ETag") == "" {
			t.Errorf("%s: a 412 without the current ETag", c.name)
		}
	}
	if a, _, etag := e.incidentAlerts(t, "inc-a1"); !slices.Equal(a, []string{"al-a1", "al-a2"}) || etag != `"1.0"` {
		t.Fatalf("inc-a1 after the refusals: got alerts %v ETag %s, want al-a1, al-a2 and \"1.0\" (nothing changed)", a, etag)
	}

	// al-a1 moves from inc-a1 (high) to inc-a2 (medium).
	r := move(apitest.TokAcmeAnalyst, "al-a1", to("inc-a2"), `"1.0"`)
	if r.code != http.StatusOK {
		t.Fatalf("move al-a1 to inc-a2: got %d %.300s", r.code, r.body)
	}
	var res casework.AlertMoved
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	if res.From == nil || res.From.ID != "inc-a1" || res.To.ID != "inc-a2" || r.header.Get("ETag") != `"1.1"` ||
		!slices.Equal(res.From.AlertIDs, []string{"al-a2"}) || !slices.Equal(slices.Sorted(slices.Values(res.To.AlertIDs)), []string{"al-a1", "al-a3"}) ||
		res.From.Workflow.Version != 1 || res.To.Workflow.Version != 1 || res.To.Workflow.UpdatedBy != "alice" {
		t.Errorf("the move's answer: got ETag %s, %.600s", r.header.Get("ETag"), r.body)
	}
	check := func(when string) {
		t.Helper()
		a1, ev1, etag1 := e.incidentAlerts(t, "inc-a1")
		a2, ev2, etag2 := e.incidentAlerts(t, "inc-a2")
		if !slices.Equal(a1, []string{"al-a2"}) || !slices.Equal(ev1, []string{"ev-a3"}) {
			t.Errorf("%s: inc-a1 has alerts %v evidence %v, want al-a2 and ev-a3", when, a1, ev1)
		}
		if !slices.Equal(a2, []string{"al-a1", "al-a3"}) || !slices.Equal(ev2, []string{"ev-a1", "ev-a2", "ev-a4"}) {
			t.Errorf("%s: inc-a2 has alerts %v evidence %v, want al-a1, al-a3 and ev-a1, ev-a2, ev-a4", when, a2, ev2)
		}
		if etag2 != `"1.1"` || !strings.HasSuffix(etag1, `.1"`) {
			t.Errorf("%s: got ETags %s and %s, want both workflow versions at 1", when, etag1, etag2)
		}
		if got := e.queueAlertIDs(t, "inc-a1"); !slices.Equal(got, []string{"al-a2"}) {
			t.Errorf("%s: inc-a1's queue row lists alerts %v, want al-a2", when, got)
		}
		if got := e.queueAlertIDs(t, "inc-a2"); !slices.Equal(got, []string{"al-a1", "al-a3"}) {
			t.Errorf("%s: inc-a2's queue row lists alerts %v, want al-a1, al-a3", when, got)
		}
		// al-a1 is in a medium incident now: the alert queue shows it.
		var q alertPage
		e.get("/v1/alerts", apitest.TokAcmeAnalyst, &q)
		if got := alertIDs(q); !slices.Equal(got, []string{"al-a3", "al-a1"}) {
			t.Errorf("%s: the alert queue holds %v, want al-a3, al-a1", when, got)
		}
	}
	check("after the move")

	// The old ETag of the source no longer matches: its alerts changed.
	if r := e.do(http.MethodPatch, "/v1/incidents/inc-a1", apitest.TokAcmeAnalyst, map[string]any{"status": "in_progress"}, "If-Match", `"1.0"`); r.code != http.StatusPreconditionFailed {
		t.Errorf("PATCH inc-a1 with its ETag from before the move: got %d, want 412", r.code)
	}

	// The correlator knows nothing of analysts: it rewrites inc-a1 from its
	// own state, al-a1 included. The move stands.
	var d casework.IncidentDetail
	e.get("/v1/incidents/inc-a1", apitest.TokAcmeViewer, &d)
	in := d.Incident.Incident
	in.Version, in.Status, in.AlertIDs = 2, "new", []string{"al-a1", "al-a2"}
	if err := e.store.Write(context.Background(), storage.Batch{Incidents: []incident.Incident{in}}); err != nil {
		t.Fatal(err)
	}
	if _, _, etag := e.incidentAlerts(t, "inc-a1"); etag != `"2.1"` {
		t.Fatalf("inc-a1 after the correlator's rewrite: got ETag %s, want \"2.1\"", etag)
	}
	check("after the correlator rewrote the source")

	// Into a high incident: al-a3 leaves the alert queue. Then into a
	// merged incident: refused.
	if r := move(apitest.TokAcmeAnalyst2, "al-a3", to("inc-a3"), `"1.0"`); r.code != http.StatusOK {
		t.Fatalf("move al-a3 to inc-a3: got %d %.300s", r.code, r.body)
	}
	var q alertPage
	e.get("/v1/alerts", apitest.TokAcmeAnalyst, &q)
	if got := alertIDs(q); !slices.Equal(got, []string{"al-a1"}) {
		t.Errorf("the alert queue after al-a3 moved into a high incident: got %v, want al-a1", got)
	}
	if r := e.do(http.MethodPost, "/v1/incidents/inc-a3/merge", apitest.TokAcmeAnalyst, map[string]string{"into": "inc-a1", "reason": "same"}); r.code != http.StatusOK {
		t.Fatalf("merge inc-a3 into inc-a1: got %d %.300s", r.code, r.body)
	}
	_, _, etag3 := e.incidentAlerts(t, "inc-a3")
	r = move(apitest.TokAcmeAnalyst, "al-a1", to("inc-a3"), etag3)
	if p := r.problem(t); r.code != http.StatusUnprocessableEntity || !strings.Contains(strings.Join(p.Errors, " "), "merged into inc-a1") {
		t.Errorf("move into a merged incident: got %d %q, want 422 naming the survivor", r.code, p.Errors)
	}

	// Audit: the change on both incidents, the requests on the target.
	for id, want := range map[string][]string{"inc-a1": {"alice"}, "inc-a2": {"alice", "bob"}, "inc-a3": {"bob"}} {
		var actors []string
		for _, a := range e.auditOf(id, "incident.alert.move") {
			actors = append(actors, a.Actor)
		}
		if slices.Sort(actors); !slices.Equal(actors, want) {
			t.Errorf("%s: got incident.alert.move entries by %v, want %v", id, actors, want)
		}
	}
	outcomes := map[int]int{}
	for _, a := range e.auditOf("inc-a2", "api.alert.move") {
		outcomes[a.det.Status]++
	}
	if outcomes[200] != 1 || outcomes[412] < 3 || outcomes[422] < 1 || outcomes[428] != 1 {
		t.Errorf("api.alert.move on inc-a2: got outcomes %v, want one 200 and the refusals (412, 422, 428)", outcomes)
	}
}

// TestAPIMoveAlertRace: concurrent moves of one alert with the target's
// ETag: exactly one wins, the rest get 412, none a 5xx; the alert is in
// exactly one incident.
func TestAPIMoveAlertRace(t *testing.T) {
	e := newAPIEnv(t)
	const n = 20
	codes := make(chan int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := "inc-a2"
			if i%2 == 1 {
				target = "inc-a3"
			}
			<-start
			codes <- e.do(http.MethodPost, "/v1/alerts/al-a2/move", apitest.TokAcmeAnalyst, map[string]string{"to": target, "reason": "r"}, "If-Match", `"1.0"`).code
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	// One move to each target can win: the first to inc-a2 and the first
	// to inc-a3 each match their target's ETag "1.0".
	if got[http.StatusOK] < 1 || got[http.StatusOK] > 2 || got[http.StatusOK]+got[http.StatusPreconditionFailed] != n {
		t.Fatalf("got status counts %v, want one or two 200 and the rest 412", got)
	}
	holders := 0
	for _, id := range []string{"inc-a1", "inc-a2", "inc-a3"} {
		a, _, _ := e.incidentAlerts(t, id)
		if slices.Contains(a, "al-a2") {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("al-a2 is in %d incidents, want exactly one", holders)
	}
}

// TestAPIMoveOrphanAlert: an alert of the alert queue that is in no
// incident joins one; the answer's from is null, the alert leaves the
// alert queue and the incident lists it, its time outside the incident's
// span included.
func TestAPIMoveOrphanAlert(t *testing.T) {
	e := newAPIEnv(t)
	orphan := alert.Alert{ID: "al-o1", TenantUID: "acme", RuleID: "aws.ec2.scan", RuleVersion: "1", Title: "scan", Severity: 2,
		Time: e.now.Add(-30 * time.Hour).UnixMilli(), AccountUID: apitest.AcmeAccount, Source: "vpcflow", EventIDs: []string{}}
	if err := e.store.Write(context.Background(), storage.Batch{Alerts: []alert.Alert{orphan}}); err != nil {
		t.Fatal(err)
	}
	var q alertPage
	e.get("/v1/alerts", apitest.TokAcmeAnalyst, &q)
	if got := alertIDs(q); !slices.Equal(got, []string{"al-a3", "al-o1"}) {
		t.Fatalf("the alert queue before: got %v, want al-a3, al-o1", got)
	}
	r := e.do(http.MethodPost, "/v1/alerts/al-o1/move", apitest.TokAcmeAnalyst, map[string]string{"to": "inc-a1", "reason": "the scan came first"}, "If-Match", `"1.0"`)
	if r.code != http.StatusOK {
		t.Fatalf("move al-o1 into inc-a1: got %d %.300s", r.code, r.body)
	}
	var res map[string]json.RawMessage
	var to casework.Incident
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(res["to"], &to); err != nil {
		t.Fatal(err)
	}
	if string(res["from"]) != "null" || !slices.Contains(to.AlertIDs, "al-o1") {
		t.Errorf("the answer: got %.400s, want from null and al-o1 in to", r.body)
	}
	e.get("/v1/alerts", apitest.TokAcmeAnalyst, &q)
	if got := alertIDs(q); !slices.Equal(got, []string{"al-a3"}) {
		t.Errorf("the alert queue after: got %v, want al-a3", got)
	}
	if a, _, etag := e.incidentAlerts(t, "inc-a1"); !slices.Equal(a, []string{"al-a1", "al-a2", "al-o1"}) || etag != `"1.1"` {
		t.Errorf("inc-a1 after: got alerts %v ETag %s, want al-a1, al-a2, al-o1 and \"1.1\"", a, etag)
	}
	if got := e.auditOf("inc-a1", "incident.alert.move"); len(got) != 1 {
		t.Errorf("got %d incident.alert.move entries on inc-a1, want 1", len(got))
	}
}
