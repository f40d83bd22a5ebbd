// Package eval scores correlation quality on scenarios with ground truth:
// the scorecard of `musubi eval` and `make eval`.
//
// A scenario is a directory of raw telemetry and an expected.json (Truth).
// The caller replays it through the offline pipeline in several orders and
// hands the resulting incidents and alerts to Score, which measures:
//
//   - attack recall: one incident of at least the attack's minimum severity
//     holds every attack entity;
//   - benign entities in high incidents: entities of benign activity found
//     in any incident of severity High (4) or above;
//   - purity: the share of the attack incident's alerts whose evidence
//     events are all events the attack caused (Truth.Attack.EventUIDs);
//   - alerts per attack incident;
//   - unrelated attacks found separately: each one's entities in an
//     incident of at least its minimum severity that holds none of the
//     main attack's entities;
//   - order invariance: every order gives the same incidents (ids,
//     severities, alert ids).
//
// Summarize pools the scenarios and Thresholds.Check says which numbers
// miss their gate. The package imports neither the pipeline nor the
// correlator: the caller converts its incidents into Incident values.
// The generator of scenarios is the subpackage gen.
package eval
