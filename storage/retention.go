package storage

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// DroppedPartition names one partition DropExpiredPartitions removed.
type DroppedPartition struct {
	Table     string
	Partition string
}

var partitionRE = regexp.MustCompile(`^[0-9]{6}([0-9]{2})?$`)

// partitionEnd returns the first instant after partition p of a table
// partitioned by toYYYYMMDD (daily) or toYYYYMM (monthly).
func partitionEnd(p string, monthly bool) (time.Time, bool) {
	if !partitionRE.MatchString(p) {
		return time.Time{}, false
	}
	if monthly {
		if len(p) != 6 {
			return time.Time{}, false
		}
		t, err := time.Parse("200601", p)
		return t.AddDate(0, 1, 0), err == nil
	}
	if len(p) != 8 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", p)
	return t.AddDate(0, 0, 1), err == nil
}

// DropExpiredPartitions enforces Config.Retention: for every table with a
// retention, it drops the partitions whose every row is older than
// now - retention (the partition ends at or before that cutoff). Partition
// bounds are in UTC, as the DateTime partition columns are. It returns
// what it dropped; on a cluster it lists the partitions of every shard and
// drops them from the _local tables of each shard.
func (s *Store) DropExpiredPartitions(ctx context.Context, now time.Time) ([]DroppedPartition, error) {
	var dropped []DroppedPartition
	for _, table := range Tables() {
		keep := s.cfg.Retention[table]
		if slices.Contains(graphTables, table) {
			keep = s.cfg.Retention[TableIncidents]
		}
		if keep <= 0 {
			continue
		}
		cutoff := now.Add(-keep)
		local := s.dialect.local(table)
		rows, err := s.conn.Query(s.readCtx(ctx), `SELECT DISTINCT partition FROM `+s.dialect.parts()+`
WHERE database = ? AND table = ? AND active ORDER BY partition LIMIT 100000`, s.cfg.Database, local)
		if err != nil {
			return dropped, fmt.Errorf("list partitions of %s: %w", table, err)
		}
		var expired []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return dropped, err
			}
			end, ok := partitionEnd(p, tableSpecs[table].monthly)
			if !ok {
				s.log.Warn("unexpected partition id; not dropping it", "table", table, "partition", p)
				continue
			}
			if !end.After(cutoff) {
				expired = append(expired, p)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dropped, err
		}
		for _, p := range expired {
			// p is digits only (partitionRE), safe to splice into the DDL.
			// On a cluster once per shard (execDDL), as migrations alter.
			q := fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %s", s.cfg.Database, local, p)
			if err := s.execDDL(ctx, q); err != nil {
				return dropped, fmt.Errorf("drop partition %s of %s: %w", p, table, err)
			}
			s.log.Info("dropped expired partition", "table", table, "partition", p, "retention", keep)
			dropped = append(dropped, DroppedPartition{Table: table, Partition: p})
		}
	}
	return dropped, nil
}
