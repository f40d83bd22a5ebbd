package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/musubi-xdr/musubi/casework"
)

// Options configures the API handler.
type Options struct {
	Store    Store
	Rules    RuleSource
	Ready    func(ctx context.Context) error
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	// Tokens are seeded at start (from configuration).
	Tokens []Token
	// RestoreTokens makes New restore the tokens created through
	// /v1/admin/tokens from the audit log (see tokens_persist.go); without
	// it they live in memory until the process ends.
	RestoreTokens bool
	Tenants       []Tenant
	Logger        *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SLA is the time to resolve per OCSF severity id (0 or absent: no
	// SLA); nil means DefaultSLA.
	SLA map[int]time.Duration
	// CursorKey signs the paging cursors. API replicas behind one address
	// need the same key to follow each other's cursors; empty means a
	// random key, so cursors are good until the process restarts.
	CursorKey []byte
	// Directory lists the analysts and teams incidents can be assigned
	// to, besides token names.
	Directory Directory
}

// Server is the API's http.Handler.
type Server struct {
	opts     Options
	mux      *http.ServeMux
	tokens   *tokenStore
	logger   *slog.Logger
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	audits   *prometheus.CounterVec
	denied   *rateLimiter
	auditLog *groupCommit
	cursors  cursorSigner
	// notCanonical answers paths with ".", ".." or empty segments.
	notCanonical http.Handler
	// handler is route, with compression (compress.go).
	handler http.Handler
}

// Limits on what a request may ask for.
const (
	maxBodyBytes    = 1 << 20
	maxPageSize     = 500
	defaultPage     = 50
	maxTimeRange    = 366 * 24 * time.Hour
	queryTimeout    = 30 * time.Second
	maxCommentBytes = 16 << 10
	maxReasonBytes  = 2000
	// deniedAuditsPerSecond bounds the audit rows that refused requests
	// may write, so a flood of bad tokens cannot flood the audit table;
	// the excess is counted in musubi_api_audit_entries_total{outcome="dropped"}.
	deniedAuditsPerSecond = 20
)

// requestIDPattern is what a client-chosen X-Request-Id may look like;
// anything else is replaced by a fresh id.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// New returns the API handler.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Rules == nil || opts.Ready == nil || opts.Logger == nil {
		return nil, errors.New("api: Store, Rules, Ready and Logger are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SLA == nil {
		opts.SLA = DefaultSLA()
	}
	if err := checkSLA(opts.SLA); err != nil {
		return nil, err
	}
	if err := opts.Directory.Validate(); err != nil {
		return nil, err
	}
	tokens, err := newTokenStore(opts.Tokens, opts.Tenants)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:   opts,
		mux:    http.NewServeMux(),
		tokens: tokens,
		logger: opts.Logger.With("component", "api"),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_api_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "musubi_api_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		audits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "musubi_api_audit_entries_total",
			Help: "Audit entries of API requests, by outcome (written, failed, dropped).",
		}, []string{"outcome"}),
		denied:   newRateLimiter(deniedAuditsPerSecond),
		auditLog: &groupCommit{write: opts.Store.AppendAudit},
		cursors:  newCursorSigner(opts.CursorKey),
	}
	if opts.Registry != nil {
		opts.Registry.MustRegister(s.requests, s.latency, s.audits)
	}
	if opts.RestoreTokens {
		ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
		n, err := s.restoreTokens(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		s.logger.Info("API tokens restored from the audit log", "tokens", n)
	}
	for _, rt := range s.routeTable() {
		s.handle(rt)
	}
	// Everything else is a problem document too: 405 when the path exists
	// with another method, else 404.
	s.mux.Handle("/", s.instrument("unmatched", s.unmatched))
	s.notCanonical = s.instrument("not_canonical", func(w http.ResponseWriter, r *http.Request) *problem {
		w.Header().Set("Cache-Control", "no-store")
		return badRequest(fmt.Sprintf("the path %s is not canonical: it has \".\", \"..\" or empty segments; send %s",
			quote(r.URL.EscapedPath()), quote(cleanPath(r.URL.EscapedPath()))))
	})
	s.handler = compress(http.HandlerFunc(s.dispatch))
	return s, nil
}

type route struct {
	pattern string
	role    Role // "" means no authentication
	handler func(http.ResponseWriter, *http.Request) *problem
}

func (s *Server) routeTable() []route {
	return []route{
		{"GET /healthz", "", s.healthz},
		{"GET /readyz", "", s.readyz},
		{"GET /metrics", "", s.metrics},
		{"GET /v1/openapi.json", "", s.openapi},
		{"GET /v1/me", RoleViewer, s.me},
		{"GET /v1/incidents", RoleViewer, s.listIncidents},
		{"GET /v1/incidents/{id}", RoleViewer, s.getIncident},
		{"PATCH /v1/incidents/{id}", RoleAnalyst, s.patchIncident},
		{"POST /v1/incidents/bulk", RoleAnalyst, s.bulkIncidents},
		{"GET /v1/incidents.csv", RoleViewer, s.incidentsCSV},
		{"GET /v1/alerts", RoleViewer, s.listAlerts},
		{"GET /v1/exposures", RoleViewer, s.listExposures},
		{"GET /v1/incidents/{id}/exposures", RoleViewer, s.incidentExposures},
		{"POST /v1/alerts/{alert_id}/move", RoleAnalyst, s.moveAlert},
		{"GET /v1/views", RoleViewer, s.listViews},
		{"POST /v1/views", RoleAnalyst, s.createView},
		{"DELETE /v1/views/{view_id}", RoleAnalyst, s.deleteView},
		{"GET /v1/incidents/{id}/export", RoleAnalyst, s.exportIncident},
		{"GET /v1/incidents/{id}/comments", RoleViewer, s.listComments},
		{"POST /v1/incidents/{id}/comments", RoleAnalyst, s.addComment},
		{"PATCH /v1/incidents/{id}/comments/{comment_id}", RoleAnalyst, s.editComment},
		{"DELETE /v1/incidents/{id}/comments/{comment_id}", RoleAnalyst, s.deleteComment},
		{"POST /v1/incidents/{id}/merge", RoleAnalyst, s.mergeIncident},
		{"GET /v1/entities/{type}/{value...}", RoleViewer, s.entityPivot},
		{"GET /v1/rules", RoleViewer, s.listRules},
		{"GET /v1/rules/shadow", RoleViewer, s.shadowMatches},
		{"POST /-/reload", RoleAdmin, s.reload},
		{"GET /v1/audit", RoleAdmin, s.listAudit},
		{"GET /v1/admin/tokens", RoleAdmin, s.listTokens},
		{"POST /v1/admin/tokens", RoleAdmin, s.createToken},
		{"DELETE /v1/admin/tokens/{id}", RoleAdmin, s.deleteToken},
		{"GET /v1/admin/tenants", RoleAdmin, s.listTenants},
	}
}

// Routes returns the method and path pattern of every API route.
func (s *Server) Routes() []string {
	var out []string
	for _, rt := range s.routeTable() {
		out = append(out, rt.pattern)
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// dispatch sends a request to its route's handler.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.EscapedPath(); cleanPath(p) != p {
		// net/http would answer an HTML redirect to the cleaned path; an API
		// answers a problem, and a client that sends "..", "." or "//"
		// gets told so instead of silently reaching another resource.
		s.notCanonical.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// cleanPath is the canonical form of an escaped URL path, as net/http's
// ServeMux computes it: no ".", ".." or empty segments, the trailing slash
// kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

type requestIDKey struct{}

// requestID is the id of the request ctx belongs to.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// stateChanging reports whether a method changes state (and is audited).
func stateChanging(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

func (s *Server) handle(rt route) {
	s.mux.Handle(rt.pattern, s.instrument(rt.pattern, func(w http.ResponseWriter, r *http.Request) *problem {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		// r.URL.Query() drops what it cannot parse (a raw ";", a bad
		// escape) without a word, so a filter could vanish and widen the
		// answer: a query that does not parse is refused whole.
		_, qerr := url.ParseQuery(r.URL.RawQuery)
		var qprob *problem
		if qerr != nil {
			qprob = badRequest("the query string is malformed: " + queryError(qerr) +
				"; separate parameters with & and percent-encode ; % and other reserved characters in values")
		}
		if rt.role == "" {
			if qprob != nil {
				return qprob
			}
			return rt.handler(w, r)
		}
		// Tenant data must not linger in shared caches.
		w.Header().Set("Cache-Control", "no-store")
		p, prob := s.tokens.authenticate(r, s.opts.Now())
		if prob != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="musubi"`)
			if stateChanging(r.Method) {
				s.auditDenied(r, nil, rt.pattern, prob)
			}
			return prob
		}
		if p.role.rank() < rt.role.rank() {
			prob := &problem{Status: http.StatusForbidden, Title: "Forbidden", Detail: fmt.Sprintf("this action needs the %s role; the token has %s", rt.role, p.role)}
			if stateChanging(r.Method) {
				s.auditDenied(r, p, rt.pattern, prob)
			}
			return prob
		}
		if qprob != nil {
			if stateChanging(r.Method) {
				s.auditDenied(r, p, rt.pattern, qprob)
			}
			return qprob
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		return rt.handler(w, r)
	}))
}

// unmatched answers requests no route takes.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) *problem {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		for _, m := range allowed {
			w.Header().Add("Allow", m)
		}
		return &problem{Status: http.StatusMethodNotAllowed, Title: "Method Not Allowed", Detail: fmt.Sprintf("%s is not allowed here; allowed: %v", r.Method, allowed)}
	}
	return &problem{Status: http.StatusNotFound, Title: "Not Found", Detail: "no such endpoint; see /v1/openapi.json"}
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer underneath (to
// flush a streamed answer through the compressor).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument adds the request id, metrics, panic recovery and problem
// rendering around a handler.
func (s *Server) instrument(routeName string, h func(http.ResponseWriter, *http.Request) *problem) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		defer func() {
			if v := recover(); v != nil {
				s.logger.Error("handler panic", "route", routeName, "request_id", id, "panic", v)
				if w.code == 0 {
					writeProblem(w, r, &problem{Status: http.StatusInternalServerError, Title: "Internal Server Error", Detail: "the request failed; see the server log for request id " + id})
				}
			}
			code := w.code
			if code == 0 {
				code = http.StatusOK
			}
			s.requests.WithLabelValues(routeName, strconv.Itoa(code)).Inc()
			s.latency.WithLabelValues(routeName).Observe(time.Since(start).Seconds())
		}()
		if p := h(w, r); p != nil {
			writeProblem(w, r, p)
		}
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) *problem {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) *problem {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.opts.Ready(ctx); err != nil {
		return &problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: err.Error()}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) *problem {
	if s.opts.Gatherer == nil {
		return &problem{Status: http.StatusNotFound, Title: "Not Found", Detail: "metrics are not enabled"}
	}
	promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// storeError maps a store error to a problem; what names the object for a
// 404 ("incident", say).
func (s *Server) storeError(r *http.Request, err error, what string) *problem {
	switch {
	case errors.Is(err, casework.ErrNotFound):
		return notFound(what)
	case errors.Is(err, casework.ErrConflict):
		return &problem{Status: http.StatusPreconditionFailed, Title: "Precondition Failed", Detail: "the " + what + " was changed by someone else; reload it and retry with its new ETag"}
	case errors.Is(err, casework.ErrInvalidArgument):
		// The caller sees the store's explanation without the context
		// it was wrapped in.
		msg := err.Error()
		if i := strings.LastIndex(msg, casework.ErrInvalidArgument.Error()+": "); i >= 0 {
			msg = msg[i:]
		}
		return badRequest(msg)
	case errors.Is(err, context.DeadlineExceeded):
		return &problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: "the query took too long; narrow the filters or the time range"}
	case errors.Is(err, context.Canceled):
		return &problem{Status: 499, Title: "Client Closed Request", Detail: "the request was cancelled"}
	}
	s.logger.Error("store error", "path", r.URL.Path, "request_id", requestID(r.Context()), "error", err)
	return &problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: "storage is unavailable; retry shortly"}
}

// queryError describes a query parsing error without echoing the query.
func queryError(err error) string {
	var ee url.EscapeError
	switch {
	case errors.As(err, &ee):
		return "invalid percent-encoding " + quote(string(ee))
	case strings.Contains(err.Error(), "semicolon"):
		return "a raw \";\" is not a parameter separator"
	}
	return "it does not parse"
}

func notFound(what string) *problem {
	return &problem{Status: http.StatusNotFound, Title: "Not Found", Detail: "no such " + what}
}
