package storage

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func testutilCounter(t testing.TB, s *Store, table string) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.metrics.rows.WithLabelValues(table).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func retriesCounter(t testing.TB, s *Store) float64 {
	t.Helper()
	var m dto.Metric
	if err := s.metrics.retries.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
