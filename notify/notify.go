package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/musubi-xdr/musubi/incident"
)

// Format is the payload shape of an endpoint.
type Format string

// Payload formats.
const (
	FormatGeneric Format = "generic"
	FormatSlack   Format = "slack"
	// FormatPagerDuty is a PagerDuty Events API v2 trigger event, posted to
	// https://events.pagerduty.com/v2/enqueue with the integration's
	// routing key (Endpoint.Key).
	FormatPagerDuty Format = "pagerduty"
	// FormatOpsgenie is an Opsgenie Create Alert request, posted to
	// https://api.opsgenie.com/v2/alerts (or the EU host) with the API
	// integration's key (Endpoint.Key) as "Authorization: GenieKey …".
	FormatOpsgenie Format = "opsgenie"
	// FormatTeams is a Microsoft Teams message with an Adaptive Card, for a
	// Teams Workflows "post to a channel when a webhook request is received"
	// URL (or a legacy incoming webhook).
	FormatTeams Format = "teams"
	// FormatAlertmanager is a list of alerts as Prometheus Alertmanager's
	// API takes them (POST /api/v2/alerts), so Alertmanager routes,
	// groups, silences and inhibits incidents like any other alert.
	FormatAlertmanager Format = "alertmanager"
)

// Formats lists every payload format.
var Formats = []Format{FormatGeneric, FormatSlack, FormatPagerDuty, FormatOpsgenie, FormatTeams, FormatAlertmanager}

// signed reports whether a format's endpoints must have a signing secret:
// the receivers of the other formats authenticate by their URL or Key and
// ignore the signature headers (sent all the same when a secret is set).
func (f Format) signed() bool { return f == FormatGeneric || f == FormatSlack }

// needsKey reports whether a format's endpoints must have a Key.
func (f Format) needsKey() bool { return f == FormatPagerDuty || f == FormatOpsgenie }

// Event types.
const (
	EventCreated   = "incident.created"
	EventEscalated = "incident.escalated"
)

// Endpoint is one webhook receiver.
type Endpoint struct {
	// Name labels the endpoint's metrics; a few distinct values.
	Name   string
	URL    string
	Secret string // "whsec_" + base64 key
	// Key is the receiver's own credential: the PagerDuty routing
	// (integration) key or the Opsgenie API key.
	Key    string
	Format Format
	// MinSeverity is the lowest OCSF severity id announced (0: all).
	MinSeverity int
	// Tenants limits the endpoint to these tenants (empty: all).
	Tenants []string
}

// Config configures a Notifier. Zero values take the defaults of Default.
type Config struct {
	Endpoints    []Endpoint
	QueueSize    int
	SeenCapacity int
	MaxAttempts  int
	BackoffMin   time.Duration
	BackoffMax   time.Duration
	Timeout      time.Duration
	Workers      int
	// IncidentURL, when set, is a format string with one %s for the
	// incident id, linked from the payloads.
	IncidentURL string
}

// Default returns the default configuration without endpoints.
func Default() Config {
	return Config{QueueSize: 1000, SeenCapacity: 100_000, MaxAttempts: 5, BackoffMin: time.Second, BackoffMax: time.Minute,
		Timeout: 10 * time.Second, Workers: 2}
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	names := map[string]bool{}
	for i, e := range c.Endpoints {
		at := fmt.Sprintf("webhooks[%d]", i)
		if e.Name == "" {
			bad("%s.name: must not be empty", at)
		} else if names[e.Name] {
			bad("%s.name: %q is used twice", at, e.Name)
		}
		names[e.Name] = true
		if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("%s.url: %q is not an http(s) URL", at, e.URL)
		}
		if e.Secret != "" || e.Format.signed() {
			if _, err := decodeSecret(e.Secret); err != nil {
				bad("%s.secret: %v", at, err)
			}
		}
		if !slices.Contains(Formats, e.Format) {
			bad("%s.format: %q is not one of %v", at, e.Format, Formats)
		}
		if e.Format.needsKey() && e.Key == "" {
			bad("%s.key: a %s endpoint needs its key", at, e.Format)
		}
		if e.MinSeverity < 0 || e.MinSeverity > 6 {
			bad("%s.min_severity: %d is outside 0..6", at, e.MinSeverity)
		}
	}
	if c.QueueSize < 1 || c.SeenCapacity < 1 || c.MaxAttempts < 1 || c.Workers < 1 {
		bad("queue_size, seen_capacity, max_attempts and workers must be positive")
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin || c.Timeout <= 0 {
		bad("backoff_min, backoff_max and timeout must be positive, backoff_max at least backoff_min")
	}
	return errors.Join(errs...)
}

// decodeSecret returns the HMAC key of a "whsec_" secret.
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("is not base64 after whsec_")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("holds %d bytes, want 24..64", len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature value of a message.
func Sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a received webhook against secret: one of the
// space-separated v1 signatures must match, and the timestamp must be
// within tolerance of now.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return fmt.Errorf("secret %w", err)
	}
	id, tsText, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if id == "" || err != nil || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return errors.New("timestamp outside the tolerance")
	}
	want := Sign(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// delivery is one message to one endpoint.
type delivery struct {
	endpoint *endpoint
	id       string
	body     []byte
}

type endpoint struct {
	Endpoint
	key []byte
}

// Notifier turns incident updates into signed webhooks. Observe and Run
// may be called concurrently.
type Notifier struct {
	cfg       Config
	endpoints []*endpoint
	client    *http.Client
	logger    *slog.Logger
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
	// jitter picks the wait before a retry from the back-off d.
	jitter func(d time.Duration) time.Duration

	mu    sync.Mutex
	queue []delivery // FIFO, at most cfg.QueueSize
	seen  map[string]int
	order []string // keys of seen, oldest first (a ring of cfg.SeenCapacity)
	head  int
	ready chan struct{}

	m *metrics
}

type metrics struct {
	events     *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	failures   *prometheus.CounterVec
	queue      prometheus.GaugeFunc
	seconds    prometheus.Histogram
}

// New returns a Notifier; reg may be nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		logger: logger.With("component", "notify"),
		now:    time.Now,
		sleep:  sleepCtx,
		jitter: equalJitter,
		seen:   map[string]int{},
		ready:  make(chan struct{}, 1),
	}
	for _, e := range cfg.Endpoints {
		key, _ := decodeSecret(e.Secret)
		n.endpoints = append(n.endpoints, &endpoint{Endpoint: e, key: key})
	}
	n.m = &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_notify_events_total", Help: "Incident events detected for notification, by type (incident.created, incident.escalated).",
		}, []string{"type"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_notify_deliveries_total", Help: "Finished webhook deliveries, by endpoint and outcome (delivered; failed: every attempt failed, or shutdown came between attempts; rejected: the receiver answered 4xx).",
		}, []string{"endpoint", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_notify_attempts_total", Help: "Webhook HTTP attempts, by endpoint and outcome (ok, retry, permanent).",
		}, []string{"endpoint", "outcome"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_notify_dropped_total", Help: "Deliveries dropped before an attempt, by reason (queue_full, shutdown).",
		}, []string{"reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_notify_failures_total", Help: "Notifications that were not delivered, by endpoint and reason (exhausted: every attempt failed; rejected: the receiver answered 4xx; queue_full: dropped for newer ones; shutdown: still queued at shutdown).",
		}, []string{"endpoint", "reason"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "musubi_notify_attempt_duration_seconds", Help: "Duration of one webhook HTTP attempt.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10),
		}),
	}
	n.m.queue = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "musubi_notify_queue_length", Help: "Deliveries waiting in the queue.",
	}, func() float64 { return float64(n.Len()) })
	if reg != nil {
		reg.MustRegister(n.m.events, n.m.deliveries, n.m.attempts, n.m.dropped, n.m.failures, n.m.queue, n.m.seconds)
	}
	return n, nil
}

// Len is the number of queued deliveries.
func (n *Notifier) Len() int {
	if n == nil {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue)
}

// Observe looks at incident versions just written and enqueues a delivery
// for every new incident and every severity escalation. It never blocks.
// A nil Notifier (no webhooks configured) ignores them.
func (n *Notifier) Observe(incs []incident.Incident) {
	if n == nil {
		return
	}
	for i := range incs {
		in := &incs[i]
		if in.Status == "merged" || in.MergedInto != "" {
			continue
		}
		key := in.TenantUID + "\x00" + in.ID
		n.mu.Lock()
		prev, seen := n.seen[key]
		n.remember(key, max(prev, in.Severity))
		n.mu.Unlock()
		switch {
		case !seen:
			n.enqueue(EventCreated, in, 0)
		case in.Severity > prev:
			n.enqueue(EventEscalated, in, prev)
		}
	}
}

// remember stores the severity of key, forgetting the oldest key when the
// map is full. n.mu is held.
func (n *Notifier) remember(key string, sev int) {
	if _, ok := n.seen[key]; !ok {
		if len(n.order) < n.cfg.SeenCapacity {
			n.order = append(n.order, key)
		} else {
			delete(n.seen, n.order[n.head])
			n.order[n.head] = key
			n.head = (n.head + 1) % len(n.order)
		}
	}
	n.seen[key] = sev
}

func (n *Notifier) enqueue(event string, in *incident.Incident, prev int) {
	n.m.events.WithLabelValues(event).Inc()
	for _, e := range n.endpoints {
		if in.Severity < e.MinSeverity || len(e.Tenants) > 0 && !contains(e.Tenants, in.TenantUID) {
			continue
		}
		body, err := n.payload(e, event, in, prev)
		if err != nil {
			n.logger.Error("webhook payload", "endpoint", e.Name, "err", err)
			continue
		}
		d := delivery{endpoint: e, id: messageID(e.Name, event, in), body: body}
		n.mu.Lock()
		if len(n.queue) >= n.cfg.QueueSize {
			n.m.failures.WithLabelValues(n.queue[0].endpoint.Name, "queue_full").Inc()
			n.queue[0] = delivery{} // let the dropped body be collected
			n.queue = n.queue[1:]
			n.m.dropped.WithLabelValues("queue_full").Inc()
		}
		n.queue = append(n.queue, d)
		n.mu.Unlock()
		select {
		case n.ready <- struct{}{}:
		default:
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// messageID is the webhook-id: the same for every attempt of a message, so
// receivers can de-duplicate.
func messageID(endpoint, event string, in *incident.Incident) string {
	h := sha256.Sum256([]byte(strings.Join([]string{endpoint, event, in.TenantUID, in.ID, strconv.FormatUint(in.Version, 10)}, "\x00")))
	return "msg_" + hex.EncodeToString(h[:12])
}

// pop takes the oldest delivery, if any.
func (n *Notifier) pop() (delivery, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.queue) == 0 {
		return delivery{}, false
	}
	d := n.queue[0]
	n.queue[0] = delivery{}
	n.queue = n.queue[1:]
	if len(n.queue) == 0 {
		n.queue = nil // release the drained backing array
	}
	return d, true
}

// Run delivers queued messages until ctx is done. Deliveries still queued
// then are dropped and counted. A nil Notifier waits for ctx.
func (n *Notifier) Run(ctx context.Context) error {
	if n == nil {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	for range n.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				d, ok := n.pop()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-n.ready:
						continue
					}
				}
				// Pass the signal on: there may be more for the other workers.
				select {
				case n.ready <- struct{}{}:
				default:
				}
				n.deliver(ctx, d)
			}
		}()
	}
	wg.Wait()
	n.mu.Lock()
	if k := len(n.queue); k > 0 {
		n.m.dropped.WithLabelValues("shutdown").Add(float64(k))
		for _, d := range n.queue {
			n.m.failures.WithLabelValues(d.endpoint.Name, "shutdown").Inc()
		}
		n.queue = nil
	}
	n.mu.Unlock()
	return nil
}

// deliver sends d, retrying transient failures with exponential back-off
// and jitter: many engines (or one engine's workers) that failed together do
// not retry a recovering receiver in lockstep.
func (n *Notifier) deliver(ctx context.Context, d delivery) {
	e := d.endpoint
	backoff := n.cfg.BackoffMin
	for attempt := 1; ; attempt++ {
		retry, err := n.attempt(ctx, d)
		switch {
		case err == nil:
			n.m.attempts.WithLabelValues(e.Name, "ok").Inc()
			n.m.deliveries.WithLabelValues(e.Name, "delivered").Inc()
			return
		case !retry:
			n.m.attempts.WithLabelValues(e.Name, "permanent").Inc()
			n.m.deliveries.WithLabelValues(e.Name, "rejected").Inc()
			n.m.failures.WithLabelValues(e.Name, "rejected").Inc()
			n.logger.Warn("webhook rejected", "endpoint", e.Name, "id", d.id, "err", err)
			return
		}
		n.m.attempts.WithLabelValues(e.Name, "retry").Inc()
		if attempt >= n.cfg.MaxAttempts || ctx.Err() != nil {
			n.m.deliveries.WithLabelValues(e.Name, "failed").Inc()
			n.m.failures.WithLabelValues(e.Name, "exhausted").Inc()
			n.logger.Warn("webhook failed after every attempt", "endpoint", e.Name, "id", d.id, "attempts", attempt, "err", err)
			return
		}
		if n.sleep(ctx, n.jitter(backoff)) != nil {
			n.m.deliveries.WithLabelValues(e.Name, "failed").Inc()
			n.m.failures.WithLabelValues(e.Name, "shutdown").Inc()
			return
		}
		backoff = min(2*backoff, n.cfg.BackoffMax)
	}
}

// attempt makes one HTTP request; retry says whether a failure is transient.
func (n *Notifier) attempt(ctx context.Context, d delivery) (retry bool, _ error) {
	ts := n.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.endpoint.URL, bytes.NewReader(d.body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "musubi-notify")
	req.Header.Set("webhook-id", d.id)
	if d.endpoint.key != nil {
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("webhook-signature", Sign(d.endpoint.key, d.id, ts, d.body))
	}
	if d.endpoint.Format == FormatOpsgenie {
		req.Header.Set("Authorization", "GenieKey "+d.endpoint.Key)
	}
	start := time.Now()
	resp, err := n.client.Do(req)
	n.m.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("HTTP %d", c)
	default:
		return false, fmt.Errorf("HTTP %d", c)
	}
}

// equalJitter waits between half the back-off and all of it, at random.
func equalJitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
