package correlate

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/musubi-xdr/musubi/alert"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Expected sources. A detection that an instance role's session was used
// from a public address cannot tell the attacker's machine from the
// instance's own public address: both are outside AWS's service ranges.
// The correlator can. A session-and-address pair that was in use before
// anything read the instance's credentials (an IMDS read by a web server,
// a GuardDuty runtime finding: credential-access alerts from the host's
// side), or, on an instance where nothing did, that has been in use for
// establishedAfter already, is the instance calling AWS from its own
// address. Such an alert is stored as informational, with the reason in
// its summary, and joins no incident. Counted by
// musubi_correlate_dropped_total{reason="expected_source"}.

// A session's first address is its instance's own (or its NAT's) unless
// something read the credentials first: an attacker's address comes after
// the instance's own calls, or after the theft.

// establishedAfter is how long a session must have been used from an
// address, with no sign of credential theft on its instance, before that
// address counts as the instance's own.
const establishedAfter = int64(60 * 60_000)

// noteTheft records the earliest host-side credential-access alert of
// every instance a carries.
func (c *Correlator) noteTheft(a *alert.Alert) {
	if a.Correlated || a.Stage != "credential_access" || a.Source == "cloudtrail" || a.Severity < ocsf.SeverityHigh {
		return
	}
	tenant := c.tenant(a.TenantUID)
	for _, o := range a.Entities {
		if o.Entity != ocsf.EntityInstance || o.Value == "" || o.Name == sessionNameAttr {
			continue
		}
		k := ekey{tenant: tenant, kind: kindIndex[ocsf.EntityInstance], value: strings.Clone(o.Value)}
		if t, ok := c.theft[k]; !ok || a.Time < t {
			c.theft[k] = a.Time
		}
	}
}

// sessionNameAttr is where the normalizers put an instance id that names
// a role session.
const sessionNameAttr = "actor.session.name"

// sourcePair is a role session and an address it called AWS from.
type sourcePair struct {
	tenant      uint32
	session, ip string
}

// noteSource records when a session was first seen calling from an
// address, and reports whether ev was such a call. Kept apart from the
// link graph: a shared address becomes a hub there and loses its links,
// but its history still tells who used it.
func (c *Correlator) noteSource(ev *ocsf.Event) bool {
	session, ip, ok := instanceSessionSource(ev)
	if !ok {
		return false
	}
	// Kept past the event: copies, not slices of its decoded record (an
	// assignment replaces a map's string key with the one given).
	k := sourcePair{c.tenant(ev.Metadata.TenantUID), strings.Clone(session), strings.Clone(ip)}
	seen, ok := c.pairs[k]
	if !ok {
		seen = pairSeen{ev.Time, ev.Time}
	}
	seen.first, seen.last = min(seen.first, ev.Time), max(seen.last, ev.Time)
	c.pairs[k] = seen
	sk := sourcePair{k.tenant, k.session, ""}
	if f, ok := c.firstSource[sk]; !ok || ev.Time < f.t || ev.Time == f.t && ip < f.ip {
		c.firstSource[sk] = firstSource{k.ip, ev.Time}
	}
	return true
}

// instanceSessionSource returns the instance session an API call was made
// in (an assumed-role session of an instance, "/i-") and the address it
// was called from, when ev names both.
func instanceSessionSource(ev *ocsf.Event) (session, ip string, ok bool) {
	if ev.ClassUID != ocsf.ClassAPIActivity {
		return "", "", false
	}
	for _, o := range ev.Observables {
		switch {
		case o.Entity == ocsf.EntitySession:
			session = o.Value
		case o.Entity == ocsf.EntityIP && o.Name == "src_endpoint.ip":
			ip = o.Value
		}
	}
	return session, ip, session != "" && ip != "" && strings.Contains(session, "/i-")
}

type pairSeen struct{ first, last int64 }

// firstSource is the address a session was first seen calling from.
type firstSource struct {
	ip string
	t  int64
}

// expectedSource reports whether alert a is an instance session used from
// an address that was the instance's own before any theft, and why.
func (c *Correlator) expectedSource(a *alert.Alert) (string, bool) {
	var instance, session, ip string
	for _, o := range a.Entities {
		switch {
		case o.Entity == ocsf.EntitySession:
			session = o.Value
			// assumed-role/<role>/<instance id>: an instance's session.
			if i := strings.LastIndexByte(o.Value, '/'); i >= 0 && strings.HasPrefix(o.Value[i+1:], "i-") {
				instance = o.Value[i+1:]
			}
		case o.Entity == ocsf.EntityIP && o.Name == "src_endpoint.ip":
			ip = o.Value
		}
	}
	// Only the detections of the session's use itself, from CloudTrail:
	// what the key did (uploads, deployments) is judged by its own rules,
	// and GuardDuty knows the instance's addresses.
	if instance == "" || session == "" || ip == "" || a.Correlated || a.Source != "cloudtrail" || a.Stage != "credential_access" {
		return "", false
	}
	tenant := c.tenant(a.TenantUID)
	if own, ok := c.own[ownAddress{tenant, instance, ip}]; ok && a.Time >= own.first-causalSlack && a.Time <= own.last+c.maxWin {
		return fmt.Sprintf("expected source: %s is %s's own address, as reported on %s",
			ip, instance, msString(own.first)), true
	}
	seen, ok := c.pairs[sourcePair{tenant, session, ip}]
	if !ok {
		return "", false
	}
	first := seen.first
	theft, stolen := c.theft[ekey{tenant: tenant, kind: kindIndex[ocsf.EntityInstance], value: instance}]
	switch {
	case stolen && first < theft-causalSlack:
		return fmt.Sprintf("expected source: %s used this session since %s, before its credentials were read on %s",
			ip, msString(first), instance), true
	case !stolen && a.Time-first >= establishedAfter:
		return fmt.Sprintf("expected source: %s has used this session since %s and nothing read the credentials on %s",
			ip, msString(first), instance), true
	case !stolen && c.firstSource[sourcePair{tenant, session, ""}].ip == ip:
		return fmt.Sprintf("expected source: %s is the first address this session was used from and nothing read the credentials on %s",
			ip, instance), true
	}
	return "", false
}

// An instance's own addresses. A call from an address the instance has
// (its public or Elastic IP) is not a use outside the instance, whether or
// not anything read its credentials: the credential read is an alert of
// its own. Findings and inventory report them: a GuardDuty finding's
// instance details, an AWS Config item, an Inspector finding — any event
// that names exactly one instance and device addresses (device.ip,
// device.public_ip, device.ipv6; a CloudTrail call has none: its address
// is the caller's, src_endpoint.ip). An address counts as the
// instance's own from its first report on (a report does not reach back:
// an alert placed before it stays placed, whatever the batch boundaries)
// until the longest correlation window after its last, and is forgotten
// then.

// ownAddress is an address reported as an instance's own.
type ownAddress struct {
	tenant       uint32
	instance, ip string
}

// ownAddressReport reports whether ev reports device addresses of the one
// instance it names.
func ownAddressReport(ev *ocsf.Event) bool {
	_, ok := reportedOwner(ev)
	return ok
}

// reportedOwner returns the one instance ev names when ev also reports
// device addresses (of it).
func reportedOwner(ev *ocsf.Event) (string, bool) {
	instance, ok := reportedInstance(ev)
	if !ok || instance == "" {
		return "", false
	}
	for _, o := range ev.Observables {
		if isDeviceAddress(o) {
			return instance, true
		}
	}
	return "", false
}

// isDeviceAddress reports whether o is a host's own address.
func isDeviceAddress(o ocsf.Observable) bool {
	return o.Entity == ocsf.EntityIP && o.Value != "" && slices.Contains(DeviceIPNames, o.Name)
}

// reportedInstance is the one instance ev names; ok is false when it
// names several. A GuardDuty finding on an instance's credentials names
// it once, as the session's name, because the observables keep one of
// equal values: device.instance_uid is the same instance.
func reportedInstance(ev *ocsf.Event) (instance string, ok bool) {
	for _, o := range ev.Observables {
		if o.Entity != ocsf.EntityInstance || o.Value == "" {
			continue
		}
		if instance != "" && instance != o.Value {
			return "", false
		}
		instance = o.Value
	}
	return instance, true
}

// noteOwnAddress records the device addresses ev reports of the one
// instance it names, and reports whether it did.
func (c *Correlator) noteOwnAddress(ev *ocsf.Event) bool {
	instance, ok := reportedOwner(ev)
	if !ok {
		return false
	}
	tenant := c.tenant(ev.Metadata.TenantUID)
	for _, o := range ev.Observables {
		if !isDeviceAddress(o) {
			continue
		}
		// Kept past the event: copies, not slices of its decoded record.
		k := ownAddress{tenant, strings.Clone(instance), strings.Clone(o.Value)}
		seen, ok := c.own[k]
		if !ok {
			seen = pairSeen{ev.Time, ev.Time}
		}
		seen.first, seen.last = min(seen.first, ev.Time), max(seen.last, ev.Time)
		c.own[k] = seen
	}
	return true
}

func msString(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// maxHeld bounds the expected-source alerts kept for re-checking; beyond
// it the oldest is forgotten (it stays stored as informational).
const maxHeld = 4096

// holdExpected keeps an alert judged an expected source, so that it can be
// released if later input shows a theft.
func (c *Correlator) holdExpected(a alert.Alert) {
	if len(c.held) >= maxHeld {
		var oldest string
		for id, h := range c.held {
			if oldest == "" || h.Time < c.held[oldest].Time || h.Time == c.held[oldest].Time && id < oldest {
				oldest = id
			}
		}
		delete(c.held, oldest)
	}
	c.held[a.ID] = a
}

// release returns the held alerts that are no longer expected sources and
// forgets them.
func (c *Correlator) release() []*alert.Alert {
	var out []*alert.Alert
	for id, a := range c.held {
		if _, still := c.expectedSource(&a); !still {
			delete(c.held, id)
			out = append(out, &a)
		}
	}
	return out
}
