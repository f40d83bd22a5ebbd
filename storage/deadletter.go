package storage

import (
	"context"
	"fmt"
	"time"
)

// DeadLetterQuery selects dead letters; Tenants is required. Dead letters
// whose tenant could not be resolved carry an empty tenant_uid; include ""
// in Tenants to see them (an operator's view).
type DeadLetterQuery struct {
	Tenants  []string
	Source   string
	Reason   string
	From, To time.Time
	Limit    int
}

// ListDeadLetters returns matching dead letters with their raw bytes,
// newest first.
func (s *Store) ListDeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	if err := checkTenants(q.Tenants); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	b := &builder{}
	b.add("tenant_uid IN "+placeholders(len(q.Tenants)), anySlice(q.Tenants)...)
	if q.Source != "" {
		b.add("source = ?", q.Source)
	}
	if q.Reason != "" {
		b.add("reason = ?", q.Reason)
	}
	if !q.From.IsZero() {
		b.add("time >= toDateTime(?) AND time_ms >= ?", q.From.Unix(), q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		b.add("time <= toDateTime(?) AND time_ms <= ?", q.To.Unix(), q.To.UnixMilli())
	}
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT tenant_uid, source, topic, kafka_partition, kafka_offset, record, time_ms, reason, error,
    raw, raw_encoding FROM `+s.t(TableDeadLetters)+b.where()+
		fmt.Sprintf(" ORDER BY time_ms DESC, topic, kafka_partition, kafka_offset, record LIMIT 1 BY tenant_uid, source, topic, kafka_partition, kafka_offset, record LIMIT %d", limit),
		b.args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		var d DeadLetter
		var part, rec int32
		var t int64
		var raw, enc string
		if err := rows.Scan(&d.TenantUID, &d.Source, &d.Topic, &part, &d.Offset, &rec, &t, &d.Reason, &d.Error, &raw, &enc); err != nil {
			return nil, err
		}
		d.Partition, d.Record, d.Time = int(part), int(rec), time.UnixMilli(t).UTC()
		if d.Raw, err = s.decodeRaw(raw, enc); err != nil {
			return nil, fmt.Errorf("dead letter %s/%d/%d: %w", d.Topic, d.Partition, d.Offset, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// decodeRaw undoes the client-side compression of a raw column.
func (s *Store) decodeRaw(raw, enc string) ([]byte, error) {
	switch enc {
	case RawNone:
		if raw == "" {
			return nil, nil
		}
		return []byte(raw), nil
	case RawZstd:
		return s.dec.DecodeAll([]byte(raw), nil)
	}
	return nil, fmt.Errorf("unknown raw encoding %q", enc)
}
