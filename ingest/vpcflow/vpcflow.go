// Package vpcflow normalizes Amazon VPC and Transit Gateway flow log records
// to OCSF Network Activity (4001, activity Traffic), as Amazon Security Lake
// does.
//
// A Format is the field order of a flow log: the v2 default, or the custom
// format named by a file's header line (versions 3 to 8: instance-id,
// pkt-srcaddr/pkt-dstaddr, flow-direction, traffic-path, region, az-id, ECS
// and Transit Gateway fields, reject-reason). Records arrive as
// space-separated lines or as JSON objects keyed by field name (hyphens or
// underscores). NODATA and SKIPDATA records keep their log status and carry no
// endpoints. Fields without an OCSF home go to unmapped.
//
// Records have no id of their own: metadata.uid is a hash of the line and its
// file context (the format, the file or log stream, the line number), so a
// replayed file yields the same ids.
package vpcflow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/internal/entity"
	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// LogName is metadata.log_name of flow log events.
const LogName = "vpcflow"

// field identifies a flow log field Musubi maps.
type field uint8

const (
	fUnmapped field = iota
	fVersion
	fAccountID
	fInterfaceID
	fSrcAddr
	fDstAddr
	fSrcPort
	fDstPort
	fProtocol
	fPackets
	fBytes
	fStart
	fEnd
	fAction
	fLogStatus
	fVPCID
	fSubnetID
	fInstanceID
	fTCPFlags
	fType
	fPktSrcAddr
	fPktDstAddr
	fRegion
	fAZID
	fPktSrcService
	fPktDstService
	fFlowDirection
	fTrafficPath
	fECSClusterARN
	fECSClusterName
	fECSContainerID
	fECSSecondContainerID
	fECSTaskARN
	fECSServiceName
	fRejectReason
	fResourceType
	fTGWID
	fTGWAttachmentID
	fTGWSrcVPCAccountID
	fTGWDstVPCAccountID
	fTGWSrcVPCID
	fTGWDstVPCID
	fTGWSrcSubnetID
	fTGWDstSubnetID
	fTGWSrcENI
	fTGWDstENI
	fTGWSrcAZID
	fTGWDstAZID
	numFields
)

var fieldNames = map[string]field{
	"version": fVersion, "account-id": fAccountID, "interface-id": fInterfaceID,
	"srcaddr": fSrcAddr, "dstaddr": fDstAddr, "srcport": fSrcPort, "dstport": fDstPort,
	"protocol": fProtocol, "packets": fPackets, "bytes": fBytes, "start": fStart, "end": fEnd,
	"action": fAction, "log-status": fLogStatus, "vpc-id": fVPCID, "subnet-id": fSubnetID,
	"instance-id": fInstanceID, "tcp-flags": fTCPFlags, "type": fType,
	"pkt-srcaddr": fPktSrcAddr, "pkt-dstaddr": fPktDstAddr, "region": fRegion, "az-id": fAZID,
	"pkt-src-aws-service": fPktSrcService, "pkt-dst-aws-service": fPktDstService,
	"flow-direction": fFlowDirection, "traffic-path": fTrafficPath,
	"ecs-cluster-arn": fECSClusterARN, "ecs-cluster-name": fECSClusterName,
	"ecs-container-id": fECSContainerID, "ecs-second-container-id": fECSSecondContainerID,
	"ecs-task-arn": fECSTaskARN, "ecs-service-name": fECSServiceName,
	"reject-reason": fRejectReason, "resource-type": fResourceType,
	"tgw-id": fTGWID, "tgw-attachment-id": fTGWAttachmentID,
	"tgw-src-vpc-account-id": fTGWSrcVPCAccountID, "tgw-dst-vpc-account-id": fTGWDstVPCAccountID,
	"tgw-src-vpc-id": fTGWSrcVPCID, "tgw-dst-vpc-id": fTGWDstVPCID,
	"tgw-src-subnet-id": fTGWSrcSubnetID, "tgw-dst-subnet-id": fTGWDstSubnetID,
	"tgw-src-eni": fTGWSrcENI, "tgw-dst-eni": fTGWDstENI,
	"tgw-src-az-id": fTGWSrcAZID, "tgw-dst-az-id": fTGWDstAZID,
}

// Format is the field order of a flow log.
type Format struct {
	header string
	names  []string
	fields []field
	// sum identifies the format in record ids, so that ids do not hash the
	// header again for every line.
	sum [16]byte
}

// DefaultHeader is the v2 default format.
const DefaultHeader = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"

var defaultFormat = mustHeader(DefaultHeader)

func mustHeader(h string) *Format {
	f, err := ParseHeader(h)
	if err != nil {
		panic(err)
	}
	return f
}

// DefaultFormat returns the v2 default format.
func DefaultFormat() *Format { return defaultFormat }

// ParseHeader reads a header line: field names separated by spaces, as flow
// log files start with; the ${field} form of the AWS console works too.
// Unknown names are kept (their values go to unmapped).
func ParseHeader(h string) (*Format, error) {
	names := strings.Fields(h)
	if len(names) == 0 {
		return nil, scan.Errorf(scan.ReasonUnknownFormat, "empty flow log header")
	}
	f := &Format{names: make([]string, len(names)), fields: make([]field, len(names))}
	known := 0
	for i, n := range names {
		n = strings.TrimSuffix(strings.TrimPrefix(n, "${"), "}")
		n = strings.ReplaceAll(n, "_", "-")
		f.names[i] = n
		f.fields[i] = fieldNames[n]
		if f.fields[i] != fUnmapped {
			known++
		}
	}
	if known == 0 {
		return nil, scan.Errorf(scan.ReasonUnknownFormat, "no known flow log field in header")
	}
	f.header = strings.Join(f.names, " ")
	full := sha256.Sum256([]byte(f.header))
	copy(f.sum[:], full[:])
	return f, nil
}

// Header returns the header line of the format.
func (f *Format) Header() string { return f.header }

// IsHeader reports whether line is a header line: its first word is a field
// name (a value line starts with a version number, an id or an address).
func IsHeader(line []byte) bool {
	t := bytes.TrimSpace(line)
	if i := bytes.IndexAny(t, " \t"); i >= 0 {
		t = t[:i]
	}
	t = bytes.TrimSuffix(bytes.TrimPrefix(t, []byte("${")), []byte("}"))
	if len(t) == 0 {
		return false
	}
	name := strings.ReplaceAll(string(t), "_", "-")
	return fieldNames[name] != fUnmapped || name == "sublocation-type" || name == "sublocation-id" ||
		name == "ecs-container-instance-arn" || name == "ecs-container-instance-id" ||
		name == "ecs-task-definition-arn" || name == "ecs-task-id"
}

// LooksLikeFlow reports whether text starts like a flow log: a header, or a
// line of at least 5 space-separated fields whose first is a version number.
func LooksLikeFlow(t []byte) bool {
	if i := bytes.IndexByte(t, '\n'); i >= 0 {
		t = t[:i]
	}
	if IsHeader(t) {
		return true
	}
	fs := bytes.Fields(t)
	if len(fs) < 5 {
		return false
	}
	v, err := strconv.Atoi(string(fs[0]))
	return err == nil && v >= 2 && v <= 8
}

// values holds one record's values by field. The unmapped fields go to a
// fixed array (a slice of its own array would move values to the heap).
type values struct {
	v      [numFields]string
	extra  [12]kv
	nextra int
	more   []kv // past the array
}

func (vals *values) addExtra(k, v string) {
	if vals.nextra < len(vals.extra) {
		vals.extra[vals.nextra] = kv{k, v}
		vals.nextra++
		return
	}
	vals.more = append(vals.more, kv{k, v})
}

type kv struct{ k, v string }

// Normalize decodes one text line of the format. context names the file or
// log stream and line is the line number; both feed metadata.uid. Raw is
// line itself.
func (f *Format) Normalize(line []byte, context string, n int) (ocsf.Event, error) {
	var ev ocsf.Event
	err := f.NormalizeTo(&ev, line, context, n)
	return ev, err
}

// NormalizeTo is Normalize writing into *ev, which must be zero: a decoder
// that appends events to a slice fills them in place instead of copying a
// large struct. On error *ev is left partly filled.
func (f *Format) NormalizeTo(ev *ocsf.Event, line []byte, context string, n int) error {
	str := string(line)
	var vals values
	i := 0
	for p, q := nextValue(str, 0); p < len(str); p, q = nextValue(str, q) {
		if i >= len(f.fields) {
			return scan.Errorf(scan.ReasonInvalidValue, "more values than the format has fields ("+strconv.Itoa(len(f.fields))+")")
		}
		v := str[p:q]
		if fl := f.fields[i]; fl != fUnmapped {
			vals.v[fl] = v
		} else if v != "-" {
			vals.addExtra(f.names[i], v)
		}
		i++
	}
	if i != len(f.fields) {
		return scan.Errorf(scan.ReasonMissingField, "got "+strconv.Itoa(i)+" values, the format has "+strconv.Itoa(len(f.fields))+" fields")
	}
	return build(ev, &vals, line, f.sum, context, n)
}

// Time reads a line's event time as NormalizeTo sets it — start, or end
// when start is missing, in ms — without building its event. ok is false
// when the line has not as many values as the format has fields or
// neither time, which NormalizeTo reports as errors.
func (f *Format) Time(line []byte) (int64, bool) {
	var start, end []byte
	i := 0
	for p, q := nextValue(line, 0); p < len(line); p, q = nextValue(line, q) {
		if i >= len(f.fields) {
			return 0, false
		}
		switch f.fields[i] {
		case fStart:
			start = line[p:q]
		case fEnd:
			end = line[p:q]
		}
		i++
	}
	if i != len(f.fields) {
		return 0, false
	}
	s, _, ok := times(string(start), string(end))
	return s * 1000, ok
}

// nextValue returns the bounds [p, q) of the first value of a line (values
// are separated by spaces or tabs) at or after from; p is len(line) when
// none is left.
func nextValue[T ~string | ~[]byte](line T, from int) (p, q int) {
	p = from
	for p < len(line) && (line[p] == ' ' || line[p] == '\t') {
		p++
	}
	q = p
	for q < len(line) && line[q] != ' ' && line[q] != '\t' {
		q++
	}
	return p, q
}

// times reads a record's start and end in seconds; either stands for the
// other when it is missing, and ok is false when both are.
func times(startS, endS string) (start, end int64, ok bool) {
	start, okS := atoi(startS)
	end, okE := atoi(endS)
	if !okS && !okE {
		return 0, 0, false
	}
	if !okS {
		start = end
	}
	if !okE {
		end = start
	}
	return start, end, true
}

// NormalizeJSON decodes one flow record written as a JSON object keyed by
// field name.
func NormalizeJSON(rec []byte, maxDepth int, context string, n int) (ocsf.Event, error) {
	var ev ocsf.Event
	buf := rec[:len(rec):len(rec)]
	s := scan.New(buf, string(buf), maxDepth)
	var vals values
	if !s.Object() {
		if err := s.Err(); err != nil {
			return ocsf.Event{}, err
		}
		return ocsf.Event{}, scan.Errorf(scan.ReasonWrongType, "a flow log record must be a JSON object")
	}
	for first := true; s.More(&first); {
		k := s.Key()
		v := s.Scalar()
		name := k
		if strings.IndexByte(k, '_') >= 0 {
			name = strings.ReplaceAll(k, "_", "-")
		}
		if fl := fieldNames[name]; fl != fUnmapped {
			vals.v[fl] = v
		} else if v != "" && v != "-" {
			vals.addExtra(name, v)
		}
	}
	s.End()
	if err := s.Err(); err != nil {
		return ocsf.Event{}, err
	}
	err := build(&ev, &vals, buf, jsonSum, context, n)
	return ev, err
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// protocols names the common IANA protocol numbers.
var protocols = [...]string{1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah", 58: "ipv6-icmp", 132: "sctp"}

// boundaries maps traffic-path to OCSF connection_info.boundary_id/boundary.
var boundaries = [...]struct {
	id   int
	name string
}{
	1: {4, "Same VPC"}, 2: {5, "Internet/VPC Gateway"}, 3: {6, "Virtual Private Gateway"},
	4: {7, "Intra-region VPC"}, 5: {8, "Inter-region VPC"}, 6: {9, "Local Gateway"},
	7: {10, "Gateway VPC"}, 8: {11, "Internet Gateway"},
}

// setClass sets what every flow event is: Network Activity, Traffic,
// informational.
func setClass(ev *ocsf.Event) {
	ev.ClassUID, ev.ClassName = ocsf.ClassNetworkActivity, "Network Activity"
	ev.CategoryUID, ev.CategoryName = ocsf.CategoryNetwork, "Network Activity"
	ev.ActivityID, ev.ActivityName = 6, "Traffic"
	ev.TypeUID, ev.TypeName = ocsf.ClassNetworkActivity*100+6, "Network Activity: Traffic"
	ev.SeverityID, ev.Severity = ocsf.SeverityInformational, "Informational"
}

// setMetadata sets the metadata of a flow record's event and its cloud
// provider.
func setMetadata(ev *ocsf.Event, uid, version string) {
	md := &ev.Metadata
	md.Version = ocsf.Version
	md.Product.Name, md.Product.VendorName, md.Product.Version = "Amazon VPC", "AWS", version
	md.LogName, md.UID = LogName, uid
	ev.Cloud.Provider = "AWS"
}

// jsonSum stands for the format of JSON records in their ids.
var jsonSum = [16]byte{'j', 's', 'o', 'n'}

func build(ev *ocsf.Event, vals *values, raw []byte, format [16]byte, context string, n int) error {
	v := &vals.v
	setClass(ev)
	ev.Raw = raw

	start, end, ok := times(v[fStart], v[fEnd])
	if !ok {
		return scan.Errorf(scan.ReasonMissingField, "a flow record needs start or end")
	}
	ev.StartTime, ev.EndTime, ev.Time = start*1000, end*1000, start*1000

	setMetadata(ev, uid(format, context, n, raw), v[fVersion])
	if v[fResourceType] == "TransitGateway" || v[fTGWID] != "" {
		ev.Metadata.Product.Name = "Amazon VPC Transit Gateway"
	}
	ev.Cloud.Account.UID = dash(v[fAccountID])
	ev.Cloud.Region = dash(v[fRegion])
	ev.Cloud.Zone = dash(v[fAZID])

	setStatus(ev, v[fLogStatus])
	ev.StatusDetail = dash(v[fRejectReason])

	src, dst := &ev.SrcEndpoint, &ev.DstEndpoint
	src.IP, dst.IP = dash(v[fSrcAddr]), dash(v[fDstAddr])
	if p, ok := atoi(v[fSrcPort]); ok && p >= 0 && p <= 65535 {
		src.Port = int(p)
	} else if dash(v[fSrcPort]) != "" {
		return scan.Errorf(scan.ReasonInvalidValue, "srcport out of range: "+v[fSrcPort])
	}
	if p, ok := atoi(v[fDstPort]); ok && p >= 0 && p <= 65535 {
		dst.Port = int(p)
	} else if dash(v[fDstPort]) != "" {
		return scan.Errorf(scan.ReasonInvalidValue, "dstport out of range: "+v[fDstPort])
	}
	if ps := dash(v[fPktSrcAddr]); ps != "" && ps != src.IP {
		src.IntermediateIPs = []string{ps}
	}
	if pd := dash(v[fPktDstAddr]); pd != "" && pd != dst.IP {
		dst.IntermediateIPs = []string{pd}
	}
	src.SvcName, dst.SvcName = dash(v[fPktSrcService]), dash(v[fPktDstService])

	// The interface (and its instance, subnet, VPC) is the local side: the
	// destination of ingress traffic, the source otherwise.
	local := src
	ci := &ev.ConnectionInfo
	switch v[fFlowDirection] {
	case "ingress":
		local = dst
		setDirection(ci, directionIngress)
	case "egress":
		setDirection(ci, directionEgress)
	}
	local.InterfaceUID = dash(v[fInterfaceID])
	local.InstanceUID = dash(v[fInstanceID])
	local.VPCUID = dash(v[fVPCID])
	local.SubnetUID = dash(v[fSubnetID])
	if v[fTGWSrcVPCID] != "" || v[fTGWDstVPCID] != "" {
		src.VPCUID, dst.VPCUID = dash(v[fTGWSrcVPCID]), dash(v[fTGWDstVPCID])
		src.SubnetUID, dst.SubnetUID = dash(v[fTGWSrcSubnetID]), dash(v[fTGWDstSubnetID])
		src.InterfaceUID, dst.InterfaceUID = dash(v[fTGWSrcENI]), dash(v[fTGWDstENI])
	}

	if p, ok := atoi(v[fProtocol]); ok {
		setProtocol(ci, p)
	}
	if f, ok := atoi(v[fTCPFlags]); ok {
		ci.TCPFlags = int(f)
	}
	switch v[fType] {
	case "IPv4":
		setIPVersion(ci, 4)
	case "IPv6":
		setIPVersion(ci, 6)
	}
	if tp, ok := atoi(v[fTrafficPath]); ok && tp > 0 && int(tp) < len(boundaries) {
		ci.BoundaryID, ci.Boundary = boundaries[tp].id, boundaries[tp].name
	}
	if b, ok := atoi(v[fBytes]); ok {
		ev.Traffic.Bytes = b
	}
	if p, ok := atoi(v[fPackets]); ok {
		ev.Traffic.Packets = p
	}
	switch v[fAction] {
	case "ACCEPT":
		setAction(ev, actionAllowed)
	case "REJECT":
		setAction(ev, actionDenied)
	}

	addObservables(ev, local, dash(v[fECSClusterName]), dash(v[fECSContainerID]), dash(v[fECSSecondContainerID]))
	ev.Unmapped = unmapped(vals)
	return nil
}

// setStatus sets the status of a record's log-status (OK, NODATA,
// SKIPDATA, or none).
func setStatus(ev *ocsf.Event, logStatus string) {
	switch logStatus {
	case "OK", "":
		ev.StatusID, ev.Status = 1, "Success"
	default: // NODATA, SKIPDATA
		ev.StatusID, ev.Status = 99, "Other"
	}
	ev.StatusCode = logStatus
}

// The direction ids of a record's flow-direction, as OCSF numbers them.
const (
	directionIngress = 1 // Inbound
	directionEgress  = 2 // Outbound
)

// setDirection sets the direction of a direction id.
func setDirection(ci *ocsf.ConnectionInfo, id int) {
	switch id {
	case directionIngress:
		ci.Direction, ci.DirectionID = "Inbound", 1
	case directionEgress:
		ci.Direction, ci.DirectionID = "Outbound", 2
	}
}

// setProtocol sets the IANA protocol number and, for the common ones, its
// name.
func setProtocol(ci *ocsf.ConnectionInfo, num int64) {
	ci.ProtocolNum = int(num)
	if num >= 0 && num < int64(len(protocols)) {
		ci.ProtocolName = protocols[num]
	}
}

// setIPVersion sets the IP version (4 or 6) of a record's type.
func setIPVersion(ci *ocsf.ConnectionInfo, version int) {
	switch version {
	case 4:
		ci.ProtocolVer, ci.ProtocolVerID = "Internet Protocol version 4 (IPv4)", 4
	case 6:
		ci.ProtocolVer, ci.ProtocolVerID = "Internet Protocol version 6 (IPv6)", 6
	}
}

// The action ids of a record's action, as OCSF numbers them.
const (
	actionAllowed = 1 // ACCEPT
	actionDenied  = 2 // REJECT
)

// setAction sets the action and disposition of an action id.
func setAction(ev *ocsf.Event, id int) {
	switch id {
	case actionAllowed:
		ev.Action, ev.ActionID = "Allowed", 1
		ev.Disposition, ev.DispositionID = "Allowed", 1
	case actionDenied:
		ev.Action, ev.ActionID = "Denied", 2
		ev.Disposition, ev.DispositionID = "Blocked", 2
	}
}

// addObservables names the entities of a built record: its account,
// region, addresses, the local side's instance, and the ECS cluster and
// containers (values of unmapped fields).
func addObservables(ev *ocsf.Event, local *ocsf.NetworkEndpoint, ecsCluster, ecsContainer, ecsSecondContainer string) {
	src, dst := &ev.SrcEndpoint, &ev.DstEndpoint
	room := ev.CollectObservables()
	ev.AddObservable(ocsf.EntityAccount, "cloud.account.uid", ev.Cloud.Account.UID)
	ev.AddObservable(ocsf.EntityRegion, "cloud.region", ev.Cloud.Region)
	ev.AddObservable(ocsf.EntityIP, "src_endpoint.ip", src.IP)
	ev.AddObservable(ocsf.EntityIP, "dst_endpoint.ip", dst.IP)
	if len(src.IntermediateIPs) > 0 {
		ev.AddObservable(ocsf.EntityIP, "src_endpoint.intermediate_ips", src.IntermediateIPs[0])
	}
	if len(dst.IntermediateIPs) > 0 {
		ev.AddObservable(ocsf.EntityIP, "dst_endpoint.intermediate_ips", dst.IntermediateIPs[0])
	}
	if entity.IsInstanceID(local.InstanceUID) {
		name := "src_endpoint.instance_uid"
		if local == dst {
			name = "dst_endpoint.instance_uid"
		}
		ev.AddObservable(ocsf.EntityInstance, name, local.InstanceUID)
	}
	ev.AddObservable(ocsf.EntityCluster, "unmapped.ecs-cluster-name", ecsCluster)
	ev.AddObservable(ocsf.EntityContainer, "unmapped.ecs-container-id", ecsContainer)
	ev.AddObservable(ocsf.EntityContainer, "unmapped.ecs-second-container-id", ecsSecondContainer)
	ev.KeepObservables(room)
}

// unmappedFields are the mapped-elsewhere-or-nowhere fields kept in unmapped.
var unmappedFields = []struct {
	f    field
	name string
}{
	{fECSClusterARN, "ecs-cluster-arn"}, {fECSClusterName, "ecs-cluster-name"},
	{fECSContainerID, "ecs-container-id"}, {fECSSecondContainerID, "ecs-second-container-id"},
	{fECSTaskARN, "ecs-task-arn"}, {fECSServiceName, "ecs-service-name"},
	{fTrafficPath, "traffic-path"}, {fFlowDirection, "flow-direction"},
	{fResourceType, "resource-type"}, {fTGWID, "tgw-id"}, {fTGWAttachmentID, "tgw-attachment-id"},
	{fTGWSrcVPCAccountID, "tgw-src-vpc-account-id"}, {fTGWDstVPCAccountID, "tgw-dst-vpc-account-id"},
	{fTGWSrcAZID, "tgw-src-az-id"}, {fTGWDstAZID, "tgw-dst-az-id"},
}

func unmapped(vals *values) []byte {
	var out []byte
	add := func(k, v string) {
		if v == "" || v == "-" {
			return
		}
		if out == nil {
			out = append(make([]byte, 0, 128), '{')
		} else {
			out = append(out, ',')
		}
		out = strconv.AppendQuote(out, k)
		out = append(out, ':')
		out = scan.AppendString(out, v)
	}
	for _, u := range unmappedFields {
		add(u.name, vals.v[u.f])
	}
	for _, e := range vals.extra[:vals.nextra] {
		add(e.k, e.v)
	}
	for _, e := range vals.more {
		add(e.k, e.v)
	}
	if out == nil {
		return nil
	}
	return append(out, '}')
}

func atoi(s string) (int64, bool) {
	if s == "" || s == "-" || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// uid hashes the record with its context (format, file or stream, line
// number): 128 bits of SHA-256, hex. Short records are hashed from a stack
// buffer, without allocating.
func uid(format [16]byte, context string, n int, raw []byte) string {
	var stack [512]byte
	b := append(stack[:0], format[:]...)
	b = append(b, context...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, 0)
	var sum [32]byte
	if len(b)+len(raw) <= len(stack) {
		b = append(b, raw...)
		sum = sha256.Sum256(b)
	} else {
		h := sha256.New()
		h.Write(b)
		h.Write(raw)
		h.Sum(sum[:0])
	}
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}
