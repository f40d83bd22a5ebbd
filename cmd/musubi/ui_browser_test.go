package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/api"
	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/internal/chtest"
	"github.com/musubi-xdr/musubi/replay"
	"github.com/musubi-xdr/musubi/rules"
	"github.com/musubi-xdr/musubi/storage"
	"github.com/musubi-xdr/musubi/ui"
)

// The console's end-to-end tests drive Debian's headless Chromium against
// the API and the console on the real ClickHouse, seeded with the bundled
// attack scenario replayed through the real pipeline (tenant acme) and the
// API tests' incidents (acme and globex).

const scenarioAccount = "111122223333"

// uiEnv is a running console with seeded data.
type uiEnv struct {
	url     string
	store   *storage.Store
	chainID string // the attack-chain incident of the scenario
}

func newUIEnv(t *testing.T) *uiEnv {
	t.Helper()
	db, _ := chtest.Database(t)
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	sc := storage.Default()
	sc.Addr, sc.Database, sc.StoreRaw = []string{chtest.Addr()}, db, true
	store, err := storage.Open(ctx, sc, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	apitest.SeedIncidents(t, store, time.Now().UTC().Add(-2*time.Hour))

	cfg := config.Default()
	cfg.Rules.Dir = "../../detections"
	cfg.ClickHouse.StoreRaw = true
	cfg.Tenants = []config.Tenant{
		{ID: "acme", Name: "ACME", Accounts: []string{scenarioAccount, apitest.AcmeAccount}},
		{ID: "globex", Name: "Globex", Accounts: []string{apitest.GlobexAccount}},
	}
	proc, err := replay.NewProcessor(offlineOptions(cfg, logger))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := replay.ReadFiles([]string{"../../testdata/scenarios"})
	if err != nil {
		t.Fatal(err)
	}
	batch := proc.Process(recs)
	// The inventory first, and the incidents scored by their assets as
	// serve scores them.
	seedInventory(t, store)
	if err := newAssetScorer(store, cfg.Exposure, logger, nil).Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	env := &uiEnv{store: store}
	latest := replay.LatestVersions(batch.Incidents)
	for _, in := range latest {
		if in.MergedInto == "" && in.Severity >= 4 && slices.ContainsFunc(in.Nodes, func(n incident.Node) bool { return n.ID == "ip:203.0.113.9" }) {
			env.chainID = in.ID
		}
	}
	if env.chainID == "" {
		t.Fatal("the scenario produced no attack-chain incident")
	}

	set, err := rules.Load(cfg.Rules.Dir)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	eng := rules.NewEngine(reg, logger)
	eng.Swap(set)
	seq, err := correlate.LoadRules(cfg.Rules.Dir)
	if err != nil {
		t.Fatal(err)
	}
	tok := func(secret, name string, role api.Role, tenants ...string) api.Token {
		return api.Token{Name: name, Hash: api.HashSecret(secret), Role: role, Tenants: tenants}
	}
	srv, err := api.New(api.Options{
		Store:    store,
		Rules:    rulesAdapter{engine: eng, manager: rules.NewManager(cfg.Rules.Dir, eng, logger), sequences: func() []*correlate.SequenceRule { return seq }, gatherer: reg},
		Ready:    store.Ping,
		Registry: reg,
		Gatherer: reg,
		Tokens: []api.Token{
			tok(apitest.TokAcmeAnalyst, "alice", api.RoleAnalyst, "acme"),
			tok(apitest.TokAcmeViewer, "victor", api.RoleViewer, "acme"),
			tok(apitest.TokRootAdmin, "root", api.RoleAdmin, "*"),
		},
		// bob is on the analyst roster without a token of his own: the
		// story test assigns him an incident behind alice's back.
		Directory: api.Directory{Analysts: []string{"bob"}},
		Tenants:   apiTenants(cfg.Tenants),
		Logger:    logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(ui.Mount(srv))
	t.Cleanup(ts.Close)
	env.url = ts.URL
	return env
}

// inventoryCapture is when the seeded inventory was captured: before the
// scenario's attack (2026-11-20), so the attack's incident lies on a path
// predicted before it began.
const inventoryCapture = "2026-11-01T08:00:00.000Z"

// seedInventory stores the seed account's AWS Config snapshot (an
// internet-facing IMDSv1 instance whose role writes the release bucket of
// an unguarded production pipeline) as tenant acme's inventory, captured
// at inventoryCapture.
func seedInventory(t *testing.T, store *storage.Store) {
	t.Helper()
	b, err := os.ReadFile("../../ingest/awsconfig/testdata/snapshot_seed_account.json")
	if err != nil {
		t.Fatal(err)
	}
	items, err := awsconfig.Parse(bytes.ReplaceAll(b, []byte("2026-11-30T08:00:00.000Z"), []byte(inventoryCapture)))
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]storage.InventoryRow, len(items))
	for i, it := range items {
		js, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		rows[i] = storage.InventoryRow{TenantUID: "acme", AccountUID: it.Account, ResourceType: it.ResourceType,
			ResourceID: it.ResourceID, CaptureMs: it.CaptureTime, Region: it.Region, ARN: it.ARN,
			ResourceName: it.ResourceName, Status: it.Status, Deleted: it.Deleted(), ItemUID: it.UID(), Item: js}
	}
	if err := store.WriteInventory(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
}

// chromium is the path of the browser, or "" when there is none.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserTimeout bounds a browser's start and a test's whole use of it.
const browserTimeout = 4 * time.Minute

// newBrowser starts a headless Chromium with a fresh profile; JavaScript
// exceptions on the page fail the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium()
	if path == "" {
		if os.Getenv("MUSUBI_REQUIRE_BROWSER") == "1" {
			t.Fatal("Chromium is required (MUSUBI_REQUIRE_BROWSER=1) but not installed; `make test` installs it")
		}
		t.Skip("no Chromium; install it (apt-get install chromium) or run `make test`")
	}
	// A fresh profile per browser. Chromium's helper processes may still
	// write to it for a moment after the browser exits, so it is removed
	// with retries rather than by t.TempDir.
	profile, err := os.MkdirTemp("", "musubi-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 20 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1440, 1000),
		// chromedp gives Chromium 20 s to print its DevTools address; a
		// cold start beside the race-enabled tests of other packages on a
		// loaded machine took longer ("websocket url timeout reached").
		// The bound is only there to stop a browser that never starts, so
		// it is the browser context's own.
		chromedp.WSURLReadTimeout(browserTimeout),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, browserTimeout)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			t.Errorf("JavaScript exception: %s", e.ExceptionDetails.Error())
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// browse runs browser actions and fails the test with what on error.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(step, actions...); err != nil {
		// Leave what the page showed for whoever reads the failure.
		var text, hash string
		var png []byte
		peek, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = chromedp.Run(peek, chromedp.Evaluate(`location.hash`, &hash), chromedp.Evaluate(`(document.querySelector('#node-details') ? 'node details: ' + document.querySelector('#node-details').innerText.slice(0, 1500) + '\n' : '') + document.body.innerText.slice(0, 1500)`, &text),
			chromedp.FullScreenshot(&png, 100))
		if dir := screenshotDir(t); len(png) > 0 {
			_ = os.WriteFile(filepath.Join(dir, "failure.png"), png, 0o644)
		}
		t.Fatalf("%s: %v\npage %s shows:\n%s", what, err, hash, text)
	}
}

// choose sets a <select> and fires its change event, as a user's pick does.
func choose(sel, value string) chromedp.Action {
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = %q; el.dispatchEvent(new Event('change', {bubbles: true})); return el.value; })()`, sel, value)
	var got string
	return chromedp.Evaluate(js, &got)
}

// textOf reads the text of the first element matching sel.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	browse(t, ctx, "read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	browse(t, ctx, "sign in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.Evaluate(`sessionStorage.clear()`, nil),
		chromedp.Reload(),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.SendKeys("#token", token, chromedp.ByQuery),
		chromedp.Click("#login button[type=submit]", chromedp.ByQuery),
		chromedp.WaitVisible("#queue tbody tr[data-id]", chromedp.ByQuery),
	)
}

func queueIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	var ids []string
	browse(t, ctx, "read the queue", chromedp.Evaluate(`[...document.querySelectorAll('#queue tbody tr[data-id]')].map(r => r.dataset.id)`, &ids))
	return ids
}

// screenshotDir is the git-ignored folder of the screenshots each run writes.
func screenshotDir(t *testing.T) string {
	dir := filepath.Join("..", "..", ".local", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot writes a PNG of the whole page, of the element sel names, or
// of what the window shows (sel "viewport").
func screenshot(t *testing.T, ctx context.Context, name string, sel ...string) {
	t.Helper()
	dir := screenshotDir(t)
	var png []byte
	shot := chromedp.FullScreenshot(&png, 100)
	switch {
	case len(sel) > 0 && sel[0] == "viewport":
		shot = chromedp.CaptureScreenshot(&png)
	case len(sel) > 0:
		shot = chromedp.Screenshot(sel[0], &png, chromedp.ByQuery)
	}
	browse(t, ctx, "screenshot "+name, shot)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", filepath.Join(dir, name+".png"))
}

// apiPatch changes an incident through the API, as another analyst would.
func apiPatch(t *testing.T, base, id string, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/incidents/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+apitest.TokAcmeAnalyst)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodPatch, base+"/v1/incidents/"+id, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apitest.TokAcmeAnalyst)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	req.Header.Set("If-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PATCH %s: got %d (%s), want 200", id, resp.StatusCode, b)
	}
}

// TestUIAnalystWorksTheAttackChain signs in as an analyst, filters the
// queue, opens the attack-chain incident, checks its graph, pivots on the
// attacker's address, meets a stale ETag, changes the status and closes the
// incident with a verdict; another tenant's incident stays unreachable.
func TestUIAnalystWorksTheAttackChain(t *testing.T) {
	env := newUIEnv(t)
	ctx := newBrowser(t)
	base := env.url

	signIn(t, ctx, base, apitest.TokAcmeAnalyst)
	ids := queueIDs(t, ctx)
	if !slices.Contains(ids, env.chainID) || !slices.Contains(ids, "inc-a1") {
		t.Errorf("got queue %v, want %s and inc-a1 in it", ids, env.chainID)
	}
	if slices.Contains(ids, "inc-b1") {
		t.Errorf("the queue of acme lists globex's inc-b1: %v", ids)
	}

	// First paint of the queue on a fresh load (the token is in the session).
	var paint struct {
		Painted, Response, FCP     float64
		MeStart, MeEnd, QueueStart float64
	}
	browse(t, ctx, "reload the queue",
		chromedp.Reload(),
		chromedp.WaitVisible(`body[data-queue-painted]`, chromedp.ByQuery),
		chromedp.Evaluate(`(() => {
			const m = performance.getEntriesByName('musubi:queue-painted')[0];
			const n = performance.getEntriesByType('navigation')[0];
			const f = performance.getEntriesByName('first-contentful-paint')[0];
			const rs = performance.getEntriesByType('resource');
			const me = rs.find((r) => new URL(r.name).pathname === '/v1/me');
			const q = rs.find((r) => new URL(r.name).pathname === '/v1/incidents');
			return {Painted: m ? m.startTime : -1, Response: n ? n.responseEnd : -1, FCP: f ? f.startTime : -1,
				MeStart: me ? me.startTime : -1, MeEnd: me ? me.responseEnd : -1, QueueStart: q ? q.startTime : -1};
		})()`, &paint))
	t.Logf("queue first paint: %.0f ms after navigation start (%d incidents; first contentful paint %.0f ms, page response %.0f ms; /v1/me %.0f→%.0f ms, the queue asked at %.0f ms)",
		paint.Painted, len(queueIDs(t, ctx)), paint.FCP, paint.Response, paint.MeStart, paint.MeEnd, paint.QueueStart)
	// One round trip, not two: the queue is asked for beside /v1/me (the
	// tenant picked last is in the session), not after its answer.
	if paint.QueueStart < 0 || paint.MeEnd < 0 || paint.QueueStart >= paint.MeEnd {
		t.Errorf("the queue was asked for at %.0f ms, after /v1/me answered (%.0f ms): want both at once", paint.QueueStart, paint.MeEnd)
	}
	fmt.Fprintf(os.Stderr, "musubi console: queue first paint %.0f ms on the seeded data\n", paint.Painted)
	screenshot(t, ctx, "queue")
	var all string
	browse(t, ctx, "read counts", chromedp.Text(`[data-status=all] .count`, &all, chromedp.ByQuery))
	if all != fmt.Sprint(len(ids)) {
		t.Errorf("got the All tab counting %s, want %d", all, len(ids))
	}

	// A new incident arrives: the refresh (r, the same as the timer's)
	// shows it highlighted and says so.
	now := time.Now().UnixMilli()
	fresh := incident.Incident{ID: "inc-fresh", Version: 1, TenantUID: "acme", Title: "Freshly correlated", Severity: 4, RiskScore: 50,
		Status: "new", FirstSeen: now - 1000, LastSeen: now, Stages: []string{"discovery"}, Accounts: []string{apitest.AcmeAccount}}
	if err := env.store.Write(context.Background(), storage.Batch{Incidents: []incident.Incident{fresh}}); err != nil {
		t.Fatal(err)
	}
	browse(t, ctx, "refresh the queue",
		chromedp.Focus(`#queue tbody tr[data-id]`, chromedp.ByQuery),
		chromedp.KeyEvent("r"),
		chromedp.WaitVisible(`#queue tbody tr.fresh[data-id="inc-fresh"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#new-notice`, chromedp.ByQuery))
	var sel []string
	browse(t, ctx, "move with j and k",
		chromedp.Focus(`#queue tbody tr[data-id]`, chromedp.ByQuery),
		chromedp.KeyEvent("j"), chromedp.KeyEvent("j"), chromedp.KeyEvent("k"),
		chromedp.Evaluate(`[document.activeElement.dataset.id, document.querySelector('#queue tr[aria-selected=true]').dataset.id,
			document.querySelectorAll('#queue tbody tr[data-id]')[1].dataset.id]`, &sel))
	if len(sel) != 3 || sel[0] != sel[2] || sel[1] != sel[2] {
		t.Errorf("after j j k: got focus %v, want the second row focused and selected", sel)
	}

	// Filter: only critical incidents — the attack chain.
	browse(t, ctx, "filter critical",
		choose(`select[name=min_severity]`, "5"),
		chromedp.Click(`#filters button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#queue tbody tr[data-id="`+env.chainID+`"]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('#queue tbody tr[data-id]').length === 1`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	if got := queueIDs(t, ctx); !slices.Equal(got, []string{env.chainID}) {
		t.Errorf("got critical queue %v, want only %s", got, env.chainID)
	}
	var hash string
	browse(t, ctx, "read hash", chromedp.Evaluate(`location.hash`, &hash))
	if !strings.Contains(hash, "min_severity=5") {
		t.Errorf("got location hash %q, want the filter in it", hash)
	}

	// Keyboard: focus the row, Enter opens the incident.
	browse(t, ctx, "open with the keyboard",
		chromedp.Focus(`#queue tbody tr[data-id]`, chromedp.ByQuery),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(`#graph`, chromedp.ByQuery))
	for _, node := range []string{"instance:i-0a1b2c3d4e5f60718", "host:web-1", "ip:203.0.113.9", "access_key:ASIA4WEBAPPROLE7QX2K",
		"bucket:acme-release-artifacts", "deployment:d-K7Q2X9ATK", "host:app-1", "host:app-2"} {
		// A host is named on its alerts' nodes (their second line); its
		// own node is there or behind the alert's "+N" pill.
		js := fmt.Sprintf(`document.querySelectorAll('#graph [data-node-id=%q]').length`, node)
		if host, ok := strings.CutPrefix(node, "host:"); ok {
			js = fmt.Sprintf(`(document.querySelectorAll('#graph [data-node-id=%q]').length + [...document.querySelectorAll('#graph .node.more')].filter((m) => m.getAttribute('aria-label').includes('host ' + %q)).length) === 1 && [...document.querySelectorAll('#graph .node.alert .n-sub')].some((t) => t.textContent.split(/[ ,·]+/).includes(%q)) ? 1 : 0`, node, host, host)
		}
		var n int
		browse(t, ctx, "count node "+node, chromedp.Evaluate(js, &n))
		if n != 1 {
			t.Errorf("graph node %s: got %d, want 1", node, n)
		}
	}
	var stages []string
	browse(t, ctx, "read kill chain", chromedp.Evaluate(`[...document.querySelectorAll('#killchain li')].map(li => li.dataset.stage)`, &stages))
	want := []string{"initial_access", "persistence", "discovery", "credential_access", "lateral_movement", "command_and_control", "impact"}
	if !inOrder(stages, want) {
		t.Errorf("got kill chain %v, want %v in this order", stages, want)
	}
	var strong int
	browse(t, ctx, "count labelled links", chromedp.Evaluate(`document.querySelectorAll('#graph .edge-label').length`, &strong))
	if strong == 0 {
		t.Error("the graph has no labelled alert-to-alert links")
	}
	screenshot(t, ctx, "incident")

	// A node's details: the attacker's address with its evidence events.
	browse(t, ctx, "select the attacker IP",
		chromedp.Click(`#graph [data-node-id="ip:203.0.113.9"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#pivot-link`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('#node-details details.event').length > 0`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	if s := textOf(t, ctx, "#node-details"); !strings.Contains(s, "203.0.113.9") || !strings.Contains(strings.ToLower(s), "evidence events") {
		t.Errorf("node details %.300q lack the address or the evidence", s)
	}
	screenshot(t, ctx, "incident-node", ".graph-layout")

	// Entity pivot.
	browse(t, ctx, "pivot",
		chromedp.Click(`#pivot-link`, chromedp.ByQuery),
		chromedp.WaitVisible(`#entity-incidents tbody tr[data-id="`+env.chainID+`"]`, chromedp.ByQuery))
	screenshot(t, ctx, "entity", "viewport")

	// A stale ETag: another analyst tags the incident after the page loaded.
	browse(t, ctx, "open the incident",
		chromedp.Navigate(base+"/ui/#/incidents/"+env.chainID),
		chromedp.WaitVisible(`#status-select`, chromedp.ByQuery))
	apiPatch(t, base, env.chainID, `{"tags": ["seen-by-bob"]}`)
	browse(t, ctx, "change status with a stale ETag",
		choose(`#status-select`, "in_progress"),
		chromedp.Click(`[data-action=status]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#banner.conflict`, chromedp.ByQuery))
	if s := textOf(t, ctx, "#banner"); !strings.Contains(s, "changed by someone else") {
		t.Errorf("got banner %q, want the conflict explained", s)
	}
	if s := textOf(t, ctx, "#incident-status"); s != "new" {
		t.Errorf("after the conflict the status reads %q, want new", s)
	}
	screenshot(t, ctx, "incident-conflict", "viewport")
	browse(t, ctx, "reload and change status",
		chromedp.Click(`#reload`, chromedp.ByQuery),
		chromedp.WaitNotVisible(`#banner`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#incident-tags').textContent.includes('seen-by-bob')`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		choose(`#status-select`, "in_progress"),
		chromedp.Click(`[data-action=status]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#incident-status').textContent === 'in progress'`, nil, chromedp.WithPollingTimeout(10*time.Second)))

	// Severity override and tags.
	browse(t, ctx, "override severity and tag",
		choose(`select[name=severity_override]`, "6"),
		chromedp.Click(`[data-action=severity]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('.inc-title .sev').textContent === 'Fatal *'`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.SetValue(`#tags-input`, "seen-by-bob, ransomware", chromedp.ByQuery),
		chromedp.Click(`[data-action=tags]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#incident-tags').textContent.includes('ransomware')`, nil, chromedp.WithPollingTimeout(10*time.Second)))

	// Assign, comment, close with a verdict.
	browse(t, ctx, "take it and comment",
		chromedp.Click(`[data-action=assign-me]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#incident-assignee').textContent === 'alice'`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.SendKeys(`.comment-form textarea`, "Keys used from 203.0.113.9; rotating.", chromedp.ByQuery),
		chromedp.Click(`[data-action=comment]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#comments').textContent.includes('rotating')`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	browse(t, ctx, "close with a verdict",
		choose(`#status-select`, "closed"),
		chromedp.WaitVisible(`#verdict-select`, chromedp.ByQuery),
		choose(`#verdict-select`, "true_positive"),
		chromedp.SendKeys(`#reason-input`, "keys rotated, bundle rolled back", chromedp.ByQuery),
		chromedp.Click(`[data-action=status]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#incident-status').textContent === 'closed'`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	if s := textOf(t, ctx, "#incident-verdict"); s != "true positive" {
		t.Errorf("got verdict %q, want true positive", s)
	}
	var d casework.IncidentDetail
	if code := getJSON(t, base+"/v1/incidents/"+env.chainID, apitest.TokAcmeAnalyst, &d); code != http.StatusOK {
		t.Fatalf("GET incident: %d", code)
	}
	if w := d.Workflow; w.Status != "closed" || w.Verdict != "true_positive" || w.Assignee != "alice" || w.SeverityOverride != 6 ||
		!slices.Equal(w.Tags, []string{"ransomware", "seen-by-bob"}) && !slices.Equal(w.Tags, []string{"seen-by-bob", "ransomware"}) {
		t.Errorf("got workflow %+v, want closed, true_positive, assigned to alice, severity 6, tagged seen-by-bob and ransomware", w)
	}

	// Merge a duplicate into another incident.
	browse(t, ctx, "merge inc-a3 into inc-a1",
		chromedp.Navigate(base+"/ui/#/incidents/inc-a3"),
		chromedp.WaitVisible(`[data-action=merge]`, chromedp.ByQuery),
		chromedp.SetValue(`input[name=into]`, "inc-a1", chromedp.ByQuery),
		chromedp.SetValue(`input[name=merge_reason]`, "same bucket, same rule", chromedp.ByQuery),
		chromedp.Click(`[data-action=merge]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#incident-status').textContent === 'merged'`, nil, chromedp.WithPollingTimeout(10*time.Second)))

	// Another tenant's incident is unreachable.
	browse(t, ctx, "open globex's incident",
		chromedp.Navigate(base+"/ui/#/incidents/inc-b1"),
		chromedp.WaitVisible(`#not-found`, chromedp.ByQuery))
}

// TestUIViewerSeesNoActions signs in with a viewer token: the incident is
// readable and no action is offered.
func TestUIViewerSeesNoActions(t *testing.T) {
	env := newUIEnv(t)
	ctx := newBrowser(t)
	signIn(t, ctx, env.url, apitest.TokAcmeViewer)

	// A narrow window: the queue fits its width, nothing scrolls sideways.
	var overflow bool
	browse(t, ctx, "narrow window", chromedp.EmulateViewport(400, 800),
		chromedp.Reload(),
		chromedp.WaitVisible(`#queue tbody tr[data-id]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow))
	if overflow {
		t.Error("the queue scrolls sideways in a 400 px window")
	}
	screenshot(t, ctx, "queue-narrow")
	browse(t, ctx, "wide window", chromedp.EmulateViewport(1440, 1000))
	browse(t, ctx, "open the incident",
		chromedp.Navigate(env.url+"/ui/#/incidents/"+env.chainID),
		chromedp.WaitVisible(`#graph [data-node-id="ip:203.0.113.9"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#read-only`, chromedp.ByQuery))
	var n int
	browse(t, ctx, "count actions", chromedp.Evaluate(`document.querySelectorAll('[data-action], #status-select, .comment-form').length`, &n))
	if n != 0 {
		t.Errorf("a viewer sees %d action controls, want 0", n)
	}
	if s := textOf(t, ctx, "#who"); !strings.Contains(s, "viewer") {
		t.Errorf("got header %q, want the viewer role named", s)
	}

	// Rules: listed, without the reload button.
	browse(t, ctx, "rules", chromedp.Navigate(env.url+"/ui/#/rules"),
		chromedp.WaitVisible(`#rules tbody tr`, chromedp.ByQuery))
	browse(t, ctx, "count reload", chromedp.Evaluate(`document.querySelectorAll('#reload-rules').length`, &n))
	if n != 0 {
		t.Error("a viewer sees the rule reload button")
	}

	// An admin of every tenant may reload, and picks one tenant at a time.
	signIn(t, ctx, env.url, apitest.TokRootAdmin)
	var tenants []string
	browse(t, ctx, "tenant picker", chromedp.Evaluate(`[...document.querySelectorAll('#tenant option')].map(o => o.value)`, &tenants))
	if !slices.Equal(tenants, []string{"acme", "globex"}) {
		t.Errorf("got tenant choices %v, want [acme globex]", tenants)
	}
	if ids := queueIDs(t, ctx); slices.Contains(ids, "inc-b1") {
		t.Errorf("the acme queue of a multi-tenant admin lists globex's inc-b1: %v", ids)
	}
	browse(t, ctx, "switch tenant", choose(`#tenant`, "globex"),
		chromedp.WaitVisible(`#queue tbody tr[data-id="inc-b1"]`, chromedp.ByQuery))
	if ids := queueIDs(t, ctx); slices.Contains(ids, env.chainID) {
		t.Errorf("the globex queue lists acme's %s: %v", env.chainID, ids)
	}
	browse(t, ctx, "reload rules", chromedp.Navigate(env.url+"/ui/#/rules"),
		chromedp.WaitVisible(`#reload-rules`, chromedp.ByQuery),
		chromedp.Click(`#reload-rules`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#rules-status').textContent.startsWith('Rules reloaded')`, nil, chromedp.WithPollingTimeout(20*time.Second)))
	screenshot(t, ctx, "rules", "viewport")
}

// inOrder reports whether want appears in got in this order.
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
