package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/internal/scan"
	"github.com/musubi-xdr/musubi/ocsf"
)

// FalcoLogName is metadata.log_name of Falco alerts.
const FalcoLogName = "falco"

// falcoSeverity maps Falco priorities to OCSF severity ids.
var falcoSeverity = map[string]int{
	"emergency": ocsf.SeverityFatal, "alert": ocsf.SeverityCritical, "critical": ocsf.SeverityCritical,
	"error": ocsf.SeverityHigh, "warning": ocsf.SeverityMedium, "notice": ocsf.SeverityLow,
	"informational": ocsf.SeverityInformational, "info": ocsf.SeverityInformational, "debug": ocsf.SeverityInformational,
}

// NormalizeFalco turns one Falco JSON alert (json_output: true) into an OCSF
// Detection Finding: the rule is the finding title and type, the output its
// description, the priority its severity; output_fields fill the acting
// process (actor.process, as OCSF's host profile places it on a finding) with
// its parent and lineage, the user, the file, the container and the
// endpoints; tags naming
// ATT&CK techniques (T1059, mitre_execution) fill finding_info.attacks.
func NormalizeFalco(rec []byte, maxDepth int) (ocsf.Event, error) {
	buf := rec[:len(rec):len(rec)]
	s := scan.New(buf, string(buf), maxDepth)
	var ev ocsf.Event
	ev.Raw = buf
	var uuid, output, priority, rule, tm, hostname, source string
	var tags []string
	var unm, tagsRaw []byte // unmapped output fields; the tags as written
	p := &ev.Actor.Process
	if !s.Object() {
		if err := s.Err(); err != nil {
			return ocsf.Event{}, err
		}
		return ocsf.Event{}, scan.Errorf(scan.ReasonWrongType, "a Falco alert must be a JSON object")
	}
	for first := true; s.More(&first); {
		switch s.Key() {
		case "uuid":
			uuid = s.String()
		case "output":
			output = s.String()
		case "priority":
			priority = s.String()
		case "rule":
			rule = s.String()
		case "time":
			tm = s.String()
		case "hostname":
			hostname = s.String()
		case "source":
			source = s.String()
		case "tags":
			s.Peek()
			tagsAt := s.Pos
			if s.Array() {
				for first := true; s.More(&first); {
					if t := s.Scalar(); t != "" {
						tags = append(tags, t)
					}
				}
			}
			if !s.Failed() && len(tags) > 0 {
				tagsRaw = buf[tagsAt:s.Pos]
			}
		case "output_fields":
			if s.Object() {
				for first := true; s.More(&first); {
					k := s.Key()
					s.Peek()
					a := s.Pos
					v := s.Scalar()
					if v == "" || v == "<NA>" {
						continue
					}
					if !falcoField(&ev, k, v) {
						// No OCSF home: kept in unmapped.output_fields.
						unm = appendMember(unm, k, buf[a:s.Pos])
					}
				}
			}
		default:
			s.Skip()
		}
	}
	s.End()
	if err := s.Err(); err != nil {
		return ocsf.Event{}, err
	}
	if rule == "" || tm == "" {
		return ocsf.Event{}, scan.Errorf(scan.ReasonMissingField, "a Falco alert needs rule and time")
	}
	t, ok := scan.TimeMillis(tm)
	if !ok {
		return ocsf.Event{}, scan.Errorf(scan.ReasonInvalidValue, "time is not a timestamp")
	}
	ev.Time = t
	c := ocsf.Classes[ocsf.ClassDetectionFinding]
	ev.ClassUID, ev.ClassName, ev.CategoryUID, ev.CategoryName = c.UID, c.Name, c.CategoryUID, c.CategoryName
	ev.ActivityID, ev.ActivityName = 1, "Create"
	ev.TypeUID, ev.TypeName = c.UID*100+1, c.Name+": Create"
	ev.SeverityID = falcoSeverity[strings.ToLower(priority)]
	ev.Severity = ocsf.SeverityName(ev.SeverityID)
	ev.StatusID, ev.Status = 1, "New"
	ev.Message = output

	md := &ev.Metadata
	md.Version = ocsf.Version
	md.Product.Name, md.Product.VendorName = "Falco", "Falco"
	md.Product.Feature.Name = source
	md.LogName = FalcoLogName
	md.OriginalTime = tm
	md.UID = uuid
	if md.UID == "" {
		sum := sha256.Sum256(buf)
		md.UID = hex.EncodeToString(sum[:16])
	}

	fi := &ev.FindingInfo
	fi.UID = md.UID
	fi.Title = rule
	fi.Desc = output
	fi.Types = []string{rule}
	fi.CreatedTime = t
	for _, tag := range tags {
		switch {
		case len(tag) >= 5 && tag[0] == 'T' && tag[1] >= '0' && tag[1] <= '9':
			fi.Attacks = append(fi.Attacks, ocsf.Attack{Technique: ocsf.AttackRef{UID: tag}})
		case strings.HasPrefix(tag, "mitre_"):
			fi.Attacks = append(fi.Attacks, ocsf.Attack{Tactic: ocsf.AttackRef{Name: strings.ReplaceAll(strings.TrimPrefix(tag, "mitre_"), "_", " ")}})
		}
	}
	if ev.Device.Hostname == "" {
		ev.Device.Hostname = hostname
	}
	if p.File.Path != "" && p.File.Name == "" {
		p.File.Name = p.File.Path[strings.LastIndexByte(p.File.Path, '/')+1:]
	}
	room := ev.CollectObservables()
	Observables(&ev)
	ev.KeepObservables(room)
	if unm != nil || tagsRaw != nil {
		out := []byte{'{'}
		if unm != nil {
			out = append(append(append(out, `"output_fields":`...), unm...), '}')
		}
		if tagsRaw != nil {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(append(out, `"tags":`...), tagsRaw...)
		}
		ev.Unmapped = append(out, '}')
	}
	return ev, nil
}

func atoi(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// appendMember appends "key":raw to a JSON object being written (opened
// on first use, closed by the caller).
func appendMember(out []byte, key string, raw []byte) []byte {
	if out == nil {
		out = []byte{'{'}
	} else {
		out = append(out, ',')
	}
	b, _ := json.Marshal(key)
	out = append(out, b...)
	out = append(out, ':')
	return append(out, raw...)
}

// falcoField maps one output field (Falco's field names, sysdig syntax) and
// reports whether it has an OCSF home.
func falcoField(ev *ocsf.Event, k, v string) bool {
	p := &ev.Actor.Process
	switch k {
	case "proc.name":
		p.Name = v
	case "proc.pid":
		p.PID = atoi(v)
	case "proc.cmdline":
		p.CmdLine = v
	case "proc.exepath", "proc.exe":
		if p.File.Path == "" || k == "proc.exepath" {
			p.File.Path = v
		}
	case "proc.cwd":
		p.CWD = v
	case "proc.pname":
		p.Parent.Name = v
	case "proc.ppid":
		p.Parent.PID = atoi(v)
	case "proc.pcmdline":
		p.Parent.CmdLine = v
	case "proc.pexepath":
		p.Parent.File.Path = v
	case "user.name":
		p.User.Name = v
	case "user.uid":
		p.User.UID = v
	case "fd.name":
		if !strings.HasPrefix(v, "/") {
			return false // a connection tuple or a pipe: kept in unmapped
		}
		ev.File.Path = v
		ev.File.Name = v[strings.LastIndexByte(v, '/')+1:]
	case "fd.sip":
		ev.DstEndpoint.IP = v
	case "fd.sport":
		ev.DstEndpoint.Port = atoi(v)
	case "fd.cip":
		ev.SrcEndpoint.IP = v
	case "fd.cport":
		ev.SrcEndpoint.Port = atoi(v)
	case "fd.sip.name":
		ev.DstEndpoint.Hostname = v
	case "container.id":
		if v != "host" {
			ev.Device.Container.UID = v
		}
	case "container.name":
		if v != "host" {
			ev.Device.Container.Name = v
		}
	case "container.image.repository", "container.image":
		ev.Device.Container.Image.Name = v
	case "evt.hostname", "hostname":
		ev.Device.Hostname = v
	case "aws.instance_id", "cloud.instance_id", "ec2.instance_id":
		ev.Device.InstanceUID = v
	default:
		if strings.HasPrefix(k, "proc.aexepath[") {
			p.Lineage = append(p.Lineage, v)
			return true
		}
		return false
	}
	return true
}
