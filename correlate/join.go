package correlate

import (
	"slices"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Causal joining. A shared host, bucket object or address is not by itself
// evidence that two activities belong to one story: benign work shares
// them with attacks all the time. Links differ in strength:
//
//   - Strong kinds name one actor or one activity: a role session, an access
//     key, a principal, a process, a CodeDeploy deployment, a finding, a
//     container, a file hash. Two alerts that share one within its window
//     belong together, whatever their severities.
//   - Weak kinds name a place that many activities pass through: an
//     instance, a host, an address, an S3 object, a domain. They join only
//     alerts of at least WeakJoinSeverity on both sides (an informational
//     or low alert never pulls its context into an incident, and is never
//     pulled in by it), and never two activities that name different
//     deployments, role sessions or access keys (a legitimate deployment and
//     an attacker's on the same target hosts stay apart).
//
// A lineage path is strong when every entity on it is of a strong kind. A
// path through an S3 object is causal only forward in time: a link of the
// object (the deployment that shipped it, the identity that wrote it) seen
// before a side touched the object describes an earlier version of it, so
// a deployment that ran before the attacker overwrote the bundle is not
// part of the attack.

// WeakJoinSeverity is the lowest alert severity that joins on weak kinds.
const WeakJoinSeverity = ocsf.SeverityMedium

// causalSlack tolerates clock skew between sources when the direction of
// a link in time decides a join.
const causalSlack = int64(60_000)

// strongKinds name one actor or one activity.
var strongKinds = func() [numKinds]bool {
	var s [numKinds]bool
	for _, k := range []ocsf.Entity{ocsf.EntitySession, ocsf.EntityAccessKey, ocsf.EntityPrincipal, ocsf.EntityProcess,
		ocsf.EntityDeployment, ocsf.EntityFinding, ocsf.EntityContainer, ocsf.EntityHash} {
		s[kindIndex[k]] = true
	}
	return s
}()

// identityKinds are the kinds whose differing values say that two alerts
// come from different actors or activities.
var identityKinds = []ocsf.Entity{ocsf.EntityDeployment, ocsf.EntitySession, ocsf.EntityAccessKey}

var objectKind = kindIndex[ocsf.EntityObject]

var identityKind = func() [numKinds]bool {
	var s [numKinds]bool
	for _, k := range identityKinds {
		s[kindIndex[k]] = true
	}
	return s
}()

// viaConflicts reports whether an identity entity a path passed through
// (slots of the graph) is not among the incident's identities of its kind
// while the incident names some.
func (c *Correlator) viaConflicts(via []uint32, ids identities) bool {
	for _, v := range via {
		e := c.g.ent(v)
		have := ids[kindOf(e.key.kind)]
		if len(have) > 0 && !slices.Contains(have, e.key.value) {
			return true
		}
	}
	return false
}

// weakOK reports whether an alert of severity sev may join on a weak kind.
func weakOK(sev int) bool { return sev >= WeakJoinSeverity }

// actorKinds name who acted. A shared service role's session acts for
// every deployment, benign or not, so an informational alert does not join
// on them: it joins on the activity it names (a deployment, a process, a
// finding), or stands alone.
var actorKinds = func() [numKinds]bool {
	var s [numKinds]bool
	for _, k := range []ocsf.Entity{ocsf.EntitySession, ocsf.EntityAccessKey, ocsf.EntityPrincipal} {
		s[kindIndex[k]] = true
	}
	return s
}()

// joinsOn reports whether an alert of severity sev joins on entities of
// kind ki (an index of kindIndex).
func joinsOn(ki uint8, sev int) bool {
	switch {
	case !strongKinds[ki]:
		return weakOK(sev)
	case actorKinds[ki]:
		return sev > ocsf.SeverityInformational
	}
	return true
}

// identities is the set of identity values (deployments, sessions, keys)
// of one alert or one incident, by kind.
type identities map[ocsf.Entity][]string

func (ids identities) add(a *alert.Alert) identities {
	for _, o := range a.Entities {
		if o.Value == "" || !slices.Contains(identityKinds, o.Entity) {
			continue
		}
		if ids == nil {
			ids = identities{}
		}
		if !slices.Contains(ids[o.Entity], o.Value) {
			ids[o.Entity] = append(ids[o.Entity], o.Value)
		}
	}
	return ids
}

// conflicts reports whether two sides name different values of an
// identity kind and none in common: different deployments, sessions or
// keys.
func (ids identities) conflicts(other identities) bool {
	for k, vs := range ids {
		ws := other[k]
		if len(vs) == 0 || len(ws) == 0 {
			continue
		}
		shared := false
		for _, v := range vs {
			if slices.Contains(ws, v) {
				shared = true
				break
			}
		}
		if !shared {
			return true
		}
	}
	return false
}

func alertIdentities(a *alert.Alert) identities { return identities(nil).add(a) }

// joinSeverity is the severity an alert joins with: its own, and at least
// medium for a GuardDuty finding, which is already a vetted verdict (a low
// port-probe finding and the scan seen in flow logs are one story).
func joinSeverity(a *alert.Alert) int {
	if a.Source == "guardduty" {
		return max(a.Severity, WeakJoinSeverity)
	}
	return a.Severity
}
