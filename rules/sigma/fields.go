package sigma

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
)

// target is where a Sigma logsource lands in Musubi: the sources of the
// rule, the entities its alerts carry, the class of generated test events,
// and how each Sigma field reads the OCSF event.
type target struct {
	name     string
	logNames []string
	classes  []int
	entities []string
	class    int // class_uid of generated test events
	fields   map[string]field
	// dynamic maps a field the table does not name (requestParameters.x.y)
	// to an OCSF field, or reports false.
	dynamic func(name string) (field, bool)
}

// field is how one Sigma field reads the OCSF event.
type field struct {
	expr string // CEL expression of the value
	num  bool   // an integer field
	json bool   // a value inside request/response JSON: dyn, maybe absent
	has  string // CEL expression: the field is present
	set  func(ev map[string]any, v string)
}

// str is a string field at an OCSF path.
func str(p string) field {
	return field{expr: "event." + p, has: "event." + p + ` != ""`, set: setter(p)}
}

// num is an integer field at an OCSF path.
func num(p string) field {
	return field{expr: "event." + p, num: true, has: "event." + p + " != 0", set: func(ev map[string]any, v string) {
		n, err := strconv.Atoi(v)
		if err != nil {
			n = 65535 // a value no generated test compares with
		}
		put(ev, strings.Split(p, "."), n)
	}}
}

func setter(p string) func(map[string]any, string) {
	return func(ev map[string]any, v string) { put(ev, strings.Split(p, "."), v) }
}

// put sets a nested value, creating the maps on the way.
func put(m map[string]any, p []string, v any) {
	for _, k := range p[:len(p)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[p[len(p)-1]] = v
}

// jsonField reads a member of api.request.data or api.response.data
// (CloudTrail's requestParameters and responseElements).
func jsonField(root, data string, p []string) field {
	var sel strings.Builder
	sel.WriteString(root)
	for _, k := range p {
		sel.WriteString(".?" + celIdent(k))
	}
	return field{
		expr: "string(" + sel.String() + `.orValue(""))`,
		json: true,
		has:  sel.String() + ".hasValue()",
		set: func(ev map[string]any, v string) {
			var val any = v
			if v == "true" || v == "false" {
				val = v == "true"
			}
			put(ev, append([]string{"api", data, "data"}, p...), val)
		},
	}
}

// celIdent quotes a JSON member name that is not a CEL identifier.
func celIdent(k string) string {
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return "`" + k + "`"
		}
	}
	return k
}

var cloudtrailEntities = []string{"principal", "session", "access_key", "ip", "account", "role", "user"}

// cloudtrail maps CloudTrail record fields as ingest/cloudtrail normalizes
// them.
var cloudtrail = &target{
	name:     "aws/cloudtrail",
	logNames: []string{"cloudtrail"},
	entities: cloudtrailEntities,
	class:    6003,
	fields: map[string]field{
		// CloudTrail records have no status; Sigma rules that test it
		// (ConsoleLogin success/failure) mean the outcome, which the
		// normalizer keeps as OCSF status (Success, Failure).
		"status":             str("status"),
		"eventSource":        str("api.service.name"),
		"eventName":          str("api.operation"),
		"awsRegion":          str("cloud.region"),
		"userAgent":          str("http_request.user_agent"),
		"errorCode":          str("api.response.error"),
		"errorMessage":       str("api.response.error_message"),
		"eventID":            str("metadata.uid"),
		"requestID":          str("api.request.uid"),
		"eventType":          str("metadata.event_code"),
		"eventCategory":      str("metadata.product.feature.name"),
		"eventVersion":       str("metadata.product.version"),
		"recipientAccountId": str("cloud.account.uid"),
		"vpcEndpointId":      str("src_endpoint.uid"),
		"sourceIPAddress": {
			// an address lands in src_endpoint.ip, a service name
			// ("AWS Internal", "ec2.amazonaws.com") in src_endpoint.domain
			expr: `(event.src_endpoint.ip != "" ? event.src_endpoint.ip : event.src_endpoint.domain)`,
			has:  `(event.src_endpoint.ip != "" || event.src_endpoint.domain != "")`,
			set: func(ev map[string]any, v string) {
				ep := map[string]any{"domain": v}
				if _, err := netip.ParseAddr(v); err == nil {
					ep = map[string]any{"ip": v}
				}
				ev["src_endpoint"] = ep
			},
		},
		"userIdentity.type":                             str("actor.user.type"),
		"userIdentity.arn":                              str("actor.user.uid_alt"),
		"userIdentity.principalId":                      str("actor.user.uid"),
		"userIdentity.accountId":                        str("actor.user.account.uid"),
		"userIdentity.accessKeyId":                      str("actor.user.credential_uid"),
		"userIdentity.invokedBy":                        str("actor.invoked_by"),
		"userIdentity.sessionContext.sessionIssuer.arn": str("actor.session.issuer"),
		// The issuer's type is not kept; a role issuer has a role ARN.
		"userIdentity.sessionContext.sessionIssuer.type": {
			expr: `(event.actor.session.issuer.contains(":role/") ? "Role" : (event.actor.session.issuer != "" ? "IAMUser" : ""))`,
			has:  `event.actor.session.issuer != ""`,
			set: func(ev map[string]any, v string) {
				issuer := "arn:aws:iam::111122223333:user/" + v
				if strings.EqualFold(v, "Role") {
					issuer = "arn:aws:iam::111122223333:role/sigma-test"
				}
				put(ev, []string{"actor", "session", "issuer"}, issuer)
			},
		},
		// additionalEventData.MFAUsed ("Yes"/"No") of a console sign-in:
		// the normalizer makes the record an Authentication event (3002)
		// and keeps the flag as OCSF is_mfa; other records have none.
		"additionalEventData.MFAUsed": {
			expr: `(event.class_uid == 3002 ? (event.is_mfa ? "Yes" : "No") : "")`,
			has:  `event.class_uid == 3002`,
			set: func(ev map[string]any, v string) {
				ev["class_uid"] = 3002
				ev["is_mfa"] = !strings.EqualFold(v, "No")
			},
		},
		"userIdentity.sessionContext.sessionIssuer.userName": str("actor.user.name"),
		"userIdentity.webIdFederationData.federatedProvider": str("actor.idp.name"),
	},
	dynamic: func(name string) (field, bool) {
		// the whole body, searched as JSON text (json_text)
		if side, ok := map[string]string{"requestParameters": "request", "responseElements": "response"}[name]; ok {
			return field{
				expr: "json_text(" + side + ")",
				json: true,
				has:  "size(" + side + ") > 0",
				set: func(ev map[string]any, v string) {
					// searched fragments that are JSON strings ("Allow")
					// become string members, so the text holds them quoted
					var strs []any
					for _, tok := range strings.Fields(v) {
						var u string
						if json.Unmarshal([]byte(tok), &u) != nil {
							strs = nil
							break
						}
						strs = append(strs, u)
					}
					if strs != nil {
						put(ev, []string{"api", side, "data"}, map[string]any{"values": strs})
						return
					}
					put(ev, []string{"api", side, "data"}, map[string]any{"value": v})
				},
			}, true
		}
		for prefix, side := range map[string][2]string{
			"requestParameters.": {"request", "request"},
			"responseElements.":  {"response", "response"},
		} {
			if rest, ok := strings.CutPrefix(name, prefix); ok && rest != "" {
				return jsonField(side[0], side[1], strings.Split(rest, ".")), true
			}
		}
		return field{}, false
	},
}

var hostEntities = []string{"host", "instance", "process", "user", "file", "ip"}

// linuxProcess maps Sigma's process_creation fields to OCSF Process
// Activity (1007): process is the one launched, parent_process its parent.
var linuxProcess = &target{
	name:     "linux/process_creation",
	logNames: []string{"agent", "falco"},
	classes:  []int{1007},
	entities: []string{"host", "instance", "process", "user"},
	class:    1007,
	fields: map[string]field{
		"Image":             str("process.file.path"),
		"CommandLine":       str("process.cmd_line"),
		"CurrentDirectory":  str("process.cwd"),
		"User":              str("process.user.name"),
		"ProcessId":         num("process.pid"),
		"ParentImage":       str("process.parent_process.file.path"),
		"ParentCommandLine": str("process.parent_process.cmd_line"),
		"ParentProcessId":   num("process.parent_process.pid"),
	},
}

// linuxFile maps file_event to File System Activity (1001); the process
// that wrote is actor.process.
var linuxFile = &target{
	name:     "linux/file_event",
	logNames: []string{"agent", "falco"},
	classes:  []int{1001},
	entities: []string{"host", "instance", "process", "user", "file"},
	class:    1001,
	fields: map[string]field{
		"TargetFilename": str("file.path"),
		"Image":          str("actor.process.file.path"),
		"CommandLine":    str("actor.process.cmd_line"),
		"User":           str("actor.process.user.name"),
		"ProcessId":      num("actor.process.pid"),
	},
}

// linuxNetwork maps network_connection to Network Activity (4001).
var linuxNetwork = &target{
	name:     "linux/network_connection",
	logNames: []string{"agent", "falco"},
	classes:  []int{4001},
	entities: hostEntities,
	class:    4001,
	fields: map[string]field{
		"DestinationIp":       str("dst_endpoint.ip"),
		"DestinationPort":     num("dst_endpoint.port"),
		"DestinationHostname": str("dst_endpoint.hostname"),
		"SourceIp":            str("src_endpoint.ip"),
		"SourcePort":          num("src_endpoint.port"),
		"Image":               str("actor.process.file.path"),
		"CommandLine":         str("actor.process.cmd_line"),
		"User":                str("actor.process.user.name"),
		"ProcessId":           num("actor.process.pid"),
	},
}

// targetFor returns the Musubi target of a Sigma logsource, or nil.
func targetFor(ls logsource) *target {
	p, s, c := strings.ToLower(ls.Product), strings.ToLower(ls.Service), strings.ToLower(ls.Category)
	switch {
	case p == "aws" && s == "cloudtrail":
		return cloudtrail
	case p == "linux" && c == "process_creation":
		return linuxProcess
	case p == "linux" && c == "file_event":
		return linuxFile
	case p == "linux" && c == "network_connection":
		return linuxNetwork
	}
	return nil
}

func (t *target) field(name string) (field, bool) {
	if f, ok := t.fields[name]; ok {
		return f, true
	}
	if t.dynamic != nil {
		return t.dynamic(name)
	}
	return field{}, false
}
