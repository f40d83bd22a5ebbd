package ocsf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the OCSF JSON document of e to b: byte for byte what
// an encoding/json Encoder with SetEscapeHTML(false) writes for e, without
// the trailing newline. It returns an error only for an invalid raw JSON
// value (Unmapped, API request or response data), as encoding/json does.
//
// It is written by hand because storage encodes every event it writes:
// encoding/json spends a third of its time reflecting over the many
// optional objects (omitzero walks each struct field by field) and
// allocates on the way. This appender walks the model with plain
// comparisons and allocates nothing but b's growth. Keep it in step with
// the struct tags: TestAppendJSONMatchesEncodingJSON fills every field of
// the model by reflection and fails on any difference, including a field
// added to the model and not here.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, '{')
	b = intAlways(b, "class_uid", int64(e.ClassUID))
	b = str(b, "class_name", e.ClassName)
	b = intAlways(b, "category_uid", int64(e.CategoryUID))
	b = str(b, "category_name", e.CategoryName)
	b = intAlways(b, "activity_id", int64(e.ActivityID))
	b = str(b, "activity_name", e.ActivityName)
	b = intAlways(b, "type_uid", int64(e.TypeUID))
	b = str(b, "type_name", e.TypeName)
	b = intAlways(b, "time", e.Time)
	b = intAlways(b, "severity_id", int64(e.SeverityID))
	b = str(b, "severity", e.Severity)
	b = num(b, "status_id", int64(e.StatusID))
	b = str(b, "status", e.Status)
	b = str(b, "status_code", e.StatusCode)
	b = str(b, "status_detail", e.StatusDetail)
	b = str(b, "message", e.Message)
	b = e.Metadata.appendJSON(key(b, "metadata"))
	if e.Cloud != (Cloud{}) {
		b = e.Cloud.appendJSON(key(b, "cloud"))
	}
	if !e.Actor.isZero() {
		b = e.Actor.appendJSON(key(b, "actor"))
	}
	if !e.SrcEndpoint.isZero() {
		b = e.SrcEndpoint.appendJSON(key(b, "src_endpoint"))
	}
	if !e.DstEndpoint.isZero() {
		b = e.DstEndpoint.appendJSON(key(b, "dst_endpoint"))
	}
	if e.HTTPRequest != (HTTPRequest{}) {
		h := &e.HTTPRequest
		b = append(key(b, "http_request"), '{')
		b = str(b, "user_agent", h.UserAgent)
		if h.URL.Hostname != "" || h.URL.Path != "" || h.URL.URLString != "" {
			b = append(key(b, "url"), '{')
			b = str(b, "hostname", h.URL.Hostname)
			b = str(b, "path", h.URL.Path)
			b = str(b, "url_string", h.URL.URLString)
			b = append(b, '}')
		}
		b = str(b, "http_method", h.HTTPMethod)
		b = append(b, '}')
	}
	if !e.API.isZero() {
		if b, err = e.API.appendJSON(key(b, "api")); err != nil {
			return b, err
		}
	}
	b = list(b, "resources", e.Resources, (*Resource).appendJSON)
	if !e.User.isZero() {
		b = e.User.appendJSON(key(b, "user"))
	}
	b = boolean(b, "is_mfa", e.IsMFA)
	b = str(b, "auth_protocol", e.AuthProto)
	b = str(b, "logon_type", e.LogonType)
	b = boolean(b, "is_remote", e.IsRemote)
	if e.Service != (Service{}) {
		b = append(key(b, "service"), '{')
		b = str(b, "name", e.Service.Name)
		b = str(b, "uid", e.Service.UID)
		b = append(b, '}')
	}
	if e.Device != (Device{}) {
		b = e.Device.appendJSON(key(b, "device"))
	}
	if !e.Process.isZero() {
		b = e.Process.appendJSON(key(b, "process"))
	}
	if !e.File.isZero() {
		b = e.File.appendJSON(key(b, "file"))
	}
	if !e.FileResult.isZero() {
		b = e.FileResult.appendJSON(key(b, "file_result"))
	}
	if e.ConnectionInfo != (ConnectionInfo{}) {
		c := &e.ConnectionInfo
		b = append(key(b, "connection_info"), '{')
		b = num(b, "protocol_num", int64(c.ProtocolNum))
		b = str(b, "protocol_name", c.ProtocolName)
		b = str(b, "protocol_ver", c.ProtocolVer)
		b = num(b, "protocol_ver_id", int64(c.ProtocolVerID))
		b = str(b, "direction", c.Direction)
		b = num(b, "direction_id", int64(c.DirectionID))
		b = num(b, "tcp_flags", int64(c.TCPFlags))
		b = str(b, "boundary", c.Boundary)
		b = num(b, "boundary_id", int64(c.BoundaryID))
		b = append(b, '}')
	}
	if e.Traffic != (Traffic{}) {
		b = append(key(b, "traffic"), '{')
		b = num(b, "bytes", e.Traffic.Bytes)
		b = num(b, "packets", e.Traffic.Packets)
		b = append(b, '}')
	}
	if e.Query != (DNSQuery{}) {
		b = append(key(b, "query"), '{')
		b = str(b, "hostname", e.Query.Hostname)
		b = str(b, "type", e.Query.Type)
		b = str(b, "class", e.Query.Class)
		b = append(b, '}')
	}
	b = list(b, "answers", e.Answers, (*DNSAnswer).appendJSON)
	b = num(b, "start_time", e.StartTime)
	b = num(b, "end_time", e.EndTime)
	b = str(b, "action", e.Action)
	b = num(b, "action_id", int64(e.ActionID))
	b = str(b, "disposition", e.Disposition)
	b = num(b, "disposition_id", int64(e.DispositionID))
	if !e.FindingInfo.isZero() {
		b = e.FindingInfo.appendJSON(key(b, "finding_info"))
	}
	b = num(b, "risk_score", int64(e.RiskScore))
	if len(e.Vulnerabilities) > 0 {
		// Only Inspector's findings carry them: encoding/json (without
		// HTML escaping, as the rest) rather than a copy of its float format.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(e.Vulnerabilities); err != nil {
			return b, err
		}
		b = append(key(b, "vulnerabilities"), bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
	}
	b = num(b, "confidence_score", int64(e.Confidence))
	b = list(b, "observables", e.Observables, (*Observable).appendJSON)
	if b, err = raw(b, "unmapped", e.Unmapped); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func (m *Metadata) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = strAlways(b, "version", m.Version)
	b = append(key(b, "product"), '{')
	p := &m.Product
	b = str(b, "name", p.Name)
	b = str(b, "vendor_name", p.VendorName)
	b = str(b, "version", p.Version)
	if p.Feature.Name != "" {
		b = append(key(b, "feature"), '{')
		b = str(b, "name", p.Feature.Name)
		b = append(b, '}')
	}
	b = append(b, '}')
	b = str(b, "uid", m.UID)
	b = str(b, "log_name", m.LogName)
	b = str(b, "log_provider", m.LogProvider)
	b = str(b, "event_code", m.EventCode)
	b = strList(b, "profiles", m.Profiles)
	b = str(b, "original_time", m.OriginalTime)
	b = num(b, "logged_time", m.LoggedTime)
	b = str(b, "tenant_uid", m.TenantUID)
	return append(b, '}')
}

func (c *Cloud) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "provider", c.Provider)
	b = str(b, "region", c.Region)
	if c.Account != (Account{}) {
		b = c.Account.appendJSON(key(b, "account"))
	}
	b = str(b, "zone", c.Zone)
	return append(b, '}')
}

func (a *Account) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "uid", a.UID)
	b = str(b, "name", a.Name)
	b = str(b, "type", a.Type)
	return append(b, '}')
}

func (a *Actor) isZero() bool {
	return a.User.isZero() && a.Session == (Session{}) && a.InvokedBy == "" && a.Process.isZero() && a.IDP.Name == ""
}

func (a *Actor) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if !a.User.isZero() {
		b = a.User.appendJSON(key(b, "user"))
	}
	if a.Session != (Session{}) {
		s := &a.Session
		b = append(key(b, "session"), '{')
		b = str(b, "uid", s.UID)
		b = str(b, "name", s.Name)
		b = str(b, "issuer", s.Issuer)
		b = num(b, "created_time", s.CreatedTime)
		b = boolean(b, "is_mfa", s.IsMFA)
		b = str(b, "credential_uid", s.CredentialUID)
		b = append(b, '}')
	}
	b = str(b, "invoked_by", a.InvokedBy)
	if !a.Process.isZero() {
		b = a.Process.appendJSON(key(b, "process"))
	}
	if a.IDP.Name != "" {
		b = append(key(b, "idp"), '{')
		b = str(b, "name", a.IDP.Name)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (u *User) isZero() bool {
	return u.UID == "" && u.Name == "" && u.Type == "" && u.TypeID == 0 && u.UIDAlt == "" &&
		u.CredentialUID == "" && u.Domain == "" && u.Account == (Account{}) && u.Groups == nil
}

func (u *User) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "uid", u.UID)
	b = str(b, "name", u.Name)
	b = str(b, "type", u.Type)
	b = num(b, "type_id", int64(u.TypeID))
	b = str(b, "uid_alt", u.UIDAlt)
	b = str(b, "credential_uid", u.CredentialUID)
	b = str(b, "domain", u.Domain)
	if u.Account != (Account{}) {
		b = u.Account.appendJSON(key(b, "account"))
	}
	b = list(b, "groups", u.Groups, (*Group).appendJSON)
	return append(b, '}')
}

func (g *Group) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "name", g.Name)
	b = str(b, "uid", g.UID)
	return append(b, '}')
}

func (n *NetworkEndpoint) isZero() bool {
	return n.IP == "" && n.Port == 0 && n.Hostname == "" && n.Domain == "" && n.UID == "" &&
		n.InstanceUID == "" && n.InterfaceUID == "" && n.VPCUID == "" && n.SubnetUID == "" &&
		n.SvcName == "" && n.Type == "" && n.IntermediateIPs == nil &&
		n.Location.Country == "" && n.Location.City == "" &&
		n.AutonomousSystem.Number == 0 && n.AutonomousSystem.Name == ""
}

func (n *NetworkEndpoint) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "ip", n.IP)
	b = num(b, "port", int64(n.Port))
	b = str(b, "hostname", n.Hostname)
	b = str(b, "domain", n.Domain)
	b = str(b, "uid", n.UID)
	b = str(b, "instance_uid", n.InstanceUID)
	b = str(b, "interface_uid", n.InterfaceUID)
	b = str(b, "vpc_uid", n.VPCUID)
	b = str(b, "subnet_uid", n.SubnetUID)
	b = str(b, "svc_name", n.SvcName)
	b = str(b, "type", n.Type)
	b = strList(b, "intermediate_ips", n.IntermediateIPs)
	if n.Location.Country != "" || n.Location.City != "" {
		b = append(key(b, "location"), '{')
		b = str(b, "country", n.Location.Country)
		b = str(b, "city", n.Location.City)
		b = append(b, '}')
	}
	if n.AutonomousSystem.Number != 0 || n.AutonomousSystem.Name != "" {
		b = append(key(b, "autonomous_system"), '{')
		b = num(b, "number", int64(n.AutonomousSystem.Number))
		b = str(b, "name", n.AutonomousSystem.Name)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (a *API) isZero() bool {
	return a.Operation == "" && a.Service == (APIService{}) && a.Version == "" &&
		a.Request.UID == "" && a.Request.Data == nil &&
		a.Response.Error == "" && a.Response.ErrorMessage == "" && a.Response.Data == nil
}

func (a *API) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, '{')
	b = str(b, "operation", a.Operation)
	if a.Service.Name != "" {
		b = append(key(b, "service"), '{')
		b = str(b, "name", a.Service.Name)
		b = append(b, '}')
	}
	b = str(b, "version", a.Version)
	if a.Request.UID != "" || a.Request.Data != nil {
		b = append(key(b, "request"), '{')
		b = str(b, "uid", a.Request.UID)
		if b, err = raw(b, "data", a.Request.Data); err != nil {
			return b, err
		}
		b = append(b, '}')
	}
	if r := &a.Response; r.Error != "" || r.ErrorMessage != "" || r.Data != nil {
		b = append(key(b, "response"), '{')
		b = str(b, "error", r.Error)
		b = str(b, "error_message", r.ErrorMessage)
		if b, err = raw(b, "data", r.Data); err != nil {
			return b, err
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func (r *Resource) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "uid", r.UID)
	b = str(b, "name", r.Name)
	b = str(b, "type", r.Type)
	b = str(b, "region", r.Region)
	if r.Owner.Account != (Account{}) {
		b = append(key(b, "owner"), '{')
		b = r.Owner.Account.appendJSON(key(b, "account"))
		b = append(b, '}')
	}
	return append(b, '}')
}

func (d *Device) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "uid", d.UID)
	b = str(b, "name", d.Name)
	b = str(b, "hostname", d.Hostname)
	b = str(b, "ip", d.IP)
	b = str(b, "instance_uid", d.InstanceUID)
	b = str(b, "type", d.Type)
	b = num(b, "type_id", int64(d.TypeID))
	b = str(b, "region", d.Region)
	if d.OS.Name != "" || d.OS.Type != "" {
		b = append(key(b, "os"), '{')
		b = str(b, "name", d.OS.Name)
		b = str(b, "type", d.OS.Type)
		b = append(b, '}')
	}
	if c := &d.Container; c.UID != "" || c.Name != "" || c.Image.Name != "" {
		b = append(key(b, "container"), '{')
		b = str(b, "uid", c.UID)
		b = str(b, "name", c.Name)
		if c.Image.Name != "" {
			b = append(key(b, "image"), '{')
			b = str(b, "name", c.Image.Name)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func (p *Process) isZero() bool {
	return p.PID == 0 && p.UID == "" && p.Name == "" && p.CmdLine == "" && p.File.isZero() &&
		p.User == (ProcessUser{}) && p.CWD == "" && p.Parent.isZero() && p.Lineage == nil && p.CreatedTime == 0
}

func (p *Process) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = num(b, "pid", int64(p.PID))
	b = str(b, "uid", p.UID)
	b = str(b, "name", p.Name)
	b = str(b, "cmd_line", p.CmdLine)
	if !p.File.isZero() {
		b = p.File.appendJSON(key(b, "file"))
	}
	if p.User != (ProcessUser{}) {
		b = p.User.appendJSON(key(b, "user"))
	}
	b = str(b, "cwd", p.CWD)
	if !p.Parent.isZero() {
		pp := &p.Parent
		b = append(key(b, "parent_process"), '{')
		b = num(b, "pid", int64(pp.PID))
		b = str(b, "uid", pp.UID)
		b = str(b, "name", pp.Name)
		b = str(b, "cmd_line", pp.CmdLine)
		if !pp.File.isZero() {
			b = pp.File.appendJSON(key(b, "file"))
		}
		if pp.User != (ProcessUser{}) {
			b = pp.User.appendJSON(key(b, "user"))
		}
		b = append(b, '}')
	}
	b = strList(b, "lineage", p.Lineage)
	b = num(b, "created_time", p.CreatedTime)
	return append(b, '}')
}

func (p *ParentProcess) isZero() bool {
	return p.PID == 0 && p.UID == "" && p.Name == "" && p.CmdLine == "" && p.File.isZero() && p.User == (ProcessUser{})
}

func (u *ProcessUser) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "name", u.Name)
	b = str(b, "uid", u.UID)
	return append(b, '}')
}

func (f *File) isZero() bool {
	return f.Name == "" && f.Path == "" && f.ParentFolder == "" && f.Type == "" && f.TypeID == 0 && f.Size == 0 && f.Hashes == nil
}

func (f *File) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "name", f.Name)
	b = str(b, "path", f.Path)
	b = str(b, "parent_folder", f.ParentFolder)
	b = str(b, "type", f.Type)
	b = num(b, "type_id", int64(f.TypeID))
	b = num(b, "size", f.Size)
	b = list(b, "hashes", f.Hashes, (*Fingerprint).appendJSON)
	return append(b, '}')
}

func (h *Fingerprint) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "algorithm", h.Algorithm)
	b = num(b, "algorithm_id", int64(h.AlgorithmID))
	b = strAlways(b, "value", h.Value)
	return append(b, '}')
}

func (f *FindingInfo) isZero() bool {
	return f.UID == "" && f.Title == "" && f.Desc == "" && f.Types == nil && f.CreatedTime == 0 &&
		f.FirstSeen == 0 && f.LastSeen == 0 && f.ModifiedTime == 0 && f.ProductUID == "" &&
		f.Attacks == nil && f.SrcURL == "" && f.RelatedEvents == nil
}

func (f *FindingInfo) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "uid", f.UID)
	b = str(b, "title", f.Title)
	b = str(b, "desc", f.Desc)
	b = strList(b, "types", f.Types)
	b = num(b, "created_time", f.CreatedTime)
	b = num(b, "first_seen_time", f.FirstSeen)
	b = num(b, "last_seen_time", f.LastSeen)
	b = num(b, "modified_time", f.ModifiedTime)
	b = str(b, "product_uid", f.ProductUID)
	b = list(b, "attacks", f.Attacks, (*Attack).appendJSON)
	b = str(b, "src_url", f.SrcURL)
	b = list(b, "related_events", f.RelatedEvents, (*RelatedEvent).appendJSON)
	return append(b, '}')
}

func (a *Attack) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if a.Tactic != (AttackRef{}) {
		b = a.Tactic.appendJSON(key(b, "tactic"))
	}
	if a.Technique != (AttackRef{}) {
		b = a.Technique.appendJSON(key(b, "technique"))
	}
	return append(b, '}')
}

func (r *RelatedEvent) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "uid", r.UID)
	b = str(b, "type", r.Type)
	b = str(b, "product_uid", r.ProductUID)
	b = str(b, "desc", r.Desc)
	b = num(b, "first_seen_time", r.FirstSeen)
	b = num(b, "last_seen_time", r.LastSeen)
	return append(b, '}')
}

func (a AttackRef) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "uid", a.UID)
	b = str(b, "name", a.Name)
	return append(b, '}')
}

func (a *DNSAnswer) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = str(b, "rdata", a.Rdata)
	b = str(b, "type", a.Type)
	return append(b, '}')
}

func (o *Observable) appendJSON(b []byte) []byte {
	b = append(b, '{')
	b = strAlways(b, "name", o.Name)
	b = str(b, "type", o.Type)
	b = intAlways(b, "type_id", int64(o.TypeID))
	b = strAlways(b, "value", o.Value)
	b = strAlways(b, "entity", string(o.Entity))
	return append(b, '}')
}

// key appends `"k":`, preceded by a comma unless it is the object's first
// member (b ends in '{' only right after an object opened: no value ends
// in '{').
func key(b []byte, k string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

// str appends an omitempty string member.
func str(b []byte, k, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(key(b, k), v)
}

func strAlways(b []byte, k, v string) []byte { return appendString(key(b, k), v) }

// num appends an omitempty integer member.
func num(b []byte, k string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(key(b, k), v, 10)
}

func intAlways(b []byte, k string, v int64) []byte { return strconv.AppendInt(key(b, k), v, 10) }

// boolean appends an omitempty bool member.
func boolean(b []byte, k string, v bool) []byte {
	if !v {
		return b
	}
	return append(key(b, k), "true"...)
}

// strList appends an omitempty []string member.
func strList(b []byte, k string, vs []string) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(key(b, k), '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

// list appends an omitempty array member, each element written by elem.
func list[T any](b []byte, k string, xs []T, elem func(*T, []byte) []byte) []byte {
	if len(xs) == 0 {
		return b
	}
	b = append(key(b, k), '[')
	for i := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = elem(&xs[i], b)
	}
	return append(b, ']')
}

// raw appends an omitempty json.RawMessage member, compacted and validated
// as encoding/json does.
func raw(b []byte, k string, v json.RawMessage) ([]byte, error) {
	if len(v) == 0 {
		return b, nil
	}
	b = key(b, k)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, v); err != nil {
		return b, fmt.Errorf("ocsf: %s is not valid JSON: %w", k, err)
	}
	return buf.Bytes(), nil
}

const hexDigits = "0123456789abcdef"

// load8 reads s[i:i+8] as a little-endian word (one load).
func load8(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// plain8 reports whether every byte of w is ASCII that a JSON string holds
// as it is: not below 0x20, not a quote, not a backslash. The byte tests
// are the word-at-a-time ones of "Bit Twiddling Hacks" (determine if a
// word has a zero byte, or a byte less than n): they may report a byte
// that is fine beside one that is not, never miss one, so a false answer
// only sends the word to the byte-by-byte path.
func plain8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	ctl := (w - 0x20*ones) &^ w & highs
	q := w ^ ('"' * ones)
	q = (q - ones) &^ q & highs
	bs := w ^ ('\\' * ones)
	bs = (bs - ones) &^ bs & highs
	return (w&highs)|ctl|q|bs == 0
}

// appendString appends s as a JSON string, escaped as encoding/json does
// without HTML escaping: quote, backslash and control characters, invalid
// UTF-8 as U+FFFD, and U+2028/U+2029.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look of its own: most
		// of an event's text is plain ASCII.
		if i+8 <= len(s) && plain8(load8(s, i)) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
