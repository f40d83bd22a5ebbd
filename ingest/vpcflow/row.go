package vpcflow

import (
	"bytes"
	"slices"
	"sync"
	"unsafe"

	"github.com/musubi-xdr/musubi/ocsf"
)

// Row is a flow event as a handful of typed values: what storage keeps of
// a record in the default format or a custom one of the common fields
// (the v2 fields, VPC, subnet, instance, TCP flags, type, region, zone,
// flow direction, and packet addresses equal to the record's) instead of
// the event's OCSF document, which is ten times the record's size. Event
// builds the very event back.
//
// A record that uses anything else — packet addresses other than the
// record's, AWS services, a traffic path, a reject reason, Transit
// Gateway or ECS fields, fields Musubi does not map — has no Row (RowOf is
// false): its event is stored whole.
type Row struct {
	UID, Account, Region, Zone string
	// Version is the record's version field as written.
	Version string
	// LogStatus is the record's log-status as written (OK, NODATA,
	// SKIPDATA, or empty).
	LogStatus string
	// Direction is the OCSF direction id of flow-direction: 1 ingress, 2
	// egress, 0 none.
	Direction uint8
	// The local side's interface, instance, VPC and subnet: the
	// destination's for ingress, else the source's.
	Interface, Instance, VPC, Subnet string
	SrcIP, DstIP                     string
	SrcPort, DstPort                 uint16
	Protocol, TCPFlags               int64
	Packets, Bytes                   int64
	// IPVersion is 4, 6, or 0 when the record has no type.
	IPVersion uint8
	// Action is the OCSF action id: 1 accepted, 2 rejected, 0 neither.
	Action uint8
	// Start and End are the flow's window in Unix milliseconds.
	Start, End int64
}

// RowOf returns the Row of a flow event that Normalize, NormalizeTo or
// NormalizeJSON built, and false for any other event, for a record whose
// event a Row cannot hold (see Row), and for a flow event anything changed
// after it was built beyond its tenant: the event that the Row builds
// (Row.Event) must be the event itself, field for field.
func RowOf(ev *ocsf.Event) (Row, bool) {
	if ev.Metadata.LogName != LogName {
		return Row{}, false
	}
	// Everything else is the comparison below: a field the Row cannot
	// hold (a Transit Gateway product, a packet address, unmapped fields,
	// a value out of a column's range) builds another event.
	src, dst, ci := &ev.SrcEndpoint, &ev.DstEndpoint, &ev.ConnectionInfo
	local := src
	if ci.DirectionID == directionIngress {
		local = dst
	}
	r := Row{
		UID: ev.Metadata.UID, Account: ev.Cloud.Account.UID, Region: ev.Cloud.Region, Zone: ev.Cloud.Zone,
		Version: ev.Metadata.Product.Version, LogStatus: ev.StatusCode, Direction: uint8(ci.DirectionID),
		Interface: local.InterfaceUID, Instance: local.InstanceUID, VPC: local.VPCUID, Subnet: local.SubnetUID,
		SrcIP: src.IP, DstIP: dst.IP, SrcPort: uint16(src.Port), DstPort: uint16(dst.Port),
		Protocol: int64(ci.ProtocolNum), TCPFlags: int64(ci.TCPFlags),
		Packets: ev.Traffic.Packets, Bytes: ev.Traffic.Bytes,
		IPVersion: uint8(ci.ProtocolVerID), Action: uint8(ev.ActionID),
		Start: ev.StartTime, End: ev.EndTime,
	}
	back := rowEvents.Get().(*ocsf.Event)
	defer func() { *back = ocsf.Event{}; rowEvents.Put(back) }()
	r.Event(back, ev.Raw)
	if !slices.Equal(back.Observables, ev.Observables) || !bytes.Equal(back.Unmapped, ev.Unmapped) {
		return Row{}, false
	}
	back.Observables, back.Unmapped, back.Metadata.TenantUID = ev.Observables, ev.Unmapped, ev.Metadata.TenantUID
	if !sameMemory(back, ev) {
		return Row{}, false
	}
	return r, true
}

// rowEvents are the events RowOf builds to compare, reused: an event is
// 3.6 KB.
var rowEvents = sync.Pool{New: func() any { return new(ocsf.Event) }}

// sameMemory reports whether a and b hold the same bytes. RowOf runs for
// every flow event the writer stores, and comparing two events field by
// field would list every field of the model (and miss the next one
// added); equal bytes mean equal fields. It errs only one way: a string
// equal in content but not in place, an empty slice that is not nil, or
// padding that is not zero make a and b differ, and the event is stored
// whole. Row.Event shares every string it sets with the decoder (the
// same setters, the same constants) or takes it from the event itself,
// so a decoded flow event compares equal (TestRowRoundTrip).
func sameMemory(a, b *ocsf.Event) bool {
	n := int(unsafe.Sizeof(*a))
	return unsafe.String((*byte)(unsafe.Pointer(a)), n) == unsafe.String((*byte)(unsafe.Pointer(b)), n)
}

// flowDirections are the values of flow-direction by direction id.
var flowDirections = [...]string{directionIngress: "ingress", directionEgress: "egress"}

// Event fills *ev, which must be zero, with the event r was taken from:
// the same fields build sets, in the same way, so that the two encode to
// the same OCSF document (TestRowRoundTrip, FuzzRowRoundTrip). raw is the
// record, when it was kept.
func (r *Row) Event(ev *ocsf.Event, raw []byte) {
	setClass(ev)
	ev.Raw = raw
	ev.StartTime, ev.EndTime, ev.Time = r.Start, r.End, r.Start
	setMetadata(ev, r.UID, r.Version)
	ev.Cloud.Account.UID, ev.Cloud.Region, ev.Cloud.Zone = r.Account, r.Region, r.Zone
	setStatus(ev, r.LogStatus)

	src, dst, ci := &ev.SrcEndpoint, &ev.DstEndpoint, &ev.ConnectionInfo
	src.IP, dst.IP = r.SrcIP, r.DstIP
	src.Port, dst.Port = int(r.SrcPort), int(r.DstPort)
	local := src
	if r.Direction == directionIngress {
		local = dst
	}
	setDirection(ci, int(r.Direction))
	local.InterfaceUID, local.InstanceUID, local.VPCUID, local.SubnetUID = r.Interface, r.Instance, r.VPC, r.Subnet
	setProtocol(ci, r.Protocol)
	ci.TCPFlags = int(r.TCPFlags)
	setIPVersion(ci, int(r.IPVersion))
	ev.Traffic.Bytes, ev.Traffic.Packets = r.Bytes, r.Packets
	setAction(ev, int(r.Action))
	if ci.Direction != "" {
		// The one unmapped field a Row holds, written as the decoder
		// writes unmapped fields. Only a direction setDirection knows: a
		// row read back may hold anything.
		var vals values
		vals.v[fFlowDirection] = flowDirections[ci.DirectionID]
		ev.Unmapped = unmapped(&vals)
	}
	addObservables(ev, local, "", "", "")
}
