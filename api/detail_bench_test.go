package api_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/musubi-xdr/musubi/internal/apitest"
)

// BenchmarkAPIIncidentDetail measures GET /v1/incidents/{id}, the
// console's first request on the incident page, one at a time end to end
// through HTTP against the real ClickHouse (gzip-compressed, as the
// console asks), and reports p50 and p99 of the time to the last byte:
//
//	MUSUBI_REQUIRE_CLICKHOUSE=1 go test ./api/ -run '^$' -bench 'APIIncidentDetail$' -benchtime 100x -count 6
func BenchmarkAPIIncidentDetail(b *testing.B) {
	e := newAPIEnv(b)
	client := &http.Client{}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		req, err := http.NewRequest(http.MethodGet, e.url+"/v1/incidents/inc-a1", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+apitest.TokAcmeAnalyst)
		req.Header.Set("Accept-Encoding", "gzip")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("GET: got %d with %d bytes", resp.StatusCode, n)
		}
	}
	b.StopTimer()
	reportQuantiles(b, lat)
}
