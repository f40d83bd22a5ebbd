package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configures the API handler.
type Options struct {
	Store    Store
	Rules    RuleSource
	Ready    func(ctx context.Context) error
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	Tokens   []Token
	Tenants  []Tenant
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the API's http.Handler.
type Server struct {
	opts     Options
	mux      *http.ServeMux
	tokens   *tokenStore
	logger   *slog.Logger
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// Limits on what a request may ask for.
const (
	maxBodyBytes = 1 << 20
	maxPageSize  = 500
	defaultPage  = 50
	maxTimeRange = 366 * 24 * time.Hour
	queryTimeout = 30 * time.Second
)

// New returns the API handler.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Rules == nil || opts.Ready == nil || opts.Logger == nil {
		return nil, errors.New("api: Store, Rules, Ready and Logger are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:   opts,
		mux:    http.NewServeMux(),
		tokens: newTokenStore(opts.Tokens, opts.Tenants),
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
	}
	if opts.Registry != nil {
		opts.Registry.MustRegister(s.requests, s.latency)
	}
	s.routes()
	return s, nil
}

// routes lists every route; Routes() exposes the list for the OpenAPI check.
func (s *Server) routes() {
	for _, rt := range s.routeTable() {
		s.handle(rt.pattern, rt.role, rt.handler)
	}
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
		{"GET /v1/incidents", RoleViewer, s.listIncidents},
		{"GET /v1/incidents/{id}", RoleViewer, s.getIncident},
		{"GET /v1/rules", RoleViewer, s.listRules},
		{"POST /-/reload", RoleAdmin, s.reload},
	}
}

// Routes returns the method and path pattern of every API route.
func (s *Server) Routes() []string {
	var out []string
	for _, rt := range s.routeTable() {
		out = append(out, rt.pattern)
	}
	return append(out, "GET /metrics")
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) handle(pattern string, role Role, h func(http.ResponseWriter, *http.Request) *problem) {
	s.mux.Handle(pattern, s.instrument(pattern, func(w http.ResponseWriter, r *http.Request) *problem {
		if role != "" {
			p, prob := s.tokens.authenticate(r, s.opts.Now())
			if prob != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="musubi"`)
				return prob
			}
			if p.role.rank() < role.rank() {
				return &problem{Status: http.StatusForbidden, Title: "Forbidden", Detail: fmt.Sprintf("this action needs the %s role; the token has %s", role, p.role)}
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		return h(w, r)
	}))
	if pattern == "GET /healthz" && s.opts.Gatherer != nil {
		s.mux.Handle("GET /metrics", s.instrument("GET /metrics", func(w http.ResponseWriter, r *http.Request) *problem {
			promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
			return nil
		}))
	}
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
		if id == "" || len(id) > 128 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		defer func() {
			if v := recover(); v != nil {
				s.logger.Error("handler panic", "route", routeName, "request_id", id, "panic", v)
				writeProblem(w, r, &problem{Status: http.StatusInternalServerError, Title: "Internal Server Error", Detail: "the request failed; see the server log for request id " + id})
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

// storeError maps a store error to a problem.
func (s *Server) storeError(r *http.Request, err error) *problem {
	switch {
	case errors.Is(err, ErrNotFound):
		return &problem{Status: http.StatusNotFound, Title: "Not Found", Detail: "no such incident"}
	case errors.Is(err, ErrConflict):
		return &problem{Status: http.StatusPreconditionFailed, Title: "Precondition Failed", Detail: "the incident was changed by someone else; reload it and retry"}
	case errors.Is(err, context.DeadlineExceeded):
		return &problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: "the query took too long; narrow the filters or the time range"}
	}
	s.logger.Error("store error", "path", r.URL.Path, "error", err)
	return &problem{Status: http.StatusServiceUnavailable, Title: "Service Unavailable", Detail: "storage is unavailable; retry shortly"}
}
