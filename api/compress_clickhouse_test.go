package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/internal/apitest"
)

// rawDo sends a request with the given Accept-Encoding and returns the
// answer as it came over the wire and its body decoded.
func (e *apiEnv) rawDo(t *testing.T, method, path, acceptEncoding, body string, headers ...string) (resp *http.Response, wire, decoded []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apitest.TokAcmeAnalyst)
	// Set explicitly, so the transport neither adds gzip nor decodes.
	req.Header.Set("Accept-Encoding", acceptEncoding)
	if body != "" {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wire, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	decoded = wire
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(wire))
		if err != nil {
			t.Fatalf("%s %s: Content-Encoding gzip but %v", method, path, err)
		}
		if decoded, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s %s: gunzip: %v", method, path, err)
		}
	}
	return resp, wire, decoded
}

// TestAPICompressedIncident: an incident read in gzip is the same JSON
// with the same ETag as read plain, and that ETag changes it through
// If-Match; refusals stay readable problem documents.
func TestAPICompressedIncident(t *testing.T) {
	e := newAPIEnv(t)
	plain, plainWire, _ := e.rawDo(t, http.MethodGet, "/v1/incidents/inc-a1", "identity", "")
	zipped, zipWire, zipBody := e.rawDo(t, http.MethodGet, "/v1/incidents/inc-a1", "gzip, deflate, br, zstd", "")
	if plain.StatusCode != http.StatusOK || zipped.StatusCode != http.StatusOK {
		t.Fatalf("got %d and %d, want 200 for both", plain.StatusCode, zipped.StatusCode)
	}
	if ce := plain.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("identity: got Content-Encoding %q, want none", ce)
	}
	if ce := zipped.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("gzip: got Content-Encoding %q, want gzip (plain body %d bytes)", ce, len(plainWire))
	}
	for _, r := range []*http.Response{plain, zipped} {
		if v := r.Header.Get("Vary"); v != "Accept-Encoding" {
			t.Errorf("got Vary %q, want Accept-Encoding", v)
		}
	}
	if !bytes.Equal(zipBody, plainWire) {
		t.Errorf("the gunzipped incident differs from the plain one:\n%.300s\n%.300s", zipBody, plainWire)
	}
	if len(zipWire) >= len(plainWire) {
		t.Errorf("gzip sent %d bytes for %d plain, want fewer", len(zipWire), len(plainWire))
	}
	etag := zipped.Header.Get("ETag")
	if etag != `"1.0"` || plain.Header.Get("ETag") != etag {
		t.Fatalf("got ETag %s gzip and %s plain, want \"1.0\" for both", etag, plain.Header.Get("ETag"))
	}

	// The ETag read in gzip is the incident's version: it changes the
	// incident, and then no longer matches.
	patch := `{"status":"in_progress"}`
	r, _, body := e.rawDo(t, http.MethodPatch, "/v1/incidents/inc-a1", "gzip", patch, "If-Match", etag)
	if r.StatusCode != http.StatusOK || r.Header.Get("ETag") != `"1.1"` {
		t.Fatalf("PATCH with the gzip answer's ETag: got %d ETag %s %.300s, want 200 with ETag \"1.1\"", r.StatusCode, r.Header.Get("ETag"), body)
	}
	// A different change on the old ETag (the same change would be
	// answered as an already-applied retry, docs/api.md "Retrying after a
	// 503").
	r, _, body = e.rawDo(t, http.MethodPatch, "/v1/incidents/inc-a1", "gzip", `{"status":"open"}`, "If-Match", etag)
	if r.StatusCode != http.StatusPreconditionFailed || r.Header.Get("ETag") != `"1.1"` {
		t.Errorf("stale ETag: got %d ETag %s, want 412 with ETag \"1.1\"", r.StatusCode, r.Header.Get("ETag"))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" || !bytes.Contains(body, []byte(`"status":412`)) {
		t.Errorf("stale ETag: got %s %.300s, want a problem document", ct, body)
	}

	// The CSV export streams through gzip too.
	r, _, body = e.rawDo(t, http.MethodGet, "/v1/incidents.csv", "gzip", "")
	if r.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("id,")) {
		t.Errorf("CSV: got %d %.100q, want 200 starting with the header row", r.StatusCode, body)
	}
}
