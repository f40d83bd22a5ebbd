package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// retryAfterSeconds is the Retry-After of a 503.
const retryAfterSeconds = 2

// problem is an RFC 9457 problem document.
type problem struct {
	Type      string `json:"type,omitempty"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Errors lists every invalid parameter at once.
	Errors []string `json:"errors,omitempty"`
	// etag, when set, is the resource's current ETag, sent with the
	// problem (a 412 tells the client what it would have to match).
	etag string
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.etag != "" {
		w.Header().Set("ETag", p.etag)
	}
	p.Instance = r.URL.Path
	p.RequestID = w.Header().Get("X-Request-Id")
	if p.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		// Every 503 is worth retrying: the database is away or busy.
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func badRequest(detail string, errs ...string) *problem {
	return &problem{Status: http.StatusBadRequest, Title: "Bad Request", Detail: detail, Errors: errs}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
