package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZip"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"gzip, deflate, br, zstd"}, true}, // Chromium
		{[]string{"br", "gzip;q=0.5"}, true},        // two header lines
		{[]string{"deflate, br"}, false},
		{[]string{"identity"}, false},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip; q=0.000"}, false},
		{[]string{"gzip;Q=0"}, false},
		{[]string{"gzip;q=0.001"}, true},
		{[]string{"gzip;q=1.0"}, true},
		{[]string{"gzip;q=banana"}, false},
		{[]string{"gzip;q=2"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"gzip;q=0, *"}, false}, // the named coding wins over *
		{[]string{"*;q=0, gzip"}, true},
		{[]string{"br;q=1, identity;q=0.5, *;q=0.1"}, true},
		{[]string{"gzipped"}, false},
	} {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("Accept-Encoding %q: got %v, want %v", tc.header, got, tc.want)
		}
	}
}

// big is a JSON body well above compressMinBytes.
var big = []byte(`{"items":[` + strings.Repeat(`{"id":"inc-7c1e","title":"Instance role credentials used from outside AWS"},`, 60) + `{}]}` + "\n")

// serve runs h through compress and returns the raw answer, undecoded.
func serve(t *testing.T, h http.HandlerFunc, method, acceptEncoding string) *http.Response {
	t.Helper()
	ts := httptest.NewServer(compress(h))
	t.Cleanup(ts.Close)
	req, err := http.NewRequest(method, ts.URL+"/v1/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	} else {
		// Without a header of ours the transport would ask for gzip and
		// decode the answer itself.
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// bodyOf reads an answer's body, gunzipped when it says it is gzip.
func bodyOf(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return raw
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("body says gzip but is not: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if len(raw) >= len(b) {
		t.Errorf("compressed %d bytes to %d, want smaller", len(b), len(raw))
	}
	return b
}

func TestCompressNegotiation(t *testing.T) {
	jsonOf := func(body []byte, status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"3.1"`)
			writeJSONBytes(w, status, "application/json", body)
		}
	}
	for _, tc := range []struct {
		name           string
		h              http.HandlerFunc
		method, accept string
		wantGzip       bool
		wantVary       bool
		wantStatus     int
		wantBody       []byte
	}{
		{"gzip accepted", jsonOf(big, 200), "GET", "gzip, deflate, br", true, true, 200, big},
		{"gzip refused with q=0", jsonOf(big, 200), "GET", "gzip;q=0, br", false, true, 200, big},
		{"no gzip accepted", jsonOf(big, 200), "GET", "identity", false, true, 200, big},
		{"wildcard", jsonOf(big, 200), "GET", "*", true, true, 200, big},
		{"small answer", jsonOf([]byte(`{"id":"inc-7c1e"}`+"\n"), 200), "GET", "gzip", false, true, 200, []byte(`{"id":"inc-7c1e"}` + "\n")},
		{"just below the threshold", jsonOf(big[:compressMinBytes-1], 200), "GET", "gzip", false, true, 200, big[:compressMinBytes-1]},
		{"at the threshold", jsonOf(big[:compressMinBytes], 200), "GET", "gzip", true, true, 200, big[:compressMinBytes]},
		{"POST answer", jsonOf(big, 201), "POST", "gzip", true, true, 201, big},
		{"HEAD untouched", jsonOf(big, 200), "HEAD", "gzip", false, false, 200, nil},
		{"large problem document", func(w http.ResponseWriter, r *http.Request) {
			writeJSONBytes(w, http.StatusBadRequest, "application/problem+json", big)
		}, "GET", "gzip", true, true, 400, big},
		{"Markdown", func(w http.ResponseWriter, r *http.Request) {
			writeJSONBytes(w, 200, "text/markdown; charset=utf-8", big)
		}, "GET", "gzip", true, true, 200, big},
		{"not a compressed type", func(w http.ResponseWriter, r *http.Request) {
			writeJSONBytes(w, 200, "text/plain; version=0.0.4", big)
		}, "GET", "gzip", false, false, 200, big},
		{"already encoded", func(w http.ResponseWriter, r *http.Request) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(big)
			_ = zw.Close()
			w.Header().Set("Content-Encoding", "gzip")
			writeJSONBytes(w, 200, "application/json", buf.Bytes())
		}, "GET", "gzip", true, false, 200, big}, // once, not twice
		{"304 untouched", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("ETag", `"3.1"`)
			w.WriteHeader(http.StatusNotModified)
		}, "GET", "gzip", false, false, 304, nil},
		{"204 untouched", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNoContent)
		}, "DELETE", "gzip", false, false, 204, nil},
		{"a Content-Length below the threshold", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "17")
			writeJSONBytes(w, 200, "application/json", []byte(`{"id":"inc-7c1e"}`))
		}, "GET", "gzip", false, true, 200, []byte(`{"id":"inc-7c1e"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := serve(t, tc.h, tc.method, tc.accept)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("got status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.wantGzip {
				t.Errorf("got Content-Encoding %q, want gzip %v", resp.Header.Get("Content-Encoding"), tc.wantGzip)
			}
			if got := strings.Join(resp.Header.Values("Vary"), ","); (got == "Accept-Encoding") != tc.wantVary {
				t.Errorf("got Vary %q, want Accept-Encoding %v", got, tc.wantVary)
			}
			// Content-Length is absent (chunked) or the length on the wire.
			if cl := resp.Header.Get("Content-Length"); cl != "" && tc.method != "HEAD" {
				raw, _ := io.ReadAll(resp.Body)
				if cl != strconv.Itoa(len(raw)) {
					t.Errorf("got Content-Length %s for %d bytes on the wire", cl, len(raw))
				}
				resp.Body = io.NopCloser(bytes.NewReader(raw))
			}
			if got := bodyOf(t, resp); !bytes.Equal(got, tc.wantBody) {
				t.Errorf("got body %.80q (%d bytes), want %.80q (%d bytes)", got, len(got), tc.wantBody, len(tc.wantBody))
			}
		})
	}
}

func writeJSONBytes(w http.ResponseWriter, status int, ctype string, b []byte) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// TestCompressSameETag: both codings of one answer carry the same ETag,
// which names the incident's version, not the bytes.
func TestCompressSameETag(t *testing.T) {
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"3.1"`)
		writeJSONBytes(w, 200, "application/json", big)
	}
	plain, zipped := serve(t, h, "GET", "identity"), serve(t, h, "GET", "gzip")
	if zipped.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("got Content-Encoding %q, want gzip", zipped.Header.Get("Content-Encoding"))
	}
	if p, z := plain.Header.Get("ETag"), zipped.Header.Get("ETag"); p != `"3.1"` || z != `"3.1"` {
		t.Errorf("got ETag %s plain and %s gzip, want \"3.1\" for both", p, z)
	}
	if p, z := bodyOf(t, plain), bodyOf(t, zipped); !bytes.Equal(p, z) {
		t.Errorf("the gunzipped body differs from the plain one (%d vs %d bytes)", len(z), len(p))
	}
}

// TestCompressStreams: a handler that flushes gets each flushed part to
// the client before it writes the next, compressed, even below
// compressMinBytes; the rest of the answer follows in the same stream.
func TestCompressStreams(t *testing.T) {
	next := make(chan struct{})
	h := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "id,title\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		<-next // the client has read the first row
		_, _ = w.Write(bytes.Repeat([]byte("inc-7c1e,Instance role credentials used from outside AWS\n"), 100))
	}
	resp := serve(t, h, "GET", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("got Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	// The first row must arrive while the handler waits: a Flush that did
	// not reach the client would leave this read waiting, so it is bounded.
	type read struct {
		zr    *gzip.Reader
		first []byte
		err   error
	}
	got := make(chan read, 1)
	go func() {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			got <- read{err: err}
			return
		}
		first := make([]byte, len("id,title\n"))
		_, err = io.ReadFull(zr, first)
		got <- read{zr, first, err}
	}()
	var r read
	select {
	case r = <-got:
	case <-time.After(10 * time.Second):
		close(next)
		t.Fatal("the flushed header row did not reach the client within 10 s")
	}
	close(next)
	if r.err != nil || string(r.first) != "id,title\n" {
		t.Fatalf("got %q, %v before the handler went on, want the flushed header row", r.first, r.err)
	}
	zr := r.zr
	rest, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := 100 * len("inc-7c1e,Instance role credentials used from outside AWS\n"); len(rest) != want {
		t.Errorf("got %d bytes after the first row, want %d", len(rest), want)
	}
}

// BenchmarkCompressIncident compresses an incident-sized JSON answer (the
// demo incident is about 281 KiB): the OpenAPI document, repeated to that
// size (its repeats lie beyond deflate's 32 KiB window, so they compress
// as fresh JSON would).
func BenchmarkCompressIncident(b *testing.B) {
	var body []byte
	for len(body) < 281<<10 {
		body = append(body, openapiJSON...)
	}
	body = body[:281<<10]
	for _, level := range []int{gzip.BestSpeed, gzip.DefaultCompression} {
		b.Run("level="+strconv.Itoa(level), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var out int
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, level) // reused, as compress pools them
			for b.Loop() {
				buf.Reset()
				zw.Reset(&buf)
				_, _ = zw.Write(body)
				_ = zw.Close()
				out = buf.Len()
			}
			b.ReportMetric(float64(out), "bytes-out/op")
		})
	}
}
