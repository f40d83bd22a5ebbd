// Package ocsf is Musubi's normalized event model: the subset of the Open
// Cybersecurity Schema Framework (OCSF 1.x) that the supported sources map
// to, with attribute names exactly as the OCSF schema and Amazon Security
// Lake spell them.
//
// The package is a leaf: it imports only the standard library. Sources under
// ingest/ produce Events, rules evaluate them, the correlator links them
// through their Observables, and storage writes them.
//
// Sub-objects are value structs tagged omitzero, so an absent object costs no
// allocation, is left out of the JSON, and reads as its zero value in rules
// (a missing field never breaks a negated condition).
package ocsf

import "encoding/json"

// Version is the OCSF schema version that Musubi emits in metadata.version.
const Version = "1.1.0"

// Event is one normalized OCSF event of any supported class. Class-specific
// objects are left zero when the class does not use them.
type Event struct {
	ClassUID     int    `json:"class_uid" cel:"class_uid"`
	ClassName    string `json:"class_name,omitempty" cel:"class_name"`
	CategoryUID  int    `json:"category_uid" cel:"category_uid"`
	CategoryName string `json:"category_name,omitempty" cel:"category_name"`
	ActivityID   int    `json:"activity_id" cel:"activity_id"`
	ActivityName string `json:"activity_name,omitempty" cel:"activity_name"`
	TypeUID      int    `json:"type_uid" cel:"type_uid"`
	TypeName     string `json:"type_name,omitempty" cel:"type_name"`
	// Time is the event time in milliseconds since the Unix epoch.
	Time         int64  `json:"time" cel:"time"`
	SeverityID   int    `json:"severity_id" cel:"severity_id"`
	Severity     string `json:"severity,omitempty" cel:"severity"`
	StatusID     int    `json:"status_id,omitempty" cel:"status_id"`
	Status       string `json:"status,omitempty" cel:"status"`
	StatusCode   string `json:"status_code,omitempty" cel:"status_code"`
	StatusDetail string `json:"status_detail,omitempty" cel:"status_detail"`
	Message      string `json:"message,omitempty" cel:"message"`

	Metadata    Metadata        `json:"metadata" cel:"metadata"`
	Cloud       Cloud           `json:"cloud,omitzero" cel:"cloud"`
	Actor       Actor           `json:"actor,omitzero" cel:"actor"`
	SrcEndpoint NetworkEndpoint `json:"src_endpoint,omitzero" cel:"src_endpoint"`
	DstEndpoint NetworkEndpoint `json:"dst_endpoint,omitzero" cel:"dst_endpoint"`
	HTTPRequest HTTPRequest     `json:"http_request,omitzero" cel:"http_request"`
	API         API             `json:"api,omitzero" cel:"api"`
	Resources   []Resource      `json:"resources,omitempty" cel:"resources"`

	// Authentication (3002) and Account Change (3001).
	User      User    `json:"user,omitzero" cel:"user"`
	IsMFA     bool    `json:"is_mfa,omitempty" cel:"is_mfa"`
	AuthProto string  `json:"auth_protocol,omitempty" cel:"auth_protocol"`
	LogonType string  `json:"logon_type,omitempty" cel:"logon_type"`
	IsRemote  bool    `json:"is_remote,omitempty" cel:"is_remote"`
	Service   Service `json:"service,omitzero" cel:"service"`

	// System activity (1001 File System, 1007 Process) and Network (4001, 4003).
	Device Device `json:"device,omitzero" cel:"device"`
	// Process is the process acted on in Process Activity (1007): the one
	// launched, opened or terminated; Actor.Process is the one that acted
	// (its parent, for a launch). No other class defines a top-level
	// process: in Network, DNS and File System Activity and in findings the
	// process that acted is Actor.Process. Defines tells which top-level
	// attributes each class has.
	Process Process `json:"process,omitzero" cel:"process"`
	File    File    `json:"file,omitzero" cel:"file"`
	// FileResult is the file after the activity (the new name of a rename).
	FileResult     File           `json:"file_result,omitzero" cel:"file_result"`
	ConnectionInfo ConnectionInfo `json:"connection_info,omitzero" cel:"connection_info"`
	Traffic        Traffic        `json:"traffic,omitzero" cel:"traffic"`
	Query          DNSQuery       `json:"query,omitzero" cel:"query"`
	Answers        []DNSAnswer    `json:"answers,omitempty" cel:"answers"`
	StartTime      int64          `json:"start_time,omitempty" cel:"start_time"`
	EndTime        int64          `json:"end_time,omitempty" cel:"end_time"`
	Action         string         `json:"action,omitempty" cel:"action"`
	ActionID       int            `json:"action_id,omitempty" cel:"action_id"`
	Disposition    string         `json:"disposition,omitempty" cel:"disposition"`
	DispositionID  int            `json:"disposition_id,omitempty" cel:"disposition_id"`

	// Findings (2004 Detection Finding, 2005 Incident Finding).
	FindingInfo FindingInfo `json:"finding_info,omitzero" cel:"finding_info"`
	RiskScore   int         `json:"risk_score,omitempty" cel:"risk_score"`
	// Vulnerabilities are the vulnerabilities of a Vulnerability Finding
	// (2002): Inspector's CVE, CVSS and exploitability.
	Vulnerabilities []Vulnerability `json:"vulnerabilities,omitempty" cel:"vulnerabilities"`
	Confidence      int             `json:"confidence_score,omitempty" cel:"confidence_score"`

	// Observables names every entity of the event, including the links
	// hidden inside values (see Observable).
	Observables []Observable `json:"observables,omitempty" cel:"observables"`

	// Unmapped keeps source fields that have no OCSF home, as raw JSON.
	Unmapped json.RawMessage `json:"unmapped,omitempty" cel:"-"`
	// Raw is the source record this event came from. It is not part of the
	// OCSF JSON; storage keeps it compressed when configured to.
	Raw []byte `json:"-" cel:"-"`
}

// Metadata is OCSF metadata.
type Metadata struct {
	Version string  `json:"version" cel:"version"`
	Product Product `json:"product" cel:"product"`
	// UID is the source record's own unique id (CloudTrail eventID, finding
	// id, ...) or, where the source has none, a hash of the record.
	UID string `json:"uid,omitempty" cel:"uid"`
	// LogName names the source: cloudtrail, vpcflow, guardduty, agent, falco.
	LogName      string   `json:"log_name,omitempty" cel:"log_name"`
	LogProvider  string   `json:"log_provider,omitempty" cel:"log_provider"`
	EventCode    string   `json:"event_code,omitempty" cel:"event_code"`
	Profiles     []string `json:"profiles,omitempty" cel:"profiles"`
	OriginalTime string   `json:"original_time,omitempty" cel:"original_time"`
	LoggedTime   int64    `json:"logged_time,omitempty" cel:"logged_time"`
	// TenantUID is the Musubi tenant that owns the event, resolved from the
	// AWS account at ingest.
	TenantUID string `json:"tenant_uid,omitempty" cel:"tenant_uid"`
}

// Product names the product that produced the source record.
type Product struct {
	Name       string `json:"name,omitempty" cel:"name"`
	VendorName string `json:"vendor_name,omitempty" cel:"vendor_name"`
	Version    string `json:"version,omitempty" cel:"version"`
	Feature    struct {
		Name string `json:"name,omitempty" cel:"name"`
	} `json:"feature,omitzero" cel:"feature"`
}

// Cloud is OCSF cloud.
type Cloud struct {
	Provider string  `json:"provider,omitempty" cel:"provider"`
	Region   string  `json:"region,omitempty" cel:"region"`
	Account  Account `json:"account,omitzero" cel:"account"`
	Zone     string  `json:"zone,omitempty" cel:"zone"`
}

// Account is OCSF account.
type Account struct {
	UID  string `json:"uid,omitempty" cel:"uid"`
	Name string `json:"name,omitempty" cel:"name"`
	Type string `json:"type,omitempty" cel:"type"`
}

// Actor is OCSF actor. Process is the process that performed the activity
// (the host profile's actor.process).
type Actor struct {
	User      User    `json:"user,omitzero" cel:"user"`
	Session   Session `json:"session,omitzero" cel:"session"`
	InvokedBy string  `json:"invoked_by,omitempty" cel:"invoked_by"`
	Process   Process `json:"process,omitzero" cel:"process"`
	IDP       struct {
		Name string `json:"name,omitempty" cel:"name"`
	} `json:"idp,omitzero" cel:"idp"`
}

// User is OCSF user. For AWS principals UID is the principal id, Name the
// user or role name, Type the identity type (IAMUser, AssumedRole, Root, ...)
// and CredentialUID the access key id.
type User struct {
	UID           string  `json:"uid,omitempty" cel:"uid"`
	Name          string  `json:"name,omitempty" cel:"name"`
	Type          string  `json:"type,omitempty" cel:"type"`
	TypeID        int     `json:"type_id,omitempty" cel:"type_id"`
	UIDAlt        string  `json:"uid_alt,omitempty" cel:"uid_alt"`
	CredentialUID string  `json:"credential_uid,omitempty" cel:"credential_uid"`
	Domain        string  `json:"domain,omitempty" cel:"domain"`
	Account       Account `json:"account,omitzero" cel:"account"`
	Groups        []Group `json:"groups,omitempty" cel:"groups"`
}

// Group is OCSF group.
type Group struct {
	Name string `json:"name,omitempty" cel:"name"`
	UID  string `json:"uid,omitempty" cel:"uid"`
}

// Session is OCSF session. For an assumed role, UID is the role session ARN
// and Issuer the role ARN.
type Session struct {
	UID           string `json:"uid,omitempty" cel:"uid"`
	Name          string `json:"name,omitempty" cel:"name"`
	Issuer        string `json:"issuer,omitempty" cel:"issuer"`
	CreatedTime   int64  `json:"created_time,omitempty" cel:"created_time"`
	IsMFA         bool   `json:"is_mfa,omitempty" cel:"is_mfa"`
	CredentialUID string `json:"credential_uid,omitempty" cel:"credential_uid"`
}

// NetworkEndpoint is OCSF network_endpoint.
type NetworkEndpoint struct {
	IP           string `json:"ip,omitempty" cel:"ip"`
	Port         int    `json:"port,omitempty" cel:"port"`
	Hostname     string `json:"hostname,omitempty" cel:"hostname"`
	Domain       string `json:"domain,omitempty" cel:"domain"`
	UID          string `json:"uid,omitempty" cel:"uid"`
	InstanceUID  string `json:"instance_uid,omitempty" cel:"instance_uid"`
	InterfaceUID string `json:"interface_uid,omitempty" cel:"interface_uid"`
	VPCUID       string `json:"vpc_uid,omitempty" cel:"vpc_uid"`
	SubnetUID    string `json:"subnet_uid,omitempty" cel:"subnet_uid"`
	SvcName      string `json:"svc_name,omitempty" cel:"svc_name"`
	Type         string `json:"type,omitempty" cel:"type"`
	// IntermediateIPs lists addresses the traffic passed through (the
	// pkt-srcaddr/pkt-dstaddr of a flow log when they differ).
	IntermediateIPs []string `json:"intermediate_ips,omitempty" cel:"intermediate_ips"`
	Location        struct {
		Country string `json:"country,omitempty" cel:"country"`
		City    string `json:"city,omitempty" cel:"city"`
	} `json:"location,omitzero" cel:"location"`
	AutonomousSystem struct {
		Number int    `json:"number,omitempty" cel:"number"`
		Name   string `json:"name,omitempty" cel:"name"`
	} `json:"autonomous_system,omitzero" cel:"autonomous_system"`
}

// HTTPRequest is OCSF http_request.
type HTTPRequest struct {
	UserAgent string `json:"user_agent,omitempty" cel:"user_agent"`
	URL       struct {
		Hostname  string `json:"hostname,omitempty" cel:"hostname"`
		Path      string `json:"path,omitempty" cel:"path"`
		URLString string `json:"url_string,omitempty" cel:"url_string"`
	} `json:"url,omitzero" cel:"url"`
	HTTPMethod string `json:"http_method,omitempty" cel:"http_method"`
}

// API is OCSF api. Request and response bodies stay raw JSON: they are
// free-form per operation and decoded only when a rule asks for them.
type API struct {
	Operation string      `json:"operation,omitempty" cel:"operation"`
	Service   APIService  `json:"service,omitzero" cel:"service"`
	Version   string      `json:"version,omitempty" cel:"version"`
	Request   APIRequest  `json:"request,omitzero" cel:"request"`
	Response  APIResponse `json:"response,omitzero" cel:"response"`
}

// APIService is OCSF api.service.
type APIService struct {
	Name string `json:"name,omitempty" cel:"name"`
}

// APIRequest is OCSF api.request.
type APIRequest struct {
	UID  string          `json:"uid,omitempty" cel:"uid"`
	Data json.RawMessage `json:"data,omitempty" cel:"-"`
}

// APIResponse is OCSF api.response.
type APIResponse struct {
	Error        string          `json:"error,omitempty" cel:"error"`
	ErrorMessage string          `json:"error_message,omitempty" cel:"error_message"`
	Data         json.RawMessage `json:"data,omitempty" cel:"-"`
}

// Resource is OCSF resource_details.
type Resource struct {
	UID    string `json:"uid,omitempty" cel:"uid"`
	Name   string `json:"name,omitempty" cel:"name"`
	Type   string `json:"type,omitempty" cel:"type"`
	Region string `json:"region,omitempty" cel:"region"`
	Owner  struct {
		Account Account `json:"account,omitzero" cel:"account"`
	} `json:"owner,omitzero" cel:"owner"`
}

// Service is OCSF service (the service an authentication was for).
type Service struct {
	Name string `json:"name,omitempty" cel:"name"`
	UID  string `json:"uid,omitempty" cel:"uid"`
}

// Device is OCSF device: the host an agent event was observed on.
type Device struct {
	UID         string `json:"uid,omitempty" cel:"uid"`
	Name        string `json:"name,omitempty" cel:"name"`
	Hostname    string `json:"hostname,omitempty" cel:"hostname"`
	IP          string `json:"ip,omitempty" cel:"ip"`
	InstanceUID string `json:"instance_uid,omitempty" cel:"instance_uid"`
	Type        string `json:"type,omitempty" cel:"type"`
	TypeID      int    `json:"type_id,omitempty" cel:"type_id"`
	Region      string `json:"region,omitempty" cel:"region"`
	OS          struct {
		Name string `json:"name,omitempty" cel:"name"`
		Type string `json:"type,omitempty" cel:"type"`
	} `json:"os,omitzero" cel:"os"`
	Container struct {
		UID   string `json:"uid,omitempty" cel:"uid"`
		Name  string `json:"name,omitempty" cel:"name"`
		Image struct {
			Name string `json:"name,omitempty" cel:"name"`
		} `json:"image,omitzero" cel:"image"`
	} `json:"container,omitzero" cel:"container"`
}

// Process is OCSF process. Parent is one level of lineage; Lineage keeps the
// full ancestry as command paths when the source provides it.
type Process struct {
	PID         int           `json:"pid,omitempty" cel:"pid"`
	UID         string        `json:"uid,omitempty" cel:"uid"`
	Name        string        `json:"name,omitempty" cel:"name"`
	CmdLine     string        `json:"cmd_line,omitempty" cel:"cmd_line"`
	File        File          `json:"file,omitzero" cel:"file"`
	User        ProcessUser   `json:"user,omitzero" cel:"user"`
	CWD         string        `json:"cwd,omitempty" cel:"cwd"`
	Parent      ParentProcess `json:"parent_process,omitzero" cel:"parent_process"`
	Lineage     []string      `json:"lineage,omitempty" cel:"lineage"`
	CreatedTime int64         `json:"created_time,omitempty" cel:"created_time"`
}

// ParentProcess is the parent of a Process (a flat copy, so the model has no
// recursive type).
type ParentProcess struct {
	PID     int         `json:"pid,omitempty" cel:"pid"`
	UID     string      `json:"uid,omitempty" cel:"uid"`
	Name    string      `json:"name,omitempty" cel:"name"`
	CmdLine string      `json:"cmd_line,omitempty" cel:"cmd_line"`
	File    File        `json:"file,omitzero" cel:"file"`
	User    ProcessUser `json:"user,omitzero" cel:"user"`
}

// ProcessUser is the user a process runs as.
type ProcessUser struct {
	Name string `json:"name,omitempty" cel:"name"`
	UID  string `json:"uid,omitempty" cel:"uid"`
}

// File is OCSF file.
type File struct {
	Name         string        `json:"name,omitempty" cel:"name"`
	Path         string        `json:"path,omitempty" cel:"path"`
	ParentFolder string        `json:"parent_folder,omitempty" cel:"parent_folder"`
	Type         string        `json:"type,omitempty" cel:"type"`
	TypeID       int           `json:"type_id,omitempty" cel:"type_id"`
	Size         int64         `json:"size,omitempty" cel:"size"`
	Hashes       []Fingerprint `json:"hashes,omitempty" cel:"hashes"`
}

// Fingerprint is OCSF fingerprint.
type Fingerprint struct {
	Algorithm   string `json:"algorithm,omitempty" cel:"algorithm"`
	AlgorithmID int    `json:"algorithm_id,omitempty" cel:"algorithm_id"`
	Value       string `json:"value" cel:"value"`
}

// ConnectionInfo is OCSF connection_info.
type ConnectionInfo struct {
	ProtocolNum   int    `json:"protocol_num,omitempty" cel:"protocol_num"`
	ProtocolName  string `json:"protocol_name,omitempty" cel:"protocol_name"`
	ProtocolVer   string `json:"protocol_ver,omitempty" cel:"protocol_ver"`
	ProtocolVerID int    `json:"protocol_ver_id,omitempty" cel:"protocol_ver_id"`
	Direction     string `json:"direction,omitempty" cel:"direction"`
	DirectionID   int    `json:"direction_id,omitempty" cel:"direction_id"`
	TCPFlags      int    `json:"tcp_flags,omitempty" cel:"tcp_flags"`
	Boundary      string `json:"boundary,omitempty" cel:"boundary"`
	BoundaryID    int    `json:"boundary_id,omitempty" cel:"boundary_id"`
}

// Traffic is OCSF network_traffic.
type Traffic struct {
	Bytes   int64 `json:"bytes,omitempty" cel:"bytes"`
	Packets int64 `json:"packets,omitempty" cel:"packets"`
}

// DNSQuery is OCSF dns_query.
type DNSQuery struct {
	Hostname string `json:"hostname,omitempty" cel:"hostname"`
	Type     string `json:"type,omitempty" cel:"type"`
	Class    string `json:"class,omitempty" cel:"class"`
}

// DNSAnswer is OCSF dns_answer.
type DNSAnswer struct {
	Rdata string `json:"rdata,omitempty" cel:"rdata"`
	Type  string `json:"type,omitempty" cel:"type"`
}

// FindingInfo is OCSF finding_info.
type FindingInfo struct {
	UID          string   `json:"uid,omitempty" cel:"uid"`
	Title        string   `json:"title,omitempty" cel:"title"`
	Desc         string   `json:"desc,omitempty" cel:"desc"`
	Types        []string `json:"types,omitempty" cel:"types"`
	CreatedTime  int64    `json:"created_time,omitempty" cel:"created_time"`
	FirstSeen    int64    `json:"first_seen_time,omitempty" cel:"first_seen_time"`
	LastSeen     int64    `json:"last_seen_time,omitempty" cel:"last_seen_time"`
	ModifiedTime int64    `json:"modified_time,omitempty" cel:"modified_time"`
	ProductUID   string   `json:"product_uid,omitempty" cel:"product_uid"`
	Attacks      []Attack `json:"attacks,omitempty" cel:"attacks"`
	SrcURL       string   `json:"src_url,omitempty" cel:"src_url"`
	// RelatedEvents lists the signals of an attack-sequence finding.
	RelatedEvents []RelatedEvent `json:"related_events,omitempty" cel:"related_events"`
}

// Attack is OCSF attack (MITRE ATT&CK).
type Attack struct {
	Tactic    AttackRef `json:"tactic,omitzero" cel:"tactic"`
	Technique AttackRef `json:"technique,omitzero" cel:"technique"`
}

// AttackRef names an ATT&CK tactic or technique.
type AttackRef struct {
	UID  string `json:"uid,omitempty" cel:"uid"`
	Name string `json:"name,omitempty" cel:"name"`
}

// RelatedEvent is OCSF related_event.
type RelatedEvent struct {
	UID        string `json:"uid,omitempty" cel:"uid"`
	Type       string `json:"type,omitempty" cel:"type"`
	ProductUID string `json:"product_uid,omitempty" cel:"product_uid"`
	Desc       string `json:"desc,omitempty" cel:"desc"`
	FirstSeen  int64  `json:"first_seen_time,omitempty" cel:"first_seen_time"`
	LastSeen   int64  `json:"last_seen_time,omitempty" cel:"last_seen_time"`
}

// Vulnerability is OCSF vulnerability (the details of a Vulnerability
// Finding).
type Vulnerability struct {
	CVE                CVE    `json:"cve,omitzero" cel:"cve"`
	Title              string `json:"title,omitempty" cel:"title"`
	Severity           string `json:"severity,omitempty" cel:"severity"`
	IsExploitAvailable bool   `json:"is_exploit_available,omitempty" cel:"is_exploit_available"`
	IsFixAvailable     bool   `json:"is_fix_available,omitempty" cel:"is_fix_available"`
	// Packages names the affected packages as name@version.
	Packages   []string `json:"affected_packages,omitempty" cel:"affected_packages"`
	References []string `json:"references,omitempty" cel:"references"`
}

// CVE is OCSF cve.
type CVE struct {
	UID  string `json:"uid,omitempty" cel:"uid"`
	CVSS []CVSS `json:"cvss,omitempty" cel:"cvss"`
}

// CVSS is OCSF cvss.
type CVSS struct {
	BaseScore    float64 `json:"base_score,omitempty" cel:"base_score"`
	VectorString string  `json:"vector_string,omitempty" cel:"vector_string"`
	Version      string  `json:"version,omitempty" cel:"version"`
}
