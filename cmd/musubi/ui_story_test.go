package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/musubi-xdr/musubi/casework"
	"github.com/musubi-xdr/musubi/internal/apitest"
)

// The incident page tells the attack's story: these tests open the
// scenario's attack-chain incident in headless Chromium and check what an
// analyst reads — the summary, a graph whose labels neither overlap nor get
// cut and whose arrows run forward in time, the text contrast — and that
// the analyst's work survives a conflict.

// storyDocs, when MUSUBI_UI_DOCS=1, is where the screenshots of docs/ui.md
// are written (`make ui-screenshots`).
func storyDocs(t *testing.T) string {
	if os.Getenv("MUSUBI_UI_DOCS") != "1" {
		return ""
	}
	dir := filepath.Join("..", "..", "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shot writes a screenshot to .local/screenshots and, for the docs, to
// docs/img.
func shot(t *testing.T, ctx context.Context, name string, action func(*[]byte) chromedp.Action) {
	t.Helper()
	var png []byte
	browse(t, ctx, "screenshot "+name, action(&png))
	for _, dir := range []string{screenshotDir(t), storyDocs(t)} {
		if dir == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// openIncident loads the incident page afresh (a new navigation, so the
// Performance API times this page alone) and waits for its first paint.
func openIncident(t *testing.T, ctx context.Context, base, id string) (painted, fcp float64) {
	t.Helper()
	var p struct {
		Painted, FCP, API, Graph float64
		Calls                    []string
	}
	browse(t, ctx, "open the incident",
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(base+"/ui/#/incidents/"+id),
		chromedp.WaitVisible(`body[data-incident-painted]`, chromedp.ByQuery),
		chromedp.WaitVisible(`body[data-graph-drawn]`, chromedp.ByQuery),
		chromedp.Evaluate(`(() => {
			const g = performance.getEntriesByName('musubi:incident-graph')[0];
			const m = performance.getEntriesByName('musubi:incident-painted')[0];
			const f = performance.getEntriesByName('first-contentful-paint')[0];
			const d = performance.getEntriesByName('musubi:incident-data')[0];
			// Every request until the first paint: when it started, when
			// its answer began and ended (ms after navigation start).
			const calls = performance.getEntriesByType('resource').filter((r) => !m || r.startTime <= m.startTime).map((r) =>
				new URL(r.name).pathname.replace(/^.*\/(v1|ui)\//, '$1/') + new URL(r.name).search + ' ' + r.startTime.toFixed(0) + '→' + r.responseStart.toFixed(0) + '→' + r.responseEnd.toFixed(0) + ' (' + Math.round(r.encodedBodySize / 1024) + ' KiB)');
			return {Painted: m ? m.startTime : -1, FCP: f ? f.startTime : -1, API: d ? d.startTime : -1, Graph: g ? g.startTime : -1, Calls: calls};
		})()`, &p))
	t.Logf("incident page: first paint %.0f ms after navigation start; the incident had arrived at %.0f ms; the graph was drawn at %.0f ms; requests (start→first byte→end ms):\n\t%s",
		p.Painted, p.API, p.Graph, strings.Join(p.Calls, "\n\t"))
	return p.Painted, p.FCP
}

// graphReport is what the page measures of its own graph.
type graphReport struct {
	Overlaps, Cut, Backward, Small []string
	Labels, Arrows, Texts          int
	AllLabels, Shortened           int
	SVGWidth, WrapWidth, SVGHeight float64
	WrapScroll, WrapScrollY        float64
	PageScroll, MinFont            float64
	ViewHeight, WindowHeight       float64
	SVGTop, SVGBottom              float64
}

const measureGraph = `(() => {
	const r = {Overlaps: [], Cut: [], Backward: [], Small: [], Labels: 0, Arrows: 0, Texts: 0};
	const svg = document.querySelector('#graph');
	const box = (el) => el.getBoundingClientRect();
	const shown = (el) => { const b = box(el); return b.width > 0 && b.height > 0 && getComputedStyle(el).display !== 'none'; };
	const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
	const name = (el) => (el.closest('[data-node-id]') || el).getAttribute('data-node-id') || el.textContent.slice(0, 60);
	// Boxes that must not overlap: nodes, stage names and the visible link
	// labels.
	const items = [];
	for (const t of svg.querySelectorAll('.lane-label')) items.push({el: t, b: box(t), what: 'stage "' + t.textContent + '"'});
	for (const n of svg.querySelectorAll('.node')) items.push({el: n, b: box(n.querySelector('rect')), what: 'node ' + n.dataset.nodeId});
	for (const l of svg.querySelectorAll('.edge-label')) if (shown(l)) { r.Labels++; items.push({el: l, b: box(l.querySelector('rect')), what: 'label "' + l.textContent + '"'}); }
	for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
		if (hit(items[i].b, items[j].b)) r.Overlaps.push(items[i].what + ' × ' + items[j].what);
	}
	// Every text inside the box it belongs to (a node, a label, a lane).
	const inside = (t, b) => t.left >= b.left - 0.5 && t.right <= b.right + 0.5 && t.top >= b.top - 0.5 && t.bottom <= b.bottom + 0.5;
	for (const t of svg.querySelectorAll('.node text, .edge-label text')) {
		if (!shown(t.closest('g'))) continue;
		const rect = t.closest('g').querySelector('rect');
		if (!inside(box(t), box(rect))) r.Cut.push(name(t) + ': "' + t.textContent + '"');
	}
	// A stage's name lies on the tint of its stage.
	const lanes = [...svg.querySelectorAll('rect.lane')];
	for (const t of svg.querySelectorAll('.lane-label')) {
		const lane = lanes.find((l) => l.dataset.lane === t.dataset.lane && inside(box(t), box(l)));
		if (!lane) r.Cut.push('stage "' + t.textContent + '"');
	}
	// Arrows between alerts: from the earlier alert to the later one, and
	// to the right unless both happened at the same instant.
	const node = (id) => svg.querySelector('[data-members~="' + CSS.escape(id) + '"]');
	for (const p of svg.querySelectorAll('.edge.strong')) {
		r.Arrows++;
		const a = node(p.dataset.source), b = node(p.dataset.target);
		const ta = Number(a.dataset.time), tb = Number(b.dataset.time);
		const s = p.getPointAtLength(0), e = p.getPointAtLength(p.getTotalLength());
		const what = a.dataset.nodeId + ' → ' + b.dataset.nodeId;
		if (tb < ta) r.Backward.push(what + ': the arrow points to an earlier alert');
		else if (tb > ta && !(e.x > s.x)) r.Backward.push(what + ': later in time but not to the right');
		else if (tb === ta && e.x < s.x - 0.5) r.Backward.push(what + ': same instant, arrow to the left');
	}
	// The size each node and link label is drawn at: its font size times
	// the scale of the SVG's transform to the screen.
	r.MinFont = 1e9;
	for (const t of svg.querySelectorAll('.node text, .edge-label text, .lane-label')) {
		const g = t.closest('g.node, g.edge-label');
		if (g && !shown(g)) continue;
		const m = t.getScreenCTM();
		const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
		r.Texts++;
		r.MinFont = Math.min(r.MinFont, px);
		if (px < 11 - 0.01) r.Small.push(name(t) + ': "' + t.textContent + '" at ' + px.toFixed(1) + ' px');
	}
	const wrap = document.querySelector('#graph-wrap');
	r.SVGWidth = box(svg).width; r.WrapWidth = wrap.clientWidth; r.SVGHeight = box(svg).height;
	r.WrapScroll = wrap.scrollWidth - wrap.clientWidth;
	r.WrapScrollY = wrap.scrollHeight - wrap.clientHeight;
	r.PageScroll = document.documentElement.scrollWidth - window.innerWidth;
	r.AllLabels = svg.querySelectorAll('.edge-label').length;
	r.Shortened = [...svg.querySelectorAll('.edge-label')].filter((l) => l.querySelector('text').textContent !== l.dataset.full).length;
	// The graph and its toolbar against the window's height, scrolled to
	// the top of the graph.
	const view = document.querySelector('.graph-view');
	view.scrollIntoView({block: 'start'});
	r.ViewHeight = box(view).height; r.WindowHeight = window.innerHeight;
	r.SVGTop = box(svg).top; r.SVGBottom = box(svg).bottom;
	window.scrollTo(0, 0);
	return r;
})()`

// measureContrast finds text whose contrast with what is behind it is
// below WCAG AA (4.5:1; 3:1 for large text).
const measureContrast = `(() => {
	const parse = (c) => { const m = c.match(/[\d.]+/g); if (!m) return null; const [r, g, b, a] = m.map(Number); return {r, g, b, a: a === undefined ? 1 : a}; };
	const lum = ({r, g, b}) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
	const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
	const bgOf = (el) => {
		for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
			const c = parse(getComputedStyle(e).backgroundColor);
			if (c && c.a >= 0.99) return c;
		}
		return {r: 255, g: 255, b: 255, a: 1};
	};
	const fails = [];
	let checked = 0;
	const check = (el, fg, bg, text) => {
		const cs = getComputedStyle(el);
		const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		const x = ratio(fg, bg);
		checked++;
		if (x < need) fails.push(text.trim().slice(0, 40) + ' ' + x.toFixed(2) + ':1 (' + cs.color + ' on ' + JSON.stringify(bg) + ')');
	};
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = walker.nextNode(); n; n = walker.nextNode()) {
		const el = n.parentElement;
		if (!n.textContent.trim() || !el || el.closest('svg, [hidden], .sr-only, option, button:disabled, title')) continue;
		const r = el.getBoundingClientRect();
		if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
		check(el, parse(getComputedStyle(el).color), bgOf(el), n.textContent);
	}
	for (const t of document.querySelectorAll('#graph text')) {
		const g = t.closest('g.node, g.edge-label');
		if (g && getComputedStyle(g).display === 'none') continue;
		let bg;
		if (g) bg = parse(getComputedStyle(g.querySelector('rect')).fill);
		else {
			const tb = t.getBoundingClientRect();
			const lane = [...document.querySelectorAll('#graph rect.lane')].find((l) => { const b = l.getBoundingClientRect(); return tb.top >= b.top - 1 && tb.bottom <= b.bottom + 1 && tb.left >= b.left - 1 && tb.right <= b.right + 1; });
			bg = lane ? parse(getComputedStyle(lane).fill) : {r: 255, g: 255, b: 255, a: 1};
		}
		check(t, parse(getComputedStyle(t).fill), bg, t.textContent);
	}
	return {fails, checked};
})()`

// TestUIIncidentStory opens the attack chain in a 1440×900 window: the
// summary names the key entities, the whole graph fits the width and, with
// its toolbar, the window's height, no two labels overlap
// and none is cut, arrows point forward in time, text has enough contrast;
// at 400 px nothing scrolls sideways. It reports the page's first paint.
func TestUIIncidentStory(t *testing.T) {
	env := newUIEnv(t)
	ctx := newBrowser(t)
	signIn(t, ctx, env.url, apitest.TokAcmeViewer)
	browse(t, ctx, "a 1440×900 window", chromedp.EmulateViewport(1440, 900))

	painted, fcp := openIncident(t, ctx, env.url, env.chainID)
	t.Logf("incident first paint: %.0f ms after navigation start (first contentful paint %.0f ms)", painted, fcp)
	fmt.Fprintf(os.Stderr, "musubi console: incident page first paint %.0f ms (first contentful paint %.0f ms) on the demo incident\n", painted, fcp)

	shot(t, ctx, "incident-1440", func(b *[]byte) chromedp.Action { return chromedp.CaptureScreenshot(b) })

	// The summary.
	var story string
	var full []string
	browse(t, ctx, "read the story",
		chromedp.Text(`#story`, &story, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll('#story code.id')].map(c => c.dataset.full)`, &full))
	for _, want := range []string{"web-1", "i-0a1b", "web-app-role", "203.0.113.9", "acme-release-artifacts", "d-K7Q2X9ATK", "app-1", "app-2", "Ransom note written"} {
		if !strings.Contains(story, want) {
			t.Errorf("the story does not name %q:\n%s", want, story)
		}
	}
	for _, want := range []string{"i-0a1b2c3d4e5f60718", "ASIA4WEBAPPROLE7QX2K", "203.0.113.9"} {
		if !slices.Contains(full, want) {
			t.Errorf("the story's identifiers %v lack the full value %s", full, want)
		}
	}
	if !strings.Contains(story, "ASIA…QX2K") {
		t.Errorf("the story shows the access key as %q, want it shortened in the middle (ASIA…QX2K)", story)
	}
	var scope map[string]string
	browse(t, ctx, "read the impact scope", chromedp.Evaluate(`Object.fromEntries([...document.querySelectorAll('#impact .impact-row')].map(r => [r.dataset.kind, r.querySelector('.count').textContent]))`, &scope))
	if scope["Hosts"] != "3" || scope["Buckets"] != "1" || scope["Deployments"] != "1" || scope["Outside IPs"] == "" {
		t.Errorf("got impact scope %v, want 3 hosts, 1 bucket, 1 deployment and the outside IPs", scope)
	}
	var tactics []string
	browse(t, ctx, "read the kill chain", chromedp.Evaluate(`[...document.querySelectorAll('#killchain > li')].map(li => li.dataset.stage + '=' + li.querySelector('strong').textContent)`, &tactics))
	if len(tactics) < 7 || tactics[0] != "initial_access=Initial Access" || tactics[1] != "persistence=Persistence" {
		t.Errorf("got kill-chain cards %v, want one tactic per stage (initial_access=Initial Access, persistence=Persistence, …)", tactics)
	}

	// The graph.
	var g graphReport
	browse(t, ctx, "measure the graph", chromedp.Evaluate(measureGraph, &g))
	t.Logf("graph at 1440×900: %.0f×%.0f px in a %.0f px frame, with its toolbar %.0f px tall in a %.0f px window, smallest label %.1f px (of %d), %d of %d link labels visible (%d shortened), %d arrows", g.SVGWidth, g.SVGHeight, g.WrapWidth, g.ViewHeight, g.WindowHeight, g.MinFont, g.Texts, g.Labels, g.AllLabels, g.Shortened, g.Arrows)
	if g.ViewHeight > g.WindowHeight || g.SVGTop < 0 || g.SVGBottom > g.WindowHeight {
		t.Errorf("the graph does not fit the 1440×900 window: with its toolbar %.0f px tall in a %.0f px window; scrolled to it, the drawing spans y %.0f–%.0f", g.ViewHeight, g.WindowHeight, g.SVGTop, g.SVGBottom)
	}
	// Folded steps leave about 20 arrows: every one is labelled, and every
	// label is in view on open (some shortened, the full text on hover).
	if g.Arrows < 15 || g.AllLabels != g.Arrows || g.Labels != g.AllLabels {
		t.Errorf("got %d arrows, %d link labels and %d of them visible on open, want the chain's links drawn, each labelled, every label in view", g.Arrows, g.AllLabels, g.Labels)
	}
	if len(g.Overlaps) > 0 {
		t.Errorf("%d overlaps in the graph: %v", len(g.Overlaps), g.Overlaps)
	}
	if len(g.Cut) > 0 {
		t.Errorf("%d cut labels: %v", len(g.Cut), g.Cut)
	}
	if len(g.Backward) > 0 {
		t.Errorf("%d arrows not forward in time: %v", len(g.Backward), g.Backward)
	}
	if g.WrapScroll > 1 || g.WrapScrollY > 1 || g.PageScroll > 1 || g.SVGWidth > g.WrapWidth+1 {
		t.Errorf("the whole graph is not visible at 1440 px on open: %.0f px in a %.0f px frame, frame scrolls %.0f px across and %.0f px down, page %.0f px across",
			g.SVGWidth, g.WrapWidth, g.WrapScroll, g.WrapScrollY, g.PageScroll)
	}
	if g.Texts < 50 || len(g.Small) > 0 {
		t.Errorf("at 1440 px on open %d of %d graph labels are drawn below 11 px (the smallest at %.1f px): %v", len(g.Small), g.Texts, g.MinFont, g.Small)
	}
	var labels []string
	browse(t, ctx, "read link labels", chromedp.Evaluate(`[...document.querySelectorAll('#graph .edge-label')].map(l => l.dataset.full)`, &labels))
	if !slices.Contains(labels, "same access key ASIA…QX2K · +1 m") {
		t.Errorf("got link labels %v, want them to say what links the alerts (same access key ASIA…QX2K · +1 m)", labels)
	}
	// A "+N" pill opens the minor entities of its alert.
	var more struct {
		N, Before, After int
		Label            string
	}
	browse(t, ctx, "open a +N pill",
		chromedp.Evaluate(`(() => {
			const m = document.querySelector('#graph .node.more');
			window.__more = {N: Number(m.querySelector('text').textContent.replace('+', '')), Before: document.querySelectorAll('#graph .node.entity').length, Label: m.getAttribute('aria-label')};
			delete document.body.dataset.graphDrawn;
			return true;
		})()`, nil),
		chromedp.Click(`#graph .node.more`, chromedp.ByQuery),
		chromedp.Poll(`document.body.dataset.graphDrawn && document.querySelectorAll('#graph .node.entity').length !== window.__more.Before`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`({...window.__more, After: document.querySelectorAll('#graph .node.entity').length})`, &more))
	if more.N < 1 || more.After != more.Before+more.N || !strings.HasPrefix(more.Label, "show ") {
		t.Errorf("a +N pill (%q) opened %d → %d entities, want %d more", more.Label, more.Before, more.After, more.N)
	}
	// "Observed" links appear for the selected node only.
	var observed [2]int
	browse(t, ctx, "select the attacker IP",
		chromedp.Evaluate(`document.querySelectorAll('#graph .edge.observed').length`, &observed[0]),
		chromedp.Click(`#graph [data-node-id="ip:203.0.113.9"]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('#node-details details.event').length > 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`document.querySelectorAll('#graph .edge.observed').length`, &observed[1]))
	if observed[0] != 0 || observed[1] == 0 {
		t.Errorf("got %d observed links before and %d after selecting the IP, want none before and some after", observed[0], observed[1])
	}
	// Human evidence: the API call says who, from where, to what.
	var ev []string
	browse(t, ctx, "read evidence", chromedp.Evaluate(`[...document.querySelectorAll('#evidence details.event > summary')].map(s => s.textContent)`, &ev))
	for _, want := range []string{"API call: s3 GetObject", "Process launch: sh -c id;uname -a", "Connection: 10.0.1.10:48122 → 169.254.169.254:80", "Finding: UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"} {
		if !slices.ContainsFunc(ev, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no evidence reads %q in %v", want, ev)
		}
	}
	var title string
	browse(t, ctx, "read the tab title", chromedp.Title(&title))
	if !strings.Contains(title, env.chainID) || !strings.Contains(title, "Instance role credentials") {
		t.Errorf("got tab title %q, want the incident named", title)
	}

	var contrast struct {
		Fails   []string
		Checked int
	}
	browse(t, ctx, "measure contrast", chromedp.Evaluate(measureContrast, &contrast))
	if contrast.Checked < 100 || len(contrast.Fails) > 0 {
		t.Errorf("contrast below 4.5:1 in %d of %d texts: %v", len(contrast.Fails), contrast.Checked, contrast.Fails)
	}
	var badges []string
	browse(t, ctx, "badge contrast", chromedp.Evaluate(`(() => {
		const out = [];
		for (let i = 0; i <= 6; i++) {
			const s = document.createElement('span'); s.className = 'sev sev-' + i; s.textContent = 'x'; document.body.append(s);
			out.push(getComputedStyle(s).color + ' on ' + getComputedStyle(s).backgroundColor); s.remove();
		}
		return out;
	})()`, &badges))
	for i, b := range badges {
		if r := contrastOf(b); r < 4.5 {
			t.Errorf("severity badge %d: %s is %.2f:1, want ≥ 4.5:1", i, b, r)
		}
	}
	shot(t, ctx, "incident-1440-graph", func(b *[]byte) chromedp.Action { return chromedp.Screenshot(`.graph-layout`, b, chromedp.ByQuery) })

	// 400 px: nothing scrolls sideways but the graph itself.
	var overflow float64
	browse(t, ctx, "narrow window", chromedp.EmulateViewport(400, 900))
	openIncident(t, ctx, env.url, env.chainID)
	browse(t, ctx, "measure the narrow page", chromedp.Evaluate(`document.documentElement.scrollWidth - window.innerWidth`, &overflow))
	if overflow > 1 {
		t.Errorf("the incident page scrolls %.0f px sideways at 400 px", overflow)
	}
	shot(t, ctx, "incident-400", func(b *[]byte) chromedp.Action { return chromedp.CaptureScreenshot(b) })
	browse(t, ctx, "wide window", chromedp.EmulateViewport(1440, 900))
}

// TestUIWorkflowKeepsWork checks the queue's places and the incident's
// forms: the working queue shows open incidents, Esc leaves the search,
// back re-selects the incident you came from, closing without a verdict is
// refused in words before any request, and a conflict keeps what the
// analyst typed, names who changed what and re-applies the change.
func TestUIWorkflowKeepsWork(t *testing.T) {
	env := newUIEnv(t)
	ctx := newBrowser(t)
	base := env.url
	signIn(t, ctx, base, apitest.TokAcmeAnalyst)

	var pressed, active string
	browse(t, ctx, "default tab and Esc",
		chromedp.Evaluate(`document.querySelector('.tab[aria-pressed=true]').dataset.status`, &pressed),
		chromedp.KeyEvent("/"),
		chromedp.Evaluate(`document.activeElement.name`, &active))
	if pressed != "open" || active != "q" {
		t.Fatalf("got tab %q and focus %q, want the Open tab and / focusing the search", pressed, active)
	}
	browse(t, ctx, "Esc", chromedp.KeyEvent(kb.Escape), chromedp.Evaluate(`document.activeElement.dataset.id || document.activeElement.tagName`, &active))
	ids := queueIDs(t, ctx)
	if len(ids) < 3 || active != ids[0] {
		t.Fatalf("after Esc the focus is on %q, want the first row of %v", active, ids)
	}
	// Open the third row, come back: it is selected again.
	browse(t, ctx, "open the third row and come back",
		chromedp.KeyEvent("j"), chromedp.KeyEvent("j"), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(`#incident-title`, chromedp.ByQuery),
		chromedp.Click(`a.back`, chromedp.ByQuery),
		chromedp.WaitVisible(`#queue tbody tr[data-id]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#queue tr[aria-selected=true]').dataset.id === `+fmt.Sprintf("%q", ids[2]), nil, chromedp.WithPollingTimeout(10*time.Second)))

	// Closing without a verdict: said in words, nothing sent.
	before := workflowVersion(t, base, env.chainID)
	browse(t, ctx, "close without a verdict",
		chromedp.Navigate(base+"/ui/#/incidents/"+env.chainID),
		chromedp.WaitVisible(`#status-select`, chromedp.ByQuery),
		choose(`#status-select`, "closed"),
		chromedp.Click(`[data-action=status]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#form-error`, chromedp.ByQuery))
	if s := textOf(t, ctx, "#form-error"); !strings.Contains(s, "Closing needs a verdict") || !strings.Contains(s, "Closing needs a reason") || strings.Contains(s, "true_positive") {
		t.Errorf("got %q, want the missing verdict and reason said in words", s)
	}
	if v := workflowVersion(t, base, env.chainID); v != before {
		t.Errorf("the refused close changed the incident (workflow version %d → %d)", before, v)
	}

	// A conflict keeps the typed verdict and reason and re-applies them.
	browse(t, ctx, "type a verdict",
		choose(`#verdict-select`, "true_positive"),
		chromedp.SendKeys(`#reason-input`, "keys rotated", chromedp.ByQuery))
	apiPatch(t, base, env.chainID, `{"tags": ["seen-by-bob"], "assignee": "bob"}`)
	browse(t, ctx, "close with a stale ETag",
		chromedp.Click(`[data-action=status]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#banner.conflict`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#banner').textContent.includes('tags')`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	msg := textOf(t, ctx, "#banner")
	for _, want := range []string{"alice", "tags seen-by-bob", "assignee bob", "status → closed", "kept"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the conflict says %q, want it to name %q", msg, want)
		}
	}
	shot(t, ctx, "incident-conflict", func(b *[]byte) chromedp.Action { return chromedp.CaptureScreenshot(b) })
	var typed []string
	browse(t, ctx, "reload keeps what was typed",
		chromedp.Click(`#reload`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#incident-tags').textContent.includes('seen-by-bob')`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`[document.querySelector('#status-select').value, document.querySelector('#verdict-select').value, document.querySelector('#reason-input').value]`, &typed))
	if strings.Join(typed, "|") != "closed|true_positive|keys rotated" {
		t.Errorf("after Reload the form holds %q, want closed|true_positive|keys rotated", typed)
	}
	apiPatch(t, base, env.chainID, `{"tags": ["seen-by-bob", "again"]}`)
	browse(t, ctx, "conflict again, re-apply",
		chromedp.Click(`[data-action=status]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#reapply`, chromedp.ByQuery),
		chromedp.Click(`#reapply`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#incident-status').textContent === 'closed'`, nil, chromedp.WithPollingTimeout(10*time.Second)))
	var d casework.IncidentDetail
	if code := getJSON(t, base+"/v1/incidents/"+env.chainID, apitest.TokAcmeAnalyst, &d); code != http.StatusOK {
		t.Fatalf("GET incident: %d", code)
	}
	if w := d.Workflow; w.Status != "closed" || w.Verdict != "true_positive" || w.Reason != "keys rotated" || len(w.Tags) != 2 {
		t.Errorf("got workflow %+v, want closed as true_positive with the reason typed before the conflicts and both of bob's tags", w)
	}

	// The favicon is served.
	var icon string
	browse(t, ctx, "favicon", chromedp.Evaluate(`fetch(document.querySelector('link[rel=icon]').href).then(r => r.status + ' ' + r.headers.get('Content-Type'))`, &icon, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if !strings.HasPrefix(icon, "200 image/svg") {
		t.Errorf("favicon: got %q, want 200 image/svg+xml", icon)
	}
}

func workflowVersion(t *testing.T, base, id string) uint64 {
	t.Helper()
	var d casework.IncidentDetail
	if code := getJSON(t, base+"/v1/incidents/"+id, apitest.TokAcmeAnalyst, &d); code != http.StatusOK {
		t.Fatalf("GET incident: %d", code)
	}
	return d.Workflow.Version
}

// contrastOf reads "rgb(a, b, c) on rgb(d, e, f)" and returns the WCAG
// contrast ratio of the two colours.
func contrastOf(s string) float64 {
	var c [6]float64
	n := 0
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }) {
		if n < 6 {
			fmt.Sscan(f, &c[n])
			n++
		}
	}
	lum := func(r, g, b float64) float64 {
		f := func(v float64) float64 {
			v /= 255
			if v <= 0.03928 {
				return v / 12.92
			}
			return math.Pow((v+0.055)/1.055, 2.4)
		}
		return 0.2126*f(r) + 0.7152*f(g) + 0.0722*f(b)
	}
	a, b := lum(c[0], c[1], c[2]), lum(c[3], c[4], c[5])
	if a < b {
		a, b = b, a
	}
	return (a + 0.05) / (b + 0.05)
}
