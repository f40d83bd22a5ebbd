package api

import (
	"compress/gzip"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Response compression.
//
// The console's static files are gzip-compressed once, at start (package
// ui); the API's answers are compressed here, per response: an incident
// with its graph and first page of evidence is a few hundred KiB of JSON
// that gzip shrinks about tenfold, which is most of the incident page's
// first paint on a slow or busy link.
//
// What is compressed: JSON (application/json and every +json type, problem
// documents included), Markdown and CSV, at least compressMinBytes long,
// for a GET/POST/PATCH/DELETE whose Accept-Encoding takes gzip (q > 0,
// directly or through "*"). What is not: HEAD, 1xx/204/304 and other
// answers without a body, answers that already carry a Content-Encoding
// (the /metrics handler negotiates its own), other media types, and
// answers shorter than compressMinBytes (gzip's header and trailer would
// eat what it saves). Every answer of a compressible type says
// "Vary: Accept-Encoding", compressed or not, so a cache keeps the codings
// apart.
//
// The first compressMinBytes of a body are held back until the handler
// has written that much, finished, or flushed; after that the body streams
// through the gzip writer (the CSV export is never held whole in memory),
// and Flush flushes the gzip writer before the connection. The handler's
// Content-Length, if it set one, is removed from a compressed answer;
// net/http sets the compressed length when the whole answer fits its
// buffer and otherwise sends it chunked.
//
// ETags are not changed: an ETag of this API names the incident's
// version, not a byte representation, and If-Match compares it strongly
// against the stored version, whatever coding the client read it in (see
// docs/api.md).

// compressMinBytes is the smallest body that is compressed.
const compressMinBytes = 1024

// gzipLevel trades CPU for bytes. On 281 KiB of JSON level 1 (BestSpeed)
// takes a third to a fifth of the CPU of the default level 6 for 1.4
// times the bytes (BenchmarkCompressIncident: 55 KiB against 39 KiB); the
// demo incident's 278 KiB become 39 KiB at level 1. An incident is read
// far more often than the network is the bottleneck on a busy server, so
// CPU wins.
const gzipLevel = gzip.BestSpeed

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzipLevel)
	return zw
}}

// compress wraps next so that its compressible answers are gzip-encoded
// for clients that accept it.
func compress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		cw := &compressWriter{rw: w, acceptsGzip: acceptsGzip(r.Header.Values("Accept-Encoding"))}
		defer cw.close()
		next.ServeHTTP(cw, r)
	})
}

// acceptsGzip reports whether an Accept-Encoding header (RFC 9110 12.5.3)
// takes gzip: gzip or x-gzip listed with a q-value above 0, or, when
// neither is listed, "*" with a q-value above 0.
func acceptsGzip(values []string) bool {
	named, star := -1.0, -1.0
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			q := 1.0
			for param := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(param, "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0 // a q-value that does not parse is not a yes
					}
					q = f
				}
			}
			switch coding {
			case "gzip", "x-gzip":
				named = max(named, q)
			case "*":
				star = max(star, q)
			}
		}
	}
	if named >= 0 {
		return named > 0
	}
	return star > 0
}

// compressible reports whether a Content-Type is one the API compresses.
func compressible(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case mt == "application/json", strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"),
		mt == "text/markdown", mt == "text/csv":
		return true
	}
	return false
}

// compressWriter decides at the first compressMinBytes of the body whether
// to compress it.
type compressWriter struct {
	rw          http.ResponseWriter
	acceptsGzip bool

	code    int  // the status the handler set; 0 before WriteHeader
	pending bool // the header is held back until the decision
	buf     []byte
	zw      *gzip.Writer
}

func (w *compressWriter) Header() http.Header { return w.rw.Header() }

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *compressWriter) Unwrap() http.ResponseWriter { return w.rw }

func (w *compressWriter) WriteHeader(code int) {
	if w.code != 0 {
		return // superfluous, as net/http treats it
	}
	if code < 200 {
		w.rw.WriteHeader(code) // informational; the final status follows
		return
	}
	w.code = code
	h := w.rw.Header()
	if !bodyAllowed(code) || h.Get("Content-Encoding") != "" || !compressible(h.Get("Content-Type")) {
		w.rw.WriteHeader(code)
		return
	}
	h.Add("Vary", "Accept-Encoding")
	if !w.acceptsGzip {
		w.rw.WriteHeader(code)
		return
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n < compressMinBytes {
			w.rw.WriteHeader(code)
			return
		}
	}
	w.pending = true
}

// bodyAllowed reports whether a status may carry a body (RFC 9110 6.4.1).
func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified
}

func (w *compressWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.zw != nil:
		return w.zw.Write(b)
	case !w.pending:
		return w.rw.Write(b)
	}
	w.buf = append(w.buf, b...)
	if len(w.buf) >= compressMinBytes {
		if err := w.startGzip(); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// startGzip sends the held header with Content-Encoding: gzip and the held
// bytes through a gzip writer.
func (w *compressWriter) startGzip() error {
	w.pending = false
	h := w.rw.Header()
	h.Del("Content-Length")
	h.Set("Content-Encoding", "gzip")
	w.rw.WriteHeader(w.code)
	w.zw = gzipWriters.Get().(*gzip.Writer)
	w.zw.Reset(w.rw)
	buf := w.buf
	w.buf = nil
	_, err := w.zw.Write(buf)
	return err
}

// Flush sends what the handler has written so far: a held body is
// compressed from here on (a handler that flushes is streaming), the gzip
// writer is flushed, then the connection.
func (w *compressWriter) Flush() {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.pending {
		_ = w.startGzip()
	}
	if w.zw != nil {
		_ = w.zw.Flush()
	}
	_ = http.NewResponseController(w.rw).Flush()
}

// close ends the answer: a held body shorter than compressMinBytes goes
// out as it is, a gzip stream gets its trailer.
func (w *compressWriter) close() {
	if w.pending {
		w.pending = false
		w.rw.WriteHeader(w.code)
		_, _ = w.rw.Write(w.buf)
		w.buf = nil
		return
	}
	if w.zw != nil {
		_ = w.zw.Close()
		w.zw.Reset(io.Discard)
		gzipWriters.Put(w.zw)
		w.zw = nil
	}
}
