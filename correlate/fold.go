package correlate

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Folding. A detection that fires again and again on the same actor — each
// connection of a miner, each file a ransomware run renames, each command
// of a web shell — is one finding to an analyst, not hundreds. The
// correlator folds the matches of one rule on the same entities within a
// fold window into one alert with a count, first and last seen times and a
// bounded sample of evidence.
//
// The folded alert's id is derived from the tenant, the rule, the fold key
// and the window bucket (event time divided by the window), never from
// which match arrived first, so any arrival order gives the same alerts.
// The fold key is the alert's entities except the kinds that differ
// between repeats of one activity (files, objects, processes): those are
// gathered into the folded alert, up to maxFoldExtra of them.

const (
	// maxFoldSample bounds the evidence ids of a folded alert: the
	// earliest and the latest half each.
	maxFoldSample = 10
	// maxFoldExtra bounds the varying entities gathered into a folded
	// alert beyond those of its first match.
	maxFoldExtra = 8
)

// foldVaries are the entity kinds that differ between repeats of one
// activity and so are not part of the fold key.
var foldVaries = map[ocsf.Entity]bool{ocsf.EntityFile: true, ocsf.EntityObject: true, ocsf.EntityProcess: true}

// fold is the state of one folded alert.
type fold struct {
	alert *alert.Alert // as held by its incident
	// rep is the earliest match by (time, id): the folded alert shows its
	// title, summary and first entities, whatever the arrival order.
	repTime int64
	repID   string
	// early and late are the evidence samples, by (time, id).
	early, late []evRef
	extra       int      // varying entities gathered beyond the first match's
	raw         []string // ids of the folded matches, for de-duplication
	// stored are the origins of the version read back from storage (see
	// replayed); nil for a fold begun in this process.
	stored []alert.Origin
}

type evRef struct {
	t  int64
	id string
}

func evCmp(a, b evRef) int {
	if c := cmp.Compare(a.t, b.t); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// foldID is the id of the folded alert a belongs to.
func (c *Correlator) foldID(a *alert.Alert) string {
	keys := make([]string, 0, len(a.Entities))
	for _, o := range a.Entities {
		if o.Value != "" && !foldVaries[o.Entity] {
			keys = append(keys, string(o.Entity)+":"+o.Value)
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	w := c.cfg.FoldWindow.Milliseconds()
	bucket := a.Time / w
	if a.Time < 0 && a.Time%w != 0 {
		bucket--
	}
	parts := append([]string{a.TenantUID, a.RuleID, strconv.FormatInt(bucket, 10)}, keys...)
	return hashID("fold-", parts...)
}

// foldAlert folds a detection alert into its folded alert. It returns the
// folded alert and whether it is new; nil when a is a match already folded
// (a replay). Correlated alerts and a zero fold window are not folded.
func (c *Correlator) foldAlert(a *alert.Alert) (*alert.Alert, bool) {
	if a.Correlated || a.Keyed || c.cfg.FoldWindow <= 0 {
		if a.Count == 0 {
			a.Count, a.FirstSeen, a.LastSeen = 1, a.Time, a.Time
		}
		return a, true
	}
	if _, dup := c.foldOf[a.ID]; dup {
		return nil, false
	}
	id := c.foldID(a)
	f := c.folds[id]
	stored := c.foldGone[id].stored
	if f != nil {
		stored = f.stored
	}
	if replayed(stored, a.Origins) {
		// Counted before a crash: the batch was stored, not committed,
		// and is read again.
		if f != nil {
			c.foldOf[a.ID] = id
			f.raw = append(f.raw, a.ID)
		}
		c.m.foldReplays.Inc()
		return nil, false
	}
	c.foldOf[a.ID] = id
	ref := sampleRefs(a)
	if f == nil {
		fa := *a
		fa.ID = id
		fa.Count, fa.FirstSeen, fa.LastSeen = 1, a.Time, a.Time
		fa.Origins = mergeOrigins(nil, a.Origins)
		if t, ok := c.foldGone[id]; ok {
			// A late match re-creates an evicted folded alert: it
			// counts on from what was stored, instead of replacing
			// the stored count with 1.
			delete(c.foldGone, id)
			fa.Count += t.count
			fa.FirstSeen, fa.LastSeen = min(t.first, a.Time), max(t.last, a.Time)
			fa.Time = fa.FirstSeen
			fa.Origins = mergeOrigins(fa.Origins, t.origins)
		}
		fa.Entities = slices.Clone(a.Entities)
		f = &fold{alert: &fa, repTime: a.Time, repID: a.ID, raw: []string{a.ID}, stored: stored}
		f.addEvidence(ref)
		c.folds[id] = f
		return &fa, true
	}
	fa := f.alert
	f.raw = append(f.raw, a.ID)
	fa.Count++
	fa.Origins = mergeOrigins(fa.Origins, a.Origins)
	fa.FirstSeen, fa.LastSeen = min(fa.FirstSeen, a.Time), max(fa.LastSeen, a.Time)
	fa.Time = fa.FirstSeen
	fa.Severity = max(fa.Severity, a.Severity)
	if evCmp(evRef{a.Time, a.ID}, evRef{f.repTime, f.repID}) < 0 {
		f.repTime, f.repID = a.Time, a.ID
		fa.Title, fa.Summary, fa.RuleVersion = a.Title, a.Summary, a.RuleVersion
	}
	for _, o := range a.Entities {
		if f.extra >= maxFoldExtra {
			break
		}
		if o.Value == "" || !foldVaries[o.Entity] || slices.ContainsFunc(fa.Entities, func(x ocsf.Observable) bool {
			return x.Entity == o.Entity && x.Value == o.Value
		}) {
			continue
		}
		fa.Entities = append(fa.Entities, o)
		f.extra++
	}
	f.addEvidence(ref)
	return fa, false
}

// replayed reports whether a match read from origins was counted in the
// stored version of its folded alert, whose origins are stored. Input is
// processed in whole batches, in order within each partition, and a
// batch's folded alerts are stored after the whole batch was folded: so
// the stored version counted every match of a partition up to its stored
// position, and a match at or below it is one read again after a crash
// (or by the next owner of the partition). Only the stored origins are
// compared: within a batch, matches are folded in event-time order, not
// in offset order.
func replayed(stored, origins []alert.Origin) bool {
	for _, o := range origins {
		for _, s := range stored {
			if s.Topic == o.Topic && s.Partition == o.Partition && o.Offset <= s.Offset {
				return true
			}
		}
	}
	return false
}

// mergeOrigins adds from to into, keeping the highest offset per topic
// and partition; into is not shared with from.
func mergeOrigins(into, from []alert.Origin) []alert.Origin {
	for _, o := range from {
		i := slices.IndexFunc(into, func(x alert.Origin) bool { return x.Topic == o.Topic && x.Partition == o.Partition })
		if i < 0 {
			into = append(into, o)
		} else {
			into[i].Offset = max(into[i].Offset, o.Offset)
		}
	}
	return into
}

// sampleRefs returns the evidence of one match with its time.
func sampleRefs(a *alert.Alert) []evRef {
	out := make([]evRef, 0, len(a.EventIDs))
	for _, id := range a.EventIDs {
		out = append(out, evRef{a.Time, id})
	}
	return out
}

// addEvidence keeps the earliest and the latest evidence ids and writes the
// sample into the folded alert, oldest first.
func (f *fold) addEvidence(refs []evRef) {
	half := maxFoldSample / 2
	for _, r := range refs {
		if !slices.ContainsFunc(f.early, func(x evRef) bool { return x.id == r.id }) {
			f.early = append(f.early, r)
			slices.SortFunc(f.early, evCmp)
			f.early = f.early[:min(len(f.early), half)]
		}
		if !slices.ContainsFunc(f.late, func(x evRef) bool { return x.id == r.id }) {
			f.late = append(f.late, r)
			slices.SortFunc(f.late, evCmp)
			f.late = f.late[max(len(f.late)-half, 0):]
		}
	}
	ids := make([]string, 0, maxFoldSample)
	for _, r := range f.early {
		ids = append(ids, r.id)
	}
	for _, r := range f.late {
		if !slices.Contains(ids, r.id) {
			ids = append(ids, r.id)
		}
	}
	f.alert.EventIDs = ids
}

// restoreFold records a stored folded alert, so repeats after a restart
// count on. The matches it folded before are not known one by one; its
// origins tell a replayed match (see replayed), which is not counted again.
func (c *Correlator) restoreFold(a *alert.Alert) {
	if a.Correlated || c.cfg.FoldWindow <= 0 || !strings.HasPrefix(a.ID, "fold-") {
		return
	}
	if _, ok := c.folds[a.ID]; ok {
		return
	}
	if a.Count == 0 {
		a.Count = 1
	}
	if a.FirstSeen == 0 {
		a.FirstSeen, a.LastSeen = a.Time, a.Time
	}
	if t, ok := c.foldGone[a.ID]; ok {
		// Stored before the restored window (State.Folds) and rebuilt
		// from its incident, which keeps no origins.
		delete(c.foldGone, a.ID)
		if t.count > a.Count {
			a.Count = t.count
		}
		a.FirstSeen, a.LastSeen = min(a.FirstSeen, t.first), max(a.LastSeen, t.last)
		a.Origins = mergeOrigins(a.Origins, t.origins)
	}
	a.Origins = slices.Clone(a.Origins)
	f := &fold{alert: a, repTime: a.Time, repID: a.ID, stored: slices.Clone(a.Origins)}
	for _, id := range a.EventIDs {
		f.early = append(f.early, evRef{a.FirstSeen, id})
	}
	if len(f.early) > maxFoldSample/2 {
		f.late = slices.Clone(f.early[maxFoldSample/2:])
		f.early = f.early[:maxFoldSample/2]
	}
	c.folds[a.ID] = f
}

// foldTomb is what an evicted folded alert had counted.
type foldTomb struct {
	count       int
	first, last int64
	// origins are the folded alert's; stored those its stored version
	// was read back with (see fold.stored).
	origins, stored []alert.Origin
}

// maxFoldTombs bounds the evicted folds remembered; past it they are
// forgotten all at once (a match of a forgotten fold then starts at 1, as
// after a restart).
const maxFoldTombs = 100_000

// forgetFold drops the fold state of an evicted alert. Its count is kept
// as a tomb: a late match of the same rule on the same entities in the
// same window re-creates the folded alert under the same id, and the
// version it then stores must not count fewer matches than the one
// stored before.
func (c *Correlator) forgetFold(id string) {
	f := c.folds[id]
	if f == nil {
		return
	}
	if len(c.foldGone) >= maxFoldTombs {
		clear(c.foldGone)
	}
	c.foldGone[id] = foldTomb{count: f.alert.Count, first: f.alert.FirstSeen, last: f.alert.LastSeen, origins: f.alert.Origins, stored: f.stored}
	for _, r := range f.raw {
		delete(c.foldOf, r)
	}
	delete(c.folds, id)
}
