package storage

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Watermark returns the event time of the newest stored alert, or the zero
// time when there is none. The correlator restores the state of the window
// that ends there, so a restart resumes where the data is, not where the
// wall clock is (replays and late backfills work the same way).
//
// It reads only the newest daily partition of the alerts table (of every
// shard, on a cluster), so its cost does not grow with retention.
func (s *Store) Watermark(ctx context.Context) (time.Time, error) {
	var partition string
	err := s.conn.QueryRow(s.readCtx(ctx),
		"SELECT max(partition) FROM "+s.dialect.parts()+" WHERE database = ? AND table = ? AND active",
		s.dialect.db, s.dialect.local(TableAlerts)).Scan(&partition)
	if err != nil {
		return time.Time{}, fmt.Errorf("watermark: %w", err)
	}
	if partition == "" {
		return time.Time{}, nil
	}
	day, err := strconv.ParseUint(partition, 10, 32)
	if err != nil {
		return time.Time{}, fmt.Errorf("watermark: unexpected partition %q of %s", partition, TableAlerts)
	}
	var ms int64
	err = s.conn.QueryRow(s.readCtx(ctx),
		"SELECT max(time_ms) FROM "+s.t(TableAlerts)+" WHERE toYYYYMMDD(time) = ?", uint32(day)).Scan(&ms)
	if err != nil {
		return time.Time{}, fmt.Errorf("watermark: %w", err)
	}
	if ms == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms).UTC(), nil
}
