package ingest

import (
	"fmt"
	"strings"
)

// Source names a kind of input. It is also the value of metadata.log_name of
// the events decoded from it.
type Source string

// The supported sources. SourceAuto asks Decode to detect the source.
const (
	SourceAuto       Source = "auto"
	SourceCloudTrail Source = "cloudtrail"
	SourceVPCFlow    Source = "vpcflow"
	SourceGuardDuty  Source = "guardduty"
	SourceAgent      Source = "agent"
	SourceFalco      Source = "falco"
	// SourceAWSConfig is AWS Config configuration items (asset inventory).
	SourceAWSConfig Source = "awsconfig"
	// SourceInspector is Amazon Inspector findings (EventBridge
	// "Inspector2 Finding").
	SourceInspector Source = "inspector"
	// SourceMalwareScan is GuardDuty Malware Protection for S3 scan results
	// (EventBridge "GuardDuty Malware Protection Object Scan Result").
	SourceMalwareScan Source = "malwarescan"
)

// Sources lists the concrete sources (every Source except SourceAuto).
var Sources = []Source{SourceCloudTrail, SourceVPCFlow, SourceGuardDuty, SourceAgent, SourceFalco, SourceAWSConfig, SourceInspector, SourceMalwareScan}

// ParseSource parses a source name as a user writes it on a command line or in
// a configuration file: case-insensitive, "" and "auto" meaning SourceAuto,
// and a few common aliases ("vpc-flow", "flowlogs", "ocsf").
func ParseSource(s string) (Source, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return SourceAuto, nil
	case "cloudtrail", "ct":
		return SourceCloudTrail, nil
	case "vpcflow", "vpc-flow", "vpc_flow", "flowlogs", "flow":
		return SourceVPCFlow, nil
	case "guardduty", "gd":
		return SourceGuardDuty, nil
	case "agent", "ocsf":
		return SourceAgent, nil
	case "falco":
		return SourceFalco, nil
	case "awsconfig", "config", "aws-config":
		return SourceAWSConfig, nil
	case "inspector", "inspector2":
		return SourceInspector, nil
	case "malwarescan", "malware-scan", "s3malware":
		return SourceMalwareScan, nil
	}
	return "", fmt.Errorf("ingest: unknown source %q (want auto, cloudtrail, vpcflow, guardduty, agent, falco, awsconfig, inspector or malwarescan)", s)
}

// String returns the source name.
func (s Source) String() string { return string(s) }
