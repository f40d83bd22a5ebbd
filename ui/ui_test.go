package ui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandler checks what the browser is served: the entry page for the
// console's paths, modules with a JavaScript type, a strict CSP, and
// revalidation by ETag.
func TestHandler(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Mount(api)
	get := func(path string, header ...string) *http.Response {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	for _, tc := range []struct {
		path, wantType, wantBody string
		code                     int
	}{
		{"/ui/", "text/html", `<script type="module" src="/ui/js/app.js">`, http.StatusOK},
		{"/ui/index.html", "text/html", `id="main"`, http.StatusOK},
		{"/ui/incidents/inc-1", "text/html", `id="main"`, http.StatusOK},
		{"/ui/js/app.js", "text/javascript", "import", http.StatusOK},
		{"/ui/css/app.css", "text/css", ":root", http.StatusOK},
		{"/ui/js/missing.js", "text/plain", "404", http.StatusNotFound},
	} {
		resp := get(tc.path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.wantType) || !strings.Contains(string(body), tc.wantBody) {
			t.Errorf("GET %s: got %d %q %.80q, want %d %s containing %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.code, tc.wantType, tc.wantBody)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: got CSP %q, want scripts limited to the console's own", tc.path, csp)
		}
	}
	first := get("/ui/js/app.js")
	etag := first.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on /ui/js/app.js")
	}
	if again := get("/ui/js/app.js", "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: got %d, want 304", again.StatusCode)
	}
	// Browsers that accept gzip get the compressed file, under its own
	// ETag, and revalidate it; others get the file as it is.
	plain, _ := io.ReadAll(get("/ui/js/graph.js").Body)
	for _, accept := range []string{"gzip, deflate, br", "br;q=1.0, gzip;q=0.8"} {
		zr := get("/ui/js/graph.js", "Accept-Encoding", accept)
		if zr.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(zr.Header.Get("Content-Type"), "text/javascript") || !strings.Contains(zr.Header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("Accept-Encoding %q: got encoding %q, type %q, vary %q; want gzip JavaScript that varies by Accept-Encoding", accept, zr.Header.Get("Content-Encoding"), zr.Header.Get("Content-Type"), zr.Header.Get("Vary"))
		}
		gz, err := gzip.NewReader(zr.Body)
		if err != nil {
			t.Fatal(err)
		}
		unzipped, err := io.ReadAll(gz)
		if err != nil || !bytes.Equal(unzipped, plain) || zr.ContentLength >= int64(len(plain)) {
			t.Errorf("gzip body: %d bytes for %d, unzips to the file: %v (%v)", zr.ContentLength, len(plain), bytes.Equal(unzipped, plain), err)
		}
		if zr.Header.Get("ETag") == etag || zr.Header.Get("ETag") == "" {
			t.Errorf("the gzip body has ETag %q, want its own", zr.Header.Get("ETag"))
		}
		if again := get("/ui/js/graph.js", "Accept-Encoding", accept, "If-None-Match", zr.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
			t.Errorf("revalidating the gzip body: got %d, want 304", again.StatusCode)
		}
	}
	for _, accept := range []string{"", "gzip;q=0", "br"} {
		if zr := get("/ui/js/graph.js", "Accept-Encoding", accept); zr.Header.Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q: got encoding %q, want none", accept, zr.Header.Get("Content-Encoding"))
		}
	}
	if zr := get("/ui/incidents/inc-1", "Accept-Encoding", "gzip"); zr.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(zr.Header.Get("Content-Type"), "text/html") {
		t.Errorf("entry page: got encoding %q, type %q; want gzip HTML", zr.Header.Get("Content-Encoding"), zr.Header.Get("Content-Type"))
	}
	if resp := get("/"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: got %d to %q, want 302 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/v1/incidents", "/healthz", "/nothing"} {
		if resp := get(p); resp.StatusCode != http.StatusTeapot {
			t.Errorf("GET %s: got %d, want it passed to the API", p, resp.StatusCode)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/ui/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: got %d, want 405", rec.Code)
	}
}
