package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/ocsf"
)

// TableStageInputs holds the plain events sequence rules' stages kept (see
// Batch.Stages and migration 0011).
const TableStageInputs = "stage_inputs"

// StageInput is one row of TableStageInputs: a plain event as a sequence
// rule's stage keeps it (correlate.StageInput).
type StageInput struct {
	TenantUID, RuleID, RuleSum string
	Stage                      int
	UID                        string
	Time                       int64
	Observables                []ocsf.Observable
}

// stageInputColumns encodes stage inputs; the event uid, rule and stage
// are the row's id.
func stageInputColumns(ins []StageInput, now int64) *columns {
	n := len(ins)
	tenant, rule, sum, uid := mk[string](n), mk[string](n), mk[string](n), mk[string](n)
	stage := mk[uint16](n)
	ts := mk[time.Time](n)
	tms, inserted := mk[int64](n), mk[int64](n)
	kinds, names, values := mk[[]string](n), mk[[]string](n), mk[[]string](n)
	for i := range ins {
		in := &ins[i]
		tenant[i], rule[i], sum[i], uid[i] = in.TenantUID, in.RuleID, in.RuleSum, in.UID
		stage[i] = uint16(max(0, min(in.Stage, 65535)))
		ts[i], tms[i], inserted[i] = msTime(in.Time), in.Time, now
		kinds[i], names[i], values[i] = observableColumns(in.Observables)
	}
	return &columns{table: TableStageInputs, rows: n,
		names:  []string{"tenant_uid", "rule_id", "rule_sum", "stage", "event_uid", "time", "time_ms", "obs_entity", "obs_name", "obs_value", "inserted_ms"},
		values: []any{tenant, rule, sum, stage, uid, ts, tms, kinds, names, values, inserted},
	}
}

// loadStageInputs reads the stage inputs since since, each once (a
// replayed batch writes its rows again), oldest first.
func (s *Store) loadStageInputs(ctx context.Context, since time.Time, tenantCond string, tenantArgs []any) ([]StageInput, error) {
	rows, err := s.conn.Query(s.readCtx(ctx), `SELECT tenant_uid, rule_id, rule_sum, stage, event_uid, time_ms, obs_entity, obs_name, obs_value
FROM `+s.t(TableStageInputs)+`
WHERE time >= toDateTime(?) AND time_ms >= ? AND `+tenantCond+`
ORDER BY time_ms, tenant_uid, event_uid, rule_id, stage, inserted_ms DESC
LIMIT 1 BY tenant_uid, rule_id, rule_sum, stage, event_uid`,
		append([]any{since.Unix(), since.UnixMilli()}, tenantArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("stage inputs: %w", err)
	}
	defer rows.Close()
	out := []StageInput{}
	for rows.Next() {
		var in StageInput
		var stage uint16
		var kinds, names, values []string
		if err := rows.Scan(&in.TenantUID, &in.RuleID, &in.RuleSum, &stage, &in.UID, &in.Time, &kinds, &names, &values); err != nil {
			return nil, err
		}
		in.Stage = int(stage)
		if in.Observables, err = observablesOf(kinds, names, values); err != nil {
			return nil, fmt.Errorf("stage input %s: %w", in.UID, err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b StageInput) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.TenantUID, b.TenantUID), strings.Compare(a.UID, b.UID),
			strings.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Stage, b.Stage))
	})
	return out, nil
}
