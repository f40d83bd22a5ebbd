package ocsf

import "slices"

// The top-level attributes each class defines, from the OCSF 1.x schema
// (ocsf-schema events/base_event.json and the class files under events/).
// Nested attributes are not listed: they belong to objects (process, actor,
// network_endpoint, ...) whose shape is the same in every class, and the
// model's types already hold exactly the OCSF names.

// baseAttributes are defined by every class: the base event
// (classification, occurrence, context) and the profiles the base event
// includes, which apply to every class: cloud (cloud, api), host (device,
// actor), security_control (action, disposition, attacks, ...), datetime
// and osint.
var baseAttributes = []string{
	"activity_id", "activity_name", "category_uid", "category_name", "class_uid", "class_name",
	"type_uid", "type_name", "time", "severity_id", "severity", "status_id", "status",
	"status_code", "status_detail", "message", "metadata", "observables", "start_time",
	"end_time", "count", "duration", "raw_data", "unmapped", "enrichments", "timezone_offset",
	// profile cloud
	"cloud", "api",
	// profile host
	"device", "actor",
	// profile security_control
	"action", "action_id", "disposition", "disposition_id", "attacks", "malware", "policy",
	"firewall_rule", "authorizations", "confidence", "confidence_id", "confidence_score",
	"risk_score", "risk_level", "risk_level_id", "risk_details", "is_alert",
}

// networkAttributes are defined by the Network Activity category (network.json).
var networkAttributes = []string{
	"src_endpoint", "dst_endpoint", "connection_info", "traffic", "proxy", "tls", "app_name",
	"observation_point", "observation_point_id",
}

// findingAttributes are defined by the Findings category (finding.json).
var findingAttributes = []string{
	"finding_info", "resources", "comment", "remediation", "vulnerabilities", "evidences",
	"impact", "impact_id", "impact_score", "anomaly_analyses",
}

// classAttributes are the attributes a class adds to baseAttributes.
var classAttributes = map[int][]string{
	ClassFileSystemActivity: {"file", "file_result", "file_diff", "access_mask", "component", "connection_uid", "create_mask"},
	// In Process Activity `process` is the process acted on (launched,
	// opened, terminated) and actor.process the one that acted (its parent
	// for a launch). No other class Musubi reads defines a top-level process:
	// their acting process is actor.process.
	ClassProcessActivity: {"process", "module", "exit_code", "injection_type", "injection_type_id",
		"launch_type", "launch_type_id", "actual_permissions", "requested_permissions"},
	ClassDetectionFinding: findingAttributes,
	ClassIncidentFinding:  append(slices.Clip(findingAttributes), "finding_info_list", "assignee", "verdict", "verdict_id", "priority", "priority_id"),
	ClassAccountChange:    {"user", "user_result", "policy", "http_request", "src_endpoint"},
	ClassAuthentication: {"user", "service", "session", "src_endpoint", "dst_endpoint", "http_request",
		"is_mfa", "is_remote", "logon_type", "logon_type_id", "auth_protocol", "auth_protocol_id",
		"certificate", "logon_process", "is_cleartext", "is_new_logon"},
	ClassNetworkActivity:      networkAttributes,
	ClassDNSActivity:          append(slices.Clip(networkAttributes), "query", "answers", "rcode", "rcode_id", "query_time", "response_time"),
	ClassAPIActivity:          {"api", "resources", "src_endpoint", "dst_endpoint", "http_request", "http_response"},
	ClassInventoryInfo:        {"device", "actor"},
	ClassVulnerabilityFinding: findingAttributes,
}

// extensionAttributes are Musubi's documented extensions: attributes a
// class does not define that Musubi's sources fill, so rules can read them.
//   - Detection Finding: GuardDuty and Falco findings describe one piece of
//     evidence; its endpoints, connection, file, DNS query and HTTP request
//     are flattened to the top level (OCSF 1.1 nests them in evidences[]).
//   - Authentication and Account Change from CloudTrail keep the API call
//     they came from: its resources.
//   - Inventory Info from AWS Config names the configuration item's asset
//     in resources (OCSF 1.1 defines only device); an EC2 instance is also
//     the device. Inspector's Vulnerability Finding puts the scanned
//     instance in device, as the host profile allows.
var extensionAttributes = map[int][]string{
	ClassInventoryInfo:    {"resources"},
	ClassDetectionFinding: {"src_endpoint", "dst_endpoint", "connection_info", "file", "query", "http_request"},
	ClassAccountChange:    {"resources"},
	ClassAuthentication:   {"resources"},
}

// Defines reports whether class classUID defines the top-level attribute
// attr, in the OCSF schema or as a documented Musubi extension. A class
// Musubi does not use defines nothing.
func Defines(classUID int, attr string) bool {
	if _, ok := Classes[classUID]; !ok {
		return false
	}
	return slices.Contains(baseAttributes, attr) ||
		slices.Contains(classAttributes[classUID], attr) ||
		slices.Contains(extensionAttributes[classUID], attr)
}

// DefiningClasses returns, in ascending order, the classes Musubi uses that
// define the top-level attribute attr.
func DefiningClasses(attr string) []int {
	var out []int
	for uid := range Classes {
		if Defines(uid, attr) {
			out = append(out, uid)
		}
	}
	slices.Sort(out)
	return out
}
