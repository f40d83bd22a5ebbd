// Package agent normalizes host telemetry: OCSF JSON events as endpoint
// agents and pipelines emit them (Process Activity 1007, File System Activity
// 1001, Network Activity 4001, DNS Activity 4003, Authentication 3002, and
// Detection Findings 2004 from agents that detect), and Falco's JSON alert
// output, which becomes a Detection Finding.
//
// OCSF events are already in Musubi's model: Normalize decodes them into
// ocsf.Event (fields Musubi does not model stay in the raw record), checks
// the class, fills the derived attributes (class and type names, type_uid,
// severity caption, metadata.version and log_name) and extracts the
// observables: device.instance_uid names the EC2 instance, and a process or
// file under the CodeDeploy agent's deployment root names the deployment
// that put it there.
//
// The decoding is encoding/json's, to the field: keys match field names
// case-insensitively, unknown keys are ignored, null leaves a field as it
// is, a value of the wrong type fails the record (wrong_type). It runs on
// github.com/goccy/go-json, which gives those results about five times
// faster than encoding/json's reflection (BenchmarkDecode): agent records
// are about a quarter of a typical stream, and with encoding/json they took
// nearly half of its decode time. A record it rejects is decoded
// again with encoding/json, so an error, its message and its dead-letter
// reason are encoding/json's. FuzzNormalizeMatchesEncodingJSON holds the two
// to the same results.
//
// Processes sit where each OCSF class puts them. In Process Activity (1007)
// `process` is the process launched (or opened, or terminated) and
// `actor.process` the process that did it, its parent for a launch; in every
// other class (Network Activity, DNS Activity, File System Activity,
// Authentication, Detection Finding) the process that acted is
// `actor.process`, and the class defines no top-level `process`. Events in
// that standard shape are taken as they are. Agents that write the acting
// process of a network or file event as a top-level `process` (an older,
// non-standard shape) are still accepted: the process is moved to
// `actor.process`. In Process Activity the parent is kept in both standard
// places: `actor.process` is filled from `process.parent_process` when an
// agent writes only the latter, and the other way round.
package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/musubi-xdr/musubi/ingest/internal/entity"
	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// LogName is metadata.log_name of OCSF agent events.
const LogName = "agent"

// classes are the OCSF classes accepted from agents.
var classes = map[int]bool{
	ocsf.ClassProcessActivity:    true,
	ocsf.ClassFileSystemActivity: true,
	ocsf.ClassNetworkActivity:    true,
	ocsf.ClassDNSActivity:        true,
	ocsf.ClassAuthentication:     true,
	ocsf.ClassDetectionFinding:   true,
}

// Normalize turns one OCSF JSON event from an agent into a Musubi event.
// The agent's own observables are kept when their OCSF type maps to an
// entity kind; Musubi's are added. The event's Raw is rec itself, so rec
// must not be modified while the event is in use.
func Normalize(rec []byte, maxDepth int) (ocsf.Event, error) {
	var ev ocsf.Event
	if err := NormalizeTo(&ev, rec, maxDepth); err != nil {
		return ocsf.Event{}, err
	}
	return ev, nil
}

// NormalizeTo is Normalize writing into *ev, which must be zero: a decoder
// that appends events to a slice fills them in place instead of copying a
// large struct. On error *ev is left partly filled.
func NormalizeTo(ev *ocsf.Event, rec []byte, maxDepth int) error {
	return normalizeTo(ev, rec, maxDepth, decode)
}

// decode decodes an OCSF JSON event into *ev (zero) as encoding/json.Unmarshal
// does (see the package comment for why it is not encoding/json). rec is
// valid JSON (scan.Validate).
func decode(rec []byte, ev *ocsf.Event) error {
	if gojson.Unmarshal(rec, ev) == nil {
		return nil
	}
	// encoding/json's error, for a reason and message that do not depend on
	// the decoder. Errors are rare: the second decode costs nothing overall.
	*ev = ocsf.Event{}
	return json.Unmarshal(rec, ev)
}

// normalizeTo is NormalizeTo with the decoder as a parameter, so that the
// tests can hold decode to encoding/json's results.
func normalizeTo(ev *ocsf.Event, rec []byte, maxDepth int, decode func([]byte, *ocsf.Event) error) error {
	if err := scan.Validate(rec, maxDepth); err != nil {
		return err
	}
	raw := rec[:len(rec):len(rec)]
	if err := decode(raw, ev); err != nil {
		return err
	}
	if ev.ClassUID == 0 {
		return scan.Errorf(scan.ReasonMissingField, "an OCSF event needs class_uid")
	}
	if !classes[ev.ClassUID] {
		return scan.Errorf(scan.ReasonUnsupported, "OCSF class "+strconv.Itoa(ev.ClassUID)+" is not accepted from agents")
	}
	if ev.Time <= 0 {
		return scan.Errorf(scan.ReasonMissingField, "an OCSF event needs time (epoch milliseconds)")
	}
	if ev.Time < 1e11 { // seconds written where OCSF wants milliseconds
		ev.Time *= 1000
	}
	ev.Raw = raw
	StandardShape(ev)
	c := ocsf.Classes[ev.ClassUID]
	ev.ClassName, ev.CategoryUID, ev.CategoryName = c.Name, c.CategoryUID, c.CategoryName
	if ev.ActivityName == "" {
		ev.ActivityName = activityName(ev.ClassUID, ev.ActivityID)
	}
	ev.TypeUID = ev.ClassUID*100 + ev.ActivityID
	if ev.ActivityName != "" {
		ev.TypeName = c.Name + ": " + ev.ActivityName
	}
	if ev.Severity == "" || ev.SeverityID != 99 {
		ev.Severity = ocsf.SeverityName(ev.SeverityID)
	}
	md := &ev.Metadata
	md.Version = ocsf.Version
	md.LogName = LogName
	if md.UID == "" {
		sum := sha256.Sum256(raw)
		md.UID = hex.EncodeToString(sum[:16])
	}
	if ev.Cloud.Provider == "" && (ev.Cloud.Account.UID != "" || ev.Cloud.Region != "") {
		ev.Cloud.Provider = "AWS"
	}
	if ev.Cloud.Region == "" {
		ev.Cloud.Region = ev.Device.Region
	}
	given := ev.Observables
	room := ev.CollectObservables()
	Observables(ev)
	for _, o := range given {
		if k := kindOf(o.TypeID, o.Value); k != "" {
			ev.AddObservable(k, o.Name, o.Value)
		}
	}
	ev.KeepObservables(room)
	return nil
}

// kindOf maps an OCSF observable type id to an entity kind. Process names
// and bare file names are left out: they would join unrelated processes and
// files that merely share a name.
func kindOf(typeID int, value string) ocsf.Entity {
	switch typeID {
	case ocsf.ObservableHostname:
		return ocsf.EntityHost
	case ocsf.ObservableIP:
		return ocsf.EntityIP
	case ocsf.ObservableUserName:
		return ocsf.EntityUser
	case ocsf.ObservableFileName:
		if strings.HasPrefix(value, "/") || strings.Contains(value, `\`) {
			return ocsf.EntityFile
		}
	case ocsf.ObservableHash:
		return ocsf.EntityHash
	}
	return ""
}

var activityNames = map[int]map[int]string{
	ocsf.ClassProcessActivity:    {1: "Launch", 2: "Terminate", 3: "Open", 4: "Inject", 5: "Set User ID"},
	ocsf.ClassFileSystemActivity: {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 5: "Rename", 6: "Set Attributes", 7: "Set Security", 8: "Get Attributes", 9: "Get Security", 10: "Encrypt", 11: "Decrypt", 12: "Mount", 13: "Unmount", 14: "Open"},
	ocsf.ClassNetworkActivity:    {1: "Open", 2: "Close", 3: "Reset", 4: "Fail", 5: "Refuse", 6: "Traffic", 7: "Listen"},
	ocsf.ClassDNSActivity:        {1: "Query", 2: "Response", 6: "Traffic"},
	ocsf.ClassAuthentication:     {1: "Logon", 2: "Logoff", 3: "Authentication Ticket", 4: "Service Ticket Request", 5: "Service Ticket Renew", 6: "Preauth"},
	ocsf.ClassDetectionFinding:   {1: "Create", 2: "Update", 3: "Close"},
}

func activityName(class, id int) string {
	if id == 0 {
		return "Unknown"
	}
	if id == 99 {
		return "Other"
	}
	return activityNames[class][id]
}

// Observables adds the entities of a host event: device, instance, users,
// processes, files, hashes, endpoints, DNS names and the CodeDeploy
// deployments named by paths under the agent's deployment root.
func Observables(ev *ocsf.Event) {
	d := &ev.Device
	ev.AddObservable(ocsf.EntityAccount, "cloud.account.uid", ev.Cloud.Account.UID)
	ev.AddObservable(ocsf.EntityRegion, "cloud.region", ev.Cloud.Region)
	if entity.IsInstanceID(d.InstanceUID) {
		ev.AddObservable(ocsf.EntityInstance, "device.instance_uid", d.InstanceUID)
	}
	ev.AddObservable(ocsf.EntityHost, "device.hostname", d.Hostname)
	ev.AddObservable(ocsf.EntityIP, "device.ip", d.IP)
	ev.AddObservable(ocsf.EntityContainer, "device.container.uid", d.Container.UID)

	if ev.ClassUID == ocsf.ClassProcessActivity {
		processObservables(ev, "process", &ev.Process, true)
		processObservables(ev, "actor.process", &ev.Actor.Process, false)
	} else {
		processObservables(ev, "actor.process", &ev.Actor.Process, true)
	}
	ev.AddObservable(ocsf.EntityUser, "actor.user.name", ev.Actor.User.Name)
	ev.AddObservable(ocsf.EntityUser, "user.name", ev.User.Name)
	ev.AddObservable(ocsf.EntityFile, "file.path", ev.File.Path)
	hashes(ev, "file.hashes.value", ev.File.Hashes)
	ev.AddObservable(ocsf.EntityFile, "file_result.path", ev.FileResult.Path)
	ev.AddObservable(ocsf.EntityIP, "src_endpoint.ip", ev.SrcEndpoint.IP)
	ev.AddObservable(ocsf.EntityIP, "dst_endpoint.ip", ev.DstEndpoint.IP)
	ev.AddObservable(ocsf.EntityDomain, "dst_endpoint.hostname", ev.DstEndpoint.Hostname)
	ev.AddObservable(ocsf.EntityDomain, "query.hostname", trimDot(ev.Query.Hostname))
	for _, a := range ev.Answers {
		if entity.IsIP(a.Rdata) {
			ev.AddObservable(ocsf.EntityIP, "answers.rdata", a.Rdata)
		}
	}
	deployments(ev, "file.path", ev.File.Path)
	deployments(ev, "file_result.path", ev.FileResult.Path)
}

// processObservables adds the entities of the process at attribute name:
// its file, hashes and user, its parent's file, and the CodeDeploy
// deployments named by its paths, command lines and lineage. The process
// itself becomes a process entity (its uid, else host:pid) when subject is
// true: the process the event is about, not a parent named for context.
func processObservables(ev *ocsf.Event, name string, p *ocsf.Process, subject bool) {
	if subject {
		if p.UID != "" {
			ev.AddObservable(ocsf.EntityProcess, name+".uid", p.UID)
		} else if p.PID != 0 && ev.Device.Hostname != "" {
			ev.AddObservable(ocsf.EntityProcess, name+".pid", ev.Device.Hostname+":"+strconv.Itoa(p.PID))
		}
	}
	ev.AddObservable(ocsf.EntityFile, name+".file.path", p.File.Path)
	hashes(ev, name+".file.hashes.value", p.File.Hashes)
	ev.AddObservable(ocsf.EntityUser, name+".user.name", p.User.Name)
	ev.AddObservable(ocsf.EntityFile, name+".parent_process.file.path", p.Parent.File.Path)
	deployments(ev, name+".file.path", p.File.Path)
	deployments(ev, name+".cmd_line", p.CmdLine)
	deployments(ev, name+".cwd", p.CWD)
	deployments(ev, name+".parent_process.file.path", p.Parent.File.Path)
	deployments(ev, name+".parent_process.cmd_line", p.Parent.CmdLine)
	for _, l := range p.Lineage {
		deployments(ev, name+".lineage", l)
	}
}

// StandardShape puts the processes of an event where its OCSF class defines
// them (see the package comment): outside Process Activity a top-level
// process is the acting process and moves to actor.process (unless the
// event already names one there); in Process Activity the parent is copied
// between process.parent_process and actor.process, whichever is missing.
func StandardShape(ev *ocsf.Event) {
	if ev.ClassUID != ocsf.ClassProcessActivity {
		if !isZeroProcess(&ev.Process) && isZeroProcess(&ev.Actor.Process) {
			ev.Actor.Process = ev.Process
		}
		ev.Process = ocsf.Process{}
		return
	}
	pp, ap := &ev.Process.Parent, &ev.Actor.Process
	switch {
	case isZeroProcess(ap) && !isZeroParent(pp):
		ap.PID, ap.UID, ap.Name, ap.CmdLine, ap.File, ap.User = pp.PID, pp.UID, pp.Name, pp.CmdLine, pp.File, pp.User
	case isZeroParent(pp) && !isZeroProcess(ap):
		pp.PID, pp.UID, pp.Name, pp.CmdLine, pp.File, pp.User = ap.PID, ap.UID, ap.Name, ap.CmdLine, ap.File, ap.User
	}
}

func isZeroProcess(p *ocsf.Process) bool {
	return p.PID == 0 && p.UID == "" && p.Name == "" && p.CmdLine == "" && p.CWD == "" &&
		p.File.Path == "" && p.File.Name == "" && len(p.File.Hashes) == 0 &&
		p.User == (ocsf.ProcessUser{}) && len(p.Lineage) == 0 && p.CreatedTime == 0 &&
		isZeroParent(&p.Parent)
}

func isZeroParent(p *ocsf.ParentProcess) bool {
	return p.PID == 0 && p.UID == "" && p.Name == "" && p.CmdLine == "" &&
		p.File.Path == "" && p.File.Name == "" && len(p.File.Hashes) == 0 && p.User == (ocsf.ProcessUser{})
}

func trimDot(s string) string {
	if len(s) > 1 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

func hashes(ev *ocsf.Event, name string, hs []ocsf.Fingerprint) {
	for _, h := range hs {
		ev.AddObservable(ocsf.EntityHash, name, h.Value)
	}
}

func deployments(ev *ocsf.Event, name, s string) {
	entity.Deployments(s, func(id string) { ev.AddObservable(ocsf.EntityDeployment, name, id) })
}
