package api

import (
	"fmt"
	"time"

	"github.com/musubi-xdr/musubi/casework"
)

// Case timing. The clock of an incident starts at its first alert's event
// time (first_seen): the incident table keeps only an incident's latest
// version, so the moment the correlator first wrote it is not kept. The
// workflow carries when an analyst first acknowledged it (assigned it or
// moved it off new) and when it was resolved and closed.

// DefaultSLA is the time to resolve per OCSF severity id used when
// Options.SLA is nil: fatal 1h, critical 4h, high 24h, medium 72h, low 7
// days; informational and unknown incidents have none.
func DefaultSLA() map[int]time.Duration {
	return map[int]time.Duration{6: time.Hour, 5: 4 * time.Hour, 4: 24 * time.Hour, 3: 72 * time.Hour, 2: 7 * 24 * time.Hour}
}

// timing computes in's case timing at now.
func timing(in casework.Incident, sla map[int]time.Duration, now time.Time) *casework.Timing {
	created := time.UnixMilli(in.FirstSeen).UTC()
	t := &casework.Timing{CreatedAt: created}
	secs := func(at time.Time) *int64 {
		d := int64(max(at.Sub(created), 0) / time.Second)
		return &d
	}
	if !in.Workflow.AcknowledgedAt.IsZero() {
		t.TimeToAcknowledge = secs(in.Workflow.AcknowledgedAt)
	}
	end := in.Workflow.ResolvedAt
	if end.IsZero() {
		end = in.Workflow.ClosedAt
	}
	if !end.IsZero() {
		t.TimeToResolve = secs(end)
	}
	if d := sla[in.Severity]; d > 0 {
		t.SLADue = created.Add(d)
		if end.IsZero() {
			end = now
		}
		t.SLABreached = end.After(t.SLADue)
	}
	return t
}

// slaMillis is sla by severity in milliseconds, as the store filters by it.
func slaMillis(sla map[int]time.Duration) map[int]int64 {
	out := map[int]int64{}
	for sev, d := range sla {
		out[sev] = d.Milliseconds()
	}
	return out
}

// checkSLA validates an SLA table.
func checkSLA(sla map[int]time.Duration) error {
	for sev, d := range sla {
		if sev < 0 || sev > 6 || d < 0 {
			return fmt.Errorf("api: SLA %d: %s is not a severity id 0..6 with a duration ≥ 0", sev, d)
		}
	}
	return nil
}
