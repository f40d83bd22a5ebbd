package notify

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/incident"
)

// TestReceiverFormats delivers a new and an escalated incident to an
// httptest receiver in each incident-management format and checks what
// the receiver's API requires: PagerDuty Events v2, Opsgenie Create Alert
// (with its GenieKey header), a Teams Adaptive Card message and
// Alertmanager's list of alerts.
func TestReceiverFormats(t *testing.T) {
	in := testIncident("inc-1", 4, 1)
	in.FirstSeen, in.LastSeen = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixMilli(), time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC).UnixMilli()
	in.Tactics, in.Techniques = []string{"TA0040"}, []string{"T1486"}
	escalated := in
	escalated.Severity, escalated.Version = 5, 2

	for _, tc := range []struct {
		format Format
		key    string
		check  func(t *testing.T, r received, escalated bool)
	}{
		{FormatPagerDuty, "R0UT1NGKEY", func(t *testing.T, r received, esc bool) {
			var ev PagerDutyEvent
			decodeStrict(t, r.body, &ev)
			wantSev := map[bool]string{false: "error", true: "critical"}[esc]
			if ev.RoutingKey != "R0UT1NGKEY" || ev.EventAction != "trigger" || ev.DedupKey != "musubi/acme/inc-1" {
				t.Errorf("got routing key %q, action %q, dedup key %q; want the key, trigger, musubi/acme/inc-1", ev.RoutingKey, ev.EventAction, ev.DedupKey)
			}
			if ev.Payload.Summary == "" || ev.Payload.Source == "" || ev.Payload.Severity != wantSev {
				t.Errorf("got summary %q, source %q, severity %q; want both set and %s", ev.Payload.Summary, ev.Payload.Source, ev.Payload.Severity, wantSev)
			}
			if _, err := time.Parse(time.RFC3339, ev.Payload.Timestamp); err != nil {
				t.Errorf("timestamp %q: %v", ev.Payload.Timestamp, err)
			}
			if len(ev.Links) != 1 || ev.Links[0].Href != "https://musubi.example/incidents/inc-1" {
				t.Errorf("got links %v, want the incident's", ev.Links)
			}
		}},
		{FormatOpsgenie, "0p5-k3y", func(t *testing.T, r received, esc bool) {
			if got := r.header.Get("Authorization"); got != "GenieKey 0p5-k3y" {
				t.Errorf("got Authorization %q, want GenieKey 0p5-k3y", got)
			}
			var a OpsgenieAlert
			decodeStrict(t, r.body, &a)
			wantPrio := map[bool]string{false: "P2", true: "P1"}[esc]
			if a.Alias != "musubi/acme/inc-1" || a.Priority != wantPrio || a.Message == "" || len([]rune(a.Message)) > 130 {
				t.Errorf("got alias %q, priority %q, message %q; want musubi/acme/inc-1, %s, 1–130 characters", a.Alias, a.Priority, a.Message, wantPrio)
			}
			if !slices.Contains(a.Tags, "TA0040") || a.Details["incident_id"] != "inc-1" || a.Details["url"] == "" {
				t.Errorf("got tags %v, details %v; want the tactics, the incident id and its URL", a.Tags, a.Details)
			}
		}},
		{FormatTeams, "", func(t *testing.T, r received, esc bool) {
			var m TeamsMessage
			decodeStrict(t, r.body, &m)
			if m.Type != "message" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
				t.Fatalf("got %+v, want a message with one Adaptive Card attachment", m)
			}
			c := m.Attachments[0].Content
			if c.Type != "AdaptiveCard" || c.Version != "1.4" || len(c.Body) == 0 || c.Body[0].Type != "TextBlock" {
				t.Errorf("got card type %q version %q body %v, want an AdaptiveCard 1.4 headed by a TextBlock", c.Type, c.Version, c.Body)
			}
			if esc && !strings.Contains(c.Body[0].Text, "escalated High → Critical") {
				t.Errorf("got heading %q, want the escalation", c.Body[0].Text)
			}
			if len(c.Actions) != 1 || c.Actions[0].Type != "Action.OpenUrl" || c.Actions[0].URL != "https://musubi.example/incidents/inc-1" {
				t.Errorf("got actions %v, want one Action.OpenUrl to the incident", c.Actions)
			}
		}},
		{FormatAlertmanager, "", func(t *testing.T, r received, esc bool) {
			var alerts []AlertmanagerAlert
			decodeStrict(t, r.body, &alerts)
			if len(alerts) != 1 {
				t.Fatalf("got %d alerts, want 1", len(alerts))
			}
			a := alerts[0]
			wantSev := map[bool]string{false: "high", true: "critical"}[esc]
			if a.Labels["alertname"] != "MusubiIncident" || a.Labels["incident_id"] != "inc-1" || a.Labels["tenant"] != "acme" || a.Labels["severity"] != wantSev {
				t.Errorf("got labels %v, want alertname MusubiIncident, the incident, its tenant and severity %s", a.Labels, wantSev)
			}
			if a.Annotations["summary"] == "" || !a.StartsAt.Equal(time.UnixMilli(in.FirstSeen)) || a.GeneratorURL == "" {
				t.Errorf("got annotations %v, startsAt %v, generatorURL %q", a.Annotations, a.StartsAt, a.GeneratorURL)
			}
		}},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			rcv := &receiver{}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			reg := prometheus.NewRegistry()
			n := newTestNotifier(t, reg, Endpoint{Name: "oncall", URL: srv.URL, Key: tc.key, Format: tc.format})
			n.Observe([]incident.Incident{in})
			n.Observe([]incident.Incident{escalated})
			run(t, n, func() bool {
				return counter(t, reg, "musubi_notify_deliveries_total", map[string]string{"outcome": "delivered"}) == 2
			})
			reqs := rcv.requests()
			if len(reqs) != 2 {
				t.Fatalf("got %d requests, want 2", len(reqs))
			}
			for _, r := range reqs {
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("got Content-Type %q, want application/json", ct)
				}
				if r.header.Get("webhook-signature") != "" {
					t.Errorf("got a signature without a secret")
				}
			}
			// Two workers may deliver in either order: tell them apart.
			for _, r := range reqs {
				esc := strings.Contains(string(r.body), "escalated") || strings.Contains(string(r.body), `"version":2`) ||
					strings.Contains(string(r.body), "version 2")
				tc.check(t, r, esc)
			}
		})
	}
}

// decodeStrict decodes JSON, rejecting fields the type does not have.
func decodeStrict(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
}

// TestRetryJitter checks that the waits between attempts are drawn between
// half the back-off and all of it, and that the back-off still doubles.
func TestRetryJitter(t *testing.T) {
	rcv := &receiver{plan: []int{503, 503, 503, 503}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	cfg := Default()
	cfg.Endpoints = []Endpoint{{Name: "soc", URL: srv.URL, Secret: testSecret, Format: FormatGeneric}}
	cfg.BackoffMin, cfg.BackoffMax, cfg.MaxAttempts, cfg.Workers = time.Second, 8*time.Second, 5, 1
	n, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	var backoffs, waits []time.Duration
	n.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	jitter := n.jitter
	n.jitter = func(d time.Duration) time.Duration { backoffs = append(backoffs, d); return jitter(d) }
	n.Observe([]incident.Incident{testIncident("inc-1", 4, 1)})
	run(t, n, func() bool { return counter(t, reg, "musubi_notify_deliveries_total", nil) == 1 })
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}; !slices.Equal(backoffs, want) {
		t.Errorf("got back-offs %v, want %v", backoffs, want)
	}
	for i, w := range waits {
		if b := backoffs[i]; w < b/2 || w > b {
			t.Errorf("wait %d is %v, want within [%v, %v]", i, w, b/2, b)
		}
	}
	// Jitter itself: many draws spread over the range, not one value.
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := equalJitter(time.Second)
		if d < time.Second/2 || d > time.Second {
			t.Fatalf("equalJitter(1s) = %v, want within [500ms, 1s]", d)
		}
		seen[d.Truncate(50*time.Millisecond)] = true
	}
	if len(seen) < 8 {
		t.Errorf("1000 draws fell into %d of the 11 buckets of 50ms, want them spread", len(seen))
	}
}

// TestFailuresCounted checks musubi_notify_failures_total: every
// notification not delivered is counted, by endpoint and reason.
func TestFailuresCounted(t *testing.T) {
	rcv := &receiver{plan: []int{500, 500, 500, 400}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	cfg := Default()
	cfg.Endpoints = []Endpoint{{Name: "soc", URL: srv.URL, Secret: testSecret, Format: FormatGeneric}}
	cfg.BackoffMin, cfg.BackoffMax, cfg.MaxAttempts, cfg.Workers = time.Millisecond, time.Millisecond, 3, 1
	n, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	n.Observe([]incident.Incident{testIncident("inc-1", 4, 1), testIncident("inc-2", 4, 1)})
	run(t, n, func() bool { return counter(t, reg, "musubi_notify_deliveries_total", nil) == 2 })
	for reason, want := range map[string]float64{"exhausted": 1, "rejected": 1} {
		if got := counter(t, reg, "musubi_notify_failures_total", map[string]string{"endpoint": "soc", "reason": reason}); got != want {
			t.Errorf("got %v failures for %s, want %v", got, reason, want)
		}
	}
}
