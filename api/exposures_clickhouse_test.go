package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/ocsf"
	"github.com/musubi-xdr/musubi/pipeline"
	"github.com/musubi-xdr/musubi/storage"
)

// seedItems is the seed account's AWS Config snapshot (an internet-facing
// IMDSv1 instance whose role writes the release bucket of an unguarded
// production pipeline), moved to account.
func seedItems(t *testing.T, account string) []awsconfig.Item {
	t.Helper()
	b, err := os.ReadFile("../ingest/awsconfig/testdata/snapshot_seed_account.json")
	if err != nil {
		t.Fatal(err)
	}
	items, err := awsconfig.Parse(bytes.ReplaceAll(b, []byte("111122223333"), []byte(account)))
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// writeItems stores items as the tenant's inventory.
func writeItems(t *testing.T, store *storage.Store, tenant string, items []awsconfig.Item) {
	t.Helper()
	rows := make([]storage.InventoryRow, len(items))
	for i, it := range items {
		js, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		rows[i] = storage.InventoryRow{TenantUID: tenant, AccountUID: it.Account, ResourceType: it.ResourceType,
			ResourceID: it.ResourceID, CaptureMs: it.CaptureTime, Region: it.Region, ARN: it.ARN,
			ResourceName: it.ResourceName, Status: it.Status, Deleted: it.Deleted(), ItemUID: it.UID(), Item: js}
	}
	if err := store.WriteInventory(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
}

// wantExposures is what exposure.Find concludes on each tenant's items,
// ordered as the API orders them.
func wantExposures(byTenant map[string][]awsconfig.Item, vulns map[string][]exposure.Vulnerability) []api.Exposure {
	var out []api.Exposure
	for tenant, items := range byTenant {
		for _, p := range exposure.Find(exposure.NewInventory(items, vulns[tenant])) {
			out = append(out, api.Exposure{TenantUID: tenant, Path: p})
		}
	}
	slices.SortFunc(out, func(a, b api.Exposure) int {
		if a.Risk != b.Risk {
			return b.Risk - a.Risk
		}
		if a.TenantUID != b.TenantUID {
			if a.TenantUID < b.TenantUID {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out
}

func exposureIDs(es []api.Exposure) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.TenantUID+"/"+e.ID)
	}
	return out
}

// TestExposures: GET /v1/exposures finds each tenant's predicted paths on
// its inventory in ClickHouse as of the time asked, with hops, evidence
// and countermeasures; a token sees only its tenants'; the filters, the
// inventory's history and the cursor pages behave as documented.
func TestExposures(t *testing.T) {
	e := newAPIEnv(t)
	acme, globex := seedItems(t, apitest.AcmeAccount), seedItems(t, apitest.GlobexAccount)
	writeItems(t, e.store, "acme", acme)
	writeItems(t, e.store, "globex", globex)
	// Inspector's exploitable finding on globex's web server, open, then
	// closed the next day: rows as serve derives them from the events.
	finding, err := os.ReadFile("../ingest/inspector/testdata/ec2_critical_exploitable.json")
	if err != nil {
		t.Fatal(err)
	}
	finding = bytes.ReplaceAll(finding, []byte("111122223333"), []byte(apitest.GlobexAccount))
	closed := bytes.Replace(bytes.Replace(finding, []byte(`"status": "ACTIVE"`), []byte(`"status": "CLOSED"`), 1),
		[]byte(`"updatedAt": "Nov 30, 2026, 7:45:10 AM"`), []byte(`"updatedAt": "Dec 1, 2026, 7:45:10 AM"`), 1)
	var findings []ocsf.Event
	for _, rec := range [][]byte{finding, closed} {
		evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, rec)
		if len(errs) != 0 || len(evs) != 1 {
			t.Fatalf("inspector fixture: %d events, %v", len(evs), errs)
		}
		evs[0].Metadata.TenantUID = "globex"
		findings = append(findings, evs[0])
	}
	v, ok := exposure.VulnerabilityOf(&findings[0])
	if !ok || !v.Serious() {
		t.Fatal("the Inspector fixture is not a serious vulnerability on an instance")
	}
	globexVulns := map[string][]exposure.Vulnerability{"globex": {v}}
	vulnRows := pipeline.InventoryOf(findings)
	if len(vulnRows) != 2 || !vulnRows[1].Deleted {
		t.Fatalf("got %d finding rows, want the open finding and its closing", len(vulnRows))
	}
	if err := e.store.WriteInventory(context.Background(), vulnRows); err != nil {
		t.Fatal(err)
	}
	captured := time.UnixMilli(acme[0].CaptureTime).UTC()
	asOf := captured.Add(time.Hour).Format(time.RFC3339)

	// A later change requires IMDSv2 on acme's web instance.
	var hardened awsconfig.Item
	for _, it := range acme {
		if it.Instance != nil && it.Instance.IMDSv1Allowed() && it.Instance.PublicIP != "" {
			hardened = it
		}
	}
	if hardened.Instance == nil {
		t.Fatal("the seed snapshot has no public IMDSv1 instance: the test would prove nothing")
	}
	inst := *hardened.Instance
	inst.HTTPTokens = "required"
	hardened.Instance, hardened.CaptureTime, hardened.StateID = &inst, hardened.CaptureTime+int64(2*time.Hour/time.Millisecond), "hardened"
	writeItems(t, e.store, "acme", []awsconfig.Item{hardened})

	list := func(token string, q url.Values) api.ExposurePage {
		t.Helper()
		var page api.ExposurePage
		e.get("/v1/exposures?"+q.Encode(), token, &page)
		return page
	}

	t.Run("tenant scope and content", func(t *testing.T) {
		want := wantExposures(map[string][]awsconfig.Item{"acme": acme}, nil)
		if !slices.ContainsFunc(want, func(x api.Exposure) bool { return x.Kind == exposure.KindInternetToProduction }) {
			t.Fatal("no internet path on the seed account: the test would prove nothing")
		}
		page := list(apitest.TokAcmeViewer, url.Values{"as_of": {asOf}})
		if got, w := exposureIDs(page.Items), exposureIDs(want); !slices.Equal(got, w) {
			t.Fatalf("acme: got paths %q, want %q", got, w)
		}
		gotJS, _ := json.Marshal(page.Items)
		wantJS, _ := json.Marshal(want)
		if !bytes.Equal(gotJS, wantJS) {
			t.Errorf("acme paths differ from exposure.Find's:\n got %s\nwant %s", gotJS, wantJS)
		}
		if page.AsOf.Format(time.RFC3339) != asOf || page.InventoryTruncated || page.NextCursor != "" {
			t.Errorf("got as_of %s, truncated %v, next %q; want %s, false, none", page.AsOf, page.InventoryTruncated, page.NextCursor, asOf)
		}
		for _, p := range page.Items {
			if len(p.Hops) == 0 || len(p.Countermeasures) == 0 {
				t.Errorf("path %s has %d hops and %d countermeasures, want both", p.ID, len(p.Hops), len(p.Countermeasures))
			}
			for _, h := range p.Hops {
				if len(h.Evidence) == 0 {
					t.Errorf("path %s: hop %s→%s has no evidence", p.ID, h.From.Value, h.To.Value)
				}
			}
		}

		both := wantExposures(map[string][]awsconfig.Item{"acme": acme, "globex": globex}, globexVulns)
		if got, w := exposureIDs(list(apitest.TokRootAdmin, url.Values{"as_of": {asOf}}).Items), exposureIDs(both); !slices.Equal(got, w) {
			t.Errorf("root: got paths %q, want %q", got, w)
		}
		if got, w := exposureIDs(list(apitest.TokGlobexAnalyst, url.Values{"as_of": {asOf}}).Items), exposureIDs(wantExposures(map[string][]awsconfig.Item{"globex": globex}, globexVulns)); !slices.Equal(got, w) {
			t.Errorf("globex: got paths %q, want %q", got, w)
		}
		if got := list(apitest.TokRootAdmin, url.Values{"as_of": {asOf}, "tenant": {"globex"}}).Items; slices.ContainsFunc(got, func(x api.Exposure) bool { return x.TenantUID != "globex" }) {
			t.Errorf("tenant=globex returned other tenants' paths: %q", exposureIDs(got))
		}
	})

	t.Run("as of", func(t *testing.T) {
		if got := list(apitest.TokAcmeViewer, url.Values{"as_of": {captured.Add(-time.Second).Format(time.RFC3339)}}).Items; len(got) != 0 {
			t.Errorf("before the snapshot: got paths %q, want none", exposureIDs(got))
		}
		// After IMDSv2 is required, the internet path is gone (now, the
		// default as_of, is after it) and the role variant stays.
		now := list(apitest.TokAcmeViewer, url.Values{})
		latest := []awsconfig.Item{hardened}
		for _, it := range acme {
			if it.ResourceID != hardened.ResourceID {
				latest = append(latest, it)
			}
		}
		want := wantExposures(map[string][]awsconfig.Item{"acme": latest}, nil)
		if got, w := exposureIDs(now.Items), exposureIDs(want); !slices.Equal(got, w) {
			t.Errorf("after IMDSv2: got paths %q, want %q", got, w)
		}
		before := list(apitest.TokAcmeViewer, url.Values{"as_of": {asOf}})
		if len(now.Items) >= len(before.Items) {
			t.Errorf("requiring IMDSv2 left %d paths of %d, want fewer", len(now.Items), len(before.Items))
		}
	})

	t.Run("filters", func(t *testing.T) {
		all := list(apitest.TokRootAdmin, url.Values{"as_of": {asOf}}).Items
		for _, kind := range []exposure.Kind{exposure.KindInternetToProduction, exposure.KindRoleToProduction} {
			got := list(apitest.TokRootAdmin, url.Values{"as_of": {asOf}, "kind": {string(kind)}}).Items
			want := slices.DeleteFunc(slices.Clone(all), func(x api.Exposure) bool { return x.Kind != kind })
			if len(want) == 0 || !slices.Equal(exposureIDs(got), exposureIDs(want)) {
				t.Errorf("kind %s: got %q, want %q (not empty)", kind, exposureIDs(got), exposureIDs(want))
			}
		}
		got := list(apitest.TokRootAdmin, url.Values{"as_of": {asOf}, "account": {apitest.GlobexAccount}}).Items
		if len(got) == 0 || slices.ContainsFunc(got, func(x api.Exposure) bool { return x.Account != apitest.GlobexAccount }) {
			t.Errorf("account %s: got %q", apitest.GlobexAccount, exposureIDs(got))
		}
		top := all[0].Risk
		got = list(apitest.TokRootAdmin, url.Values{"as_of": {asOf}, "min_risk": {strconv.Itoa(top)}}).Items
		want := slices.DeleteFunc(slices.Clone(all), func(x api.Exposure) bool { return x.Risk < top })
		if len(want) == len(all) || !slices.Equal(exposureIDs(got), exposureIDs(want)) {
			t.Errorf("min_risk %d: got %q, want %q (fewer than all)", top, exposureIDs(got), exposureIDs(want))
		}
		for _, q := range []string{"min_risk=101", "min_risk=x", "kind=lateral", "account=12", "as_of=yesterday", "limit=0", "colour=red", "tenant=globex"} {
			if r := e.do(http.MethodGet, "/v1/exposures?"+q, apitest.TokAcmeViewer, nil); r.code != http.StatusBadRequest {
				t.Errorf("?%s: got %d, want 400", q, r.code)
			}
		}
		if r := e.do(http.MethodGet, "/v1/exposures", "", nil); r.code != http.StatusUnauthorized {
			t.Errorf("no token: got %d, want 401", r.code)
		}
	})

	t.Run("pages", func(t *testing.T) {
		all := list(apitest.TokRootAdmin, url.Values{}).Items
		if len(all) < 2 {
			t.Fatalf("%d paths: paging would prove nothing", len(all))
		}
		var got []api.Exposure
		q := url.Values{"limit": {"1"}}
		first := ""
		for range len(all) + 1 {
			page := list(apitest.TokRootAdmin, q)
			if len(page.Items) != 1 {
				t.Fatalf("got a page of %d, want 1", len(page.Items))
			}
			got = append(got, page.Items...)
			if first == "" {
				first = page.NextCursor
			}
			if page.NextCursor == "" {
				break
			}
			q.Set("cursor", page.NextCursor)
		}
		if !slices.Equal(exposureIDs(got), exposureIDs(all)) {
			t.Errorf("pages: got %q, want %q", exposureIDs(got), exposureIDs(all))
		}
		// A cursor is bound to its query and tenants.
		for _, q := range []string{"limit=1&min_risk=1&cursor=" + first, "cursor=" + first + "x"} {
			if r := e.do(http.MethodGet, "/v1/exposures?"+q, apitest.TokRootAdmin, nil); r.code != http.StatusBadRequest {
				t.Errorf("?%s: got %d, want 400", q, r.code)
			}
		}
		if r := e.do(http.MethodGet, "/v1/exposures?limit=1&cursor="+first, apitest.TokAcmeViewer, nil); r.code != http.StatusBadRequest {
			t.Errorf("another token's cursor: got %d, want 400", r.code)
		}
	})

	t.Run("incident", func(t *testing.T) {
		session := "arn:aws:sts::" + apitest.AcmeAccount + ":assumed-role/web-frontend-role/" + hardened.ResourceID
		object := "acme-release-artifacts/storefront/release.zip"
		mk := func(id string, first time.Time) incident.Incident {
			in := incident.Incident{ID: id, Version: 1, TenantUID: "acme", Title: "bundle tampering", Severity: ocsf.SeverityHigh,
				Status: "new", FirstSeen: first.UnixMilli(), LastSeen: first.Add(time.Minute).UnixMilli(), Accounts: []string{apitest.AcmeAccount}}
			for _, n := range []incident.Node{
				{ID: "session", Kind: incident.NodeEntity, Entity: ocsf.EntitySession, Value: session},
				{ID: "object", Kind: incident.NodeEntity, Entity: ocsf.EntityObject, Value: object},
				{ID: "ip", Kind: incident.NodeEntity, Entity: ocsf.EntityIP, Value: "198.51.100.77"},
			} {
				n.Title, n.FirstSeen = n.Value, in.FirstSeen
				in.Nodes = append(in.Nodes, n)
			}
			return in
		}
		// One incident before IMDSv2 was required, one after.
		before, after := mk("inc-xp-before", captured.Add(time.Hour)), mk("inc-xp-after", captured.Add(3*time.Hour))
		if err := e.store.Write(context.Background(), storage.Batch{Incidents: []incident.Incident{before, after}}); err != nil {
			t.Fatal(err)
		}
		walked := func(id, token string) api.IncidentExposures {
			t.Helper()
			var got api.IncidentExposures
			e.get("/v1/incidents/"+id+"/exposures", token, &got)
			return got
		}
		kinds := func(got api.IncidentExposures) []string {
			var out []string
			for _, m := range got.Items {
				out = append(out, string(m.Path.Kind))
				if len(m.Shared) != 2 || m.Shared[0].Entity != "session:"+session || m.Shared[1].Node.Value != object {
					t.Errorf("%s: got shared %+v, want the session on the role and the object", m.Path.ID, m.Shared)
				}
				if m.Since != acme[0].CaptureTime {
					t.Errorf("%s: since %d, want the snapshot's capture %d", m.Path.ID, m.Since, acme[0].CaptureTime)
				}
			}
			return out
		}
		got := walked(before.ID, apitest.TokAcmeViewer)
		if k := kinds(got); !slices.Equal(k, []string{string(exposure.KindInternetToProduction), string(exposure.KindRoleToProduction)}) {
			t.Errorf("before IMDSv2: got paths %q, want the internet path and its role variant", k)
		}
		if !got.AsOf.Equal(time.UnixMilli(before.FirstSeen)) || got.IncidentID != before.ID {
			t.Errorf("got incident %s as of %s, want %s as of its first event", got.IncidentID, got.AsOf, before.ID)
		}
		if k := kinds(walked(after.ID, apitest.TokAcmeViewer)); !slices.Equal(k, []string{string(exposure.KindRoleToProduction)}) {
			t.Errorf("after IMDSv2: got paths %q, want the role variant only", k)
		}
		// The seeded incident's bucket lies on no path.
		if got := walked("inc-a1", apitest.TokAcmeViewer); len(got.Items) != 0 {
			t.Errorf("inc-a1: got %d paths, want none", len(got.Items))
		}
		if r := e.do(http.MethodGet, "/v1/incidents/"+before.ID+"/exposures", apitest.TokGlobexAnalyst, nil); r.code != http.StatusNotFound {
			t.Errorf("another tenant's incident: got %d, want 404", r.code)
		}
		if r := e.do(http.MethodGet, "/v1/incidents/"+before.ID+"/exposures?as_of=2026-01-01T00:00:00Z", apitest.TokAcmeViewer, nil); r.code != http.StatusBadRequest {
			t.Errorf("an unknown parameter: got %d, want 400", r.code)
		}
	})

	t.Run("vulnerabilities", func(t *testing.T) {
		cve := func(items []api.Exposure) bool {
			for _, p := range items {
				if p.Kind != exposure.KindInternetToProduction {
					continue
				}
				for _, h := range p.Hops {
					if slices.ContainsFunc(h.Evidence, func(e string) bool { return strings.Contains(e, v.CVE) }) {
						return true
					}
				}
			}
			return false
		}
		open := list(apitest.TokGlobexAnalyst, url.Values{"as_of": {asOf}})
		want := wantExposures(map[string][]awsconfig.Item{"globex": globex}, globexVulns)
		gotJS, _ := json.Marshal(open.Items)
		wantJS, _ := json.Marshal(want)
		if !bytes.Equal(gotJS, wantJS) || !cve(open.Items) {
			t.Errorf("with the open finding: got %s\nwant %s (the internet path with %s as evidence)", gotJS, wantJS, v.CVE)
		}
		after := list(apitest.TokGlobexAnalyst, url.Values{"as_of": {captured.Add(48 * time.Hour).Format(time.RFC3339)}})
		if cve(after.Items) || len(after.Items) == 0 {
			t.Errorf("after the finding closed: got %d paths, CVE evidence %v; want the IMDSv1 path without the CVE", len(after.Items), cve(after.Items))
		}
		// acme has no finding: its paths name no CVE.
		if cve(list(apitest.TokAcmeViewer, url.Values{"as_of": {asOf}}).Items) {
			t.Error("acme's paths name globex's vulnerability")
		}
	})
}
