package notify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/musubi-xdr/musubi/incident"
)

var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// receiver is a webhook endpoint that answers with the codes of plan, then 200.
type receiver struct {
	mu    sync.Mutex
	plan  []int
	got   []received
	calls atomic.Int32
}

type received struct {
	header http.Header
	body   []byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, received{req.Header.Clone(), body})
	code := http.StatusOK
	if len(r.plan) > 0 {
		code, r.plan = r.plan[0], r.plan[1:]
	}
	r.mu.Unlock()
	r.calls.Add(1)
	w.WriteHeader(code)
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func testIncident(id string, sev int, version uint64) incident.Incident {
	return incident.Incident{ID: id, Version: version, TenantUID: "acme", Title: "Pipeline <poisoning> & more", Severity: sev, RiskScore: 80,
		Status: "new", Stages: []string{"tampering", "distribution"}, Accounts: []string{"111111111111"}, AlertIDs: []string{"a1", "a2"}}
}

func newTestNotifier(t *testing.T, reg *prometheus.Registry, endpoints ...Endpoint) *Notifier {
	t.Helper()
	cfg := Default()
	cfg.Endpoints = endpoints
	cfg.BackoffMin, cfg.BackoffMax, cfg.MaxAttempts, cfg.Timeout = time.Millisecond, 4*time.Millisecond, 3, 5*time.Second
	cfg.IncidentURL = "https://musubi.example/incidents/%s"
	n, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// run runs n until cond holds, then stops it.
func run(t *testing.T, n *Notifier, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// TestDeliverSignedPayloads: both formats arrive signed, and the signature
// verifies with the receiver's copy of the secret.
func TestDeliverSignedPayloads(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	n := newTestNotifier(t, reg,
		Endpoint{Name: "soc", URL: srv.URL + "/generic", Secret: testSecret, Format: FormatGeneric},
		Endpoint{Name: "slack", URL: srv.URL + "/slack", Secret: testSecret, Format: FormatSlack})
	n.Observe([]incident.Incident{testIncident("inc-1", 4, 1)})
	// Wait for the notifier to finish both deliveries, not for the receiver
	// to see both requests: stopping the notifier between the two cancels
	// the second request before its response is read.
	run(t, n, func() bool { return counter(t, reg, "musubi_notify_deliveries_total", nil) == 2 })

	for _, r := range rcv.requests() {
		if err := Verify(testSecret, r.header, r.body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: got %v, want it to verify", err)
		}
		if !strings.HasPrefix(r.header.Get("webhook-signature"), "v1,") || !strings.HasPrefix(r.header.Get("webhook-id"), "msg_") {
			t.Errorf("got headers %v, want webhook-id msg_… and a v1 signature", r.header)
		}
		tampered := append([]byte{}, r.body...)
		tampered[len(tampered)-2] ^= 1
		if err := Verify(testSecret, r.header, tampered, time.Now(), 5*time.Minute); err == nil {
			t.Errorf("a tampered body verifies")
		}
		if err := Verify(testSecret, r.header, r.body, time.Now().Add(time.Hour), 5*time.Minute); err == nil {
			t.Errorf("an old timestamp verifies")
		}
		var doc map[string]any
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		if _, slack := doc["blocks"]; slack {
			text, _ := doc["text"].(string)
			if !strings.Contains(text, "New High incident") || !strings.Contains(text, `&lt;poisoning&gt; &amp; more`) {
				t.Errorf("got slack payload %s, want the headline and escaped mrkdwn", r.body)
			}
			continue
		}
		var g Generic
		_ = json.Unmarshal(r.body, &g)
		if g.Type != EventCreated || g.Data.ID != "inc-1" || g.Data.Severity != 4 || g.Data.AlertCount != 2 || g.Data.URL != "https://musubi.example/incidents/inc-1" {
			t.Errorf("got generic payload %+v, want incident.created for inc-1", g)
		}
	}
	if got := counter(t, reg, "musubi_notify_deliveries_total", map[string]string{"outcome": "delivered"}); got != 2 {
		t.Errorf("got %v delivered, want 2", got)
	}
}

// TestObserveDetectsNewAndEscalated: new incidents and severity rises are
// announced; the same or a lower severity, and merged incidents, are not.
func TestObserveDetectsNewAndEscalated(t *testing.T) {
	reg := prometheus.NewRegistry()
	n := newTestNotifier(t, reg, Endpoint{Name: "soc", URL: "http://127.0.0.1:1/", Secret: testSecret, Format: FormatGeneric})
	steps := []struct {
		in   incident.Incident
		want string // event type enqueued, "" for none
	}{
		{testIncident("inc-1", 3, 1), EventCreated},
		{testIncident("inc-1", 3, 2), ""},
		{testIncident("inc-1", 4, 3), EventEscalated},
		{testIncident("inc-1", 2, 4), ""},
		{testIncident("inc-1", 4, 5), ""}, // back to the highest seen: not a new escalation
		{testIncident("inc-2", 1, 1), EventCreated},
		{func() incident.Incident { in := testIncident("inc-3", 5, 1); in.Status = "merged"; return in }(), ""},
	}
	for i, s := range steps {
		before := n.Len()
		n.Observe([]incident.Incident{s.in})
		got := ""
		if n.Len() > before {
			var g Generic
			_ = json.Unmarshal(n.queue[len(n.queue)-1].body, &g)
			got = g.Type
			if s.want == EventEscalated && g.Data.PreviousSeverity != 3 {
				t.Errorf("step %d: got previous severity %d, want 3", i, g.Data.PreviousSeverity)
			}
		}
		if got != s.want {
			t.Errorf("step %d (%s sev %d): got %q, want %q", i, s.in.ID, s.in.Severity, got, s.want)
		}
	}
}

// TestRetryThenDeliver: 500 and 429 are retried; the message id stays the
// same across attempts.
func TestRetryThenDeliver(t *testing.T) {
	rcv := &receiver{plan: []int{500, 429}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	n := newTestNotifier(t, reg, Endpoint{Name: "soc", URL: srv.URL, Secret: testSecret, Format: FormatGeneric})
	n.Observe([]incident.Incident{testIncident("inc-1", 4, 1)})
	run(t, n, func() bool { return counter(t, reg, "musubi_notify_deliveries_total", nil) == 1 })
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d attempts, want 3", len(reqs))
	}
	if reqs[0].header.Get("webhook-id") != reqs[2].header.Get("webhook-id") {
		t.Errorf("the message id changed between attempts")
	}
	if got := counter(t, reg, "musubi_notify_deliveries_total", map[string]string{"outcome": "delivered"}); got != 1 {
		t.Errorf("got %v delivered, want 1", got)
	}
	if got := counter(t, reg, "musubi_notify_attempts_total", map[string]string{"outcome": "retry"}); got != 2 {
		t.Errorf("got %v retried attempts, want 2", got)
	}
}

// TestGiveUp: an endpoint that keeps failing gets MaxAttempts attempts and
// a counted failure; a 4xx is not retried.
func TestGiveUp(t *testing.T) {
	cases := []struct {
		name     string
		plan     []int
		attempts int
		outcome  string
	}{
		{"always 500", []int{500, 502, 503, 500, 500}, 3, "failed"},
		{"400 is permanent", []int{400}, 1, "rejected"},
		{"410 is permanent", []int{410}, 1, "rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rcv := &receiver{plan: c.plan}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			reg := prometheus.NewRegistry()
			n := newTestNotifier(t, reg, Endpoint{Name: "soc", URL: srv.URL, Secret: testSecret, Format: FormatGeneric})
			n.Observe([]incident.Incident{testIncident("inc-1", 4, 1)})
			run(t, n, func() bool { return counter(t, reg, "musubi_notify_deliveries_total", nil) == 1 })
			if got := int(rcv.calls.Load()); got != c.attempts {
				t.Errorf("got %d attempts, want %d", got, c.attempts)
			}
			if got := counter(t, reg, "musubi_notify_deliveries_total", map[string]string{"endpoint": "soc", "outcome": c.outcome}); got != 1 {
				t.Errorf("got %v %s deliveries, want 1", got, c.outcome)
			}
		})
	}
}

// TestQueueDropsOldest: a full queue drops its oldest delivery and counts it.
func TestQueueDropsOldest(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := Default()
	cfg.QueueSize = 2
	cfg.Endpoints = []Endpoint{{Name: "soc", URL: "http://127.0.0.1:1/", Secret: testSecret, Format: FormatGeneric}}
	n, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	n.Observe([]incident.Incident{testIncident("inc-1", 4, 1), testIncident("inc-2", 4, 1), testIncident("inc-3", 4, 1)})
	if n.Len() != 2 {
		t.Fatalf("got %d queued, want 2", n.Len())
	}
	var first Generic
	_ = json.Unmarshal(n.queue[0].body, &first)
	if first.Data.ID != "inc-2" {
		t.Errorf("got oldest queued %s, want inc-2 (inc-1 dropped)", first.Data.ID)
	}
	if got := counter(t, reg, "musubi_notify_dropped_total", map[string]string{"reason": "queue_full"}); got != 1 {
		t.Errorf("got %v dropped, want 1", got)
	}
}

// TestSeenIsBounded: the severity map forgets its oldest incident.
func TestSeenIsBounded(t *testing.T) {
	cfg := Default()
	cfg.SeenCapacity = 2
	n, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Observe([]incident.Incident{testIncident("inc-1", 4, 1), testIncident("inc-2", 4, 1), testIncident("inc-3", 4, 1)})
	if len(n.seen) != 2 {
		t.Errorf("got %d remembered, want 2", len(n.seen))
	}
	if _, ok := n.seen["acme\x00inc-1"]; ok {
		t.Errorf("the oldest incident is still remembered")
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Default()
	cfg.Endpoints = []Endpoint{
		{Name: "a", URL: "ftp://x", Secret: "secret", Format: "xml", MinSeverity: 9},
		{Name: "a", URL: "https://hooks.example/x", Secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), Format: FormatSlack},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("got no error, want several")
	}
	for _, want := range []string{"webhooks[0].url", "webhooks[0].secret", "webhooks[0].format", "webhooks[0].min_severity", "webhooks[1].name", "webhooks[1].secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to name %s", err, want)
		}
	}
}

// TestNilNotifier: without webhooks the pipeline and the engine can call a
// nil Notifier.
func TestNilNotifier(t *testing.T) {
	var n *Notifier
	n.Observe([]incident.Incident{testIncident("inc-1", 4, 1)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Run(ctx); err != nil || n.Len() != 0 {
		t.Errorf("nil notifier: got %v, %d queued; want nil, 0", err, n.Len())
	}
}
