// Package ui is the analyst's console: a single-page application of plain
// HTML, CSS and ES modules, embedded in the binary and served at /ui/ by
// `musubi serve`. It holds no data of its own and talks only to the public
// HTTP API (docs/api.md) with the token the analyst signs in with, which it
// keeps in the browser's sessionStorage.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path the console is served under.
const Prefix = "/ui/"

// contentSecurityPolicy lets the page load only its own scripts, styles and
// API answers: data from the API is rendered as text, never as markup, and
// this is the second guard.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// gzipped is a file compressed once, when the handler is made.
type gzipped struct {
	body []byte
	etag string
}

// Handler serves the console's files under Prefix. Every other path
// without a file extension is the application's entry page, so links into
// the application load it too. Text files (HTML, CSS, JavaScript, SVG) go
// compressed to browsers that accept gzip: compressed once, when the
// handler is made, about a third of their size.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	etags := map[string]string{}
	zipped := map[string]gzipped{}
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		etags[p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		switch path.Ext(p) {
		case ".html", ".css", ".js", ".svg":
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(b)
			_ = zw.Close()
			if buf.Len() < len(b) {
				zipped[p] = gzipped{body: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `-gz"`}
			}
		}
		return nil
	})
	server := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, Prefix)), "/")
		if _, ok := etags[name]; !ok {
			if path.Ext(name) != "" {
				http.NotFound(w, r) // a missing asset, not a page of the application
				return
			}
			name = "index.html"
		}
		// Revalidate on every load: a new binary serves new files at once.
		h.Set("Cache-Control", "no-cache")
		if z, ok := zipped[name]; ok {
			h.Add("Vary", "Accept-Encoding")
			if acceptsGzip(r) {
				h.Set("Content-Encoding", "gzip")
				h.Set("ETag", z.etag)
				ctype := mime.TypeByExtension(path.Ext(name))
				if ctype == "" {
					ctype = "text/html; charset=utf-8"
				}
				h.Set("Content-Type", ctype)
				http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(z.body))
				return
			}
		}
		h.Set("ETag", etags[name])
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + name
		if name == "index.html" {
			// FileServer redirects /index.html to ./; serve the root instead.
			r2.URL.Path = "/"
		}
		server.ServeHTTP(w, r2)
	})
}

// acceptsGzip reports whether the request's Accept-Encoding names gzip
// (without q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// Mount returns a handler that serves the console at Prefix, redirects the
// bare root to it and passes everything else to api.
func Mount(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Prefix, Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(Prefix, http.StatusFound))
	mux.Handle("/", api)
	return mux
}
