package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/musubi-xdr/musubi/internal/apitest"
	"github.com/musubi-xdr/musubi/internal/chtest"
)

// rawPatch sends one PATCH and returns its status, new ETag and latency:
// the bare HTTP round trip, without the checks of apiEnv.do (the OpenAPI
// validation would be timed too).
func (e *apiEnv) rawPatch(client *http.Client, id, etag string, body []byte) (int, string, time.Duration, error) {
	req, err := http.NewRequest(http.MethodPatch, e.url+"/v1/incidents/"+id, bytes.NewReader(body))
	if err != nil {
		return 0, "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+apitest.TokAcmeAnalyst)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	req.Header.Set("If-Match", etag)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("ETag"), time.Since(start), nil
}

// reportQuantiles reports the p50 and p99 of lat in milliseconds.
func reportQuantiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// BenchmarkAPIPatch measures one PATCH at a time on an otherwise idle
// server, end to end through HTTP against the real ClickHouse (each with
// the ETag the previous one answered), and reports p50 and p99:
//
//	MUSUBI_REQUIRE_CLICKHOUSE=1 go test ./api/ -run '^$' -bench 'APIPatch$' -benchtime 300x -count 6
func BenchmarkAPIPatch(b *testing.B) {
	e := newAPIEnv(b)
	client := &http.Client{}
	etag := `"1.0"`
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		code, next, d, err := e.rawPatch(client, "inc-a1", etag, fmt.Appendf(nil, `{"tags": ["t%d"]}`, i))
		if err != nil || code != http.StatusOK {
			b.Fatalf("PATCH %d: got %d %v", i, code, err)
		}
		lat = append(lat, d)
		etag = next
	}
	b.StopTimer()
	reportQuantiles(b, lat)
}

// BenchmarkAPIPatchHistory measures whether a PATCH costs more on an
// incident with a long workflow history: it alternates PATCHes of an
// incident that had 2,000 workflow versions before the first (written as
// 20 inserts of 100 versions, as many parts as a burst of updates leaves
// until ClickHouse merges them) with PATCHes of one that starts with none,
// so both meet the same load on a shared machine, and reports p50 and p99
// of each:
//
//	MUSUBI_REQUIRE_CLICKHOUSE=1 go test ./api/ -run '^$' -bench 'APIPatchHistory' -benchtime 300x -count 6
func BenchmarkAPIPatchHistory(b *testing.B) {
	const prior, perInsert = 2000, 100
	e := newAPIEnv(b)
	e.addIncident("inc-history", "acme", apitest.AcmeAccount)
	e.addIncident("inc-fresh", "acme", apitest.AcmeAccount)
	conn, err := clickhouse.Open(chtest.Options(e.db))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for from := 0; from < prior; from += perInsert {
		err := conn.Exec(context.Background(), fmt.Sprintf(`INSERT INTO incident_workflow
    (tenant_uid, incident_id, version, updated, updated_ms, updated_by, status, assignee, tags, acknowledged_ms)
SELECT 'acme', 'inc-history', number + 1, now(), toInt64(now()) * 1000, 'alice', 'in_progress', 'alice',
    [concat('h', toString(number))], toInt64(now()) * 1000
FROM system.numbers WHERE number >= %d LIMIT %d`, from, perInsert))
		if err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{}
	ids := []string{"inc-history", "inc-fresh"}
	etags := []string{fmt.Sprintf(`"1.%d"`, prior), `"1.0"`}
	lat := [][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	b.ResetTimer()
	for i := range b.N {
		for k, id := range ids {
			code, next, d, err := e.rawPatch(client, id, etags[k], fmt.Appendf(nil, `{"tags": ["t%d"]}`, i))
			if err != nil || code != http.StatusOK {
				b.Fatalf("PATCH %d of %s: got %d %v", i, id, code, err)
			}
			lat[k] = append(lat[k], d)
			etags[k] = next
		}
	}
	b.StopTimer()
	for k, name := range []string{"history", "fresh"} {
		slices.Sort(lat[k])
		q := func(p float64) float64 {
			return float64(lat[k][min(len(lat[k])-1, int(p*float64(len(lat[k]))))].Microseconds()) / 1000
		}
		b.ReportMetric(q(0.50), name+"-p50-ms")
		b.ReportMetric(q(0.99), name+"-p99-ms")
	}
}

// BenchmarkAPIPatchConcurrent sends 200 PATCHes at once, each to its own
// incident with its current ETag (so every one reads and writes, none is
// refused early), per iteration, and reports the latency quantiles over
// all of them and how many answered 5xx (the goal is none):
//
//	MUSUBI_REQUIRE_CLICKHOUSE=1 go test ./api/ -run '^$' -bench 'APIPatchConcurrent' -benchtime 3x -count 6
func BenchmarkAPIPatchConcurrent(b *testing.B) {
	const n = 200
	e := newAPIEnv(b)
	ids := make([]string, n)
	etags := make([]string, n)
	for i := range n {
		ids[i], etags[i] = fmt.Sprintf("inc-c%03d", i), `"1.0"`
		e.addIncident(ids[i], "acme", apitest.AcmeAccount)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var lat []time.Duration
	fails := 0
	b.ResetTimer()
	for round := range b.N {
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				code, next, d, err := e.rawPatch(client, ids[i], etags[i], fmt.Appendf(nil, `{"tags": ["r%d"]}`, round))
				mu.Lock()
				defer mu.Unlock()
				if err != nil || code >= 500 {
					fails++
					return
				}
				if code != http.StatusOK {
					b.Errorf("PATCH %s: got %d", ids[i], code)
				}
				lat = append(lat, d)
				etags[i] = next
			}()
		}
		close(start)
		wg.Wait()
	}
	b.StopTimer()
	if len(lat) > 0 {
		reportQuantiles(b, lat)
	}
	b.ReportMetric(float64(fails), "5xx")
}
