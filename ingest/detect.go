package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"

	"github.com/musubi-xdr/musubi/ingest/vpcflow"
)

// detectWindow is how much of a message Detect looks at.
const detectWindow = 64 << 10

// Detect guesses the source of a message from its first 64 KiB (after gzip
// and base64 decompression): the keys a source always writes
// (eventVersion/eventSource for CloudTrail, schemaVersion and a GuardDuty
// ARN for findings, class_uid for OCSF agent events, output_fields or
// rule/priority/output for Falco, srcaddr or a header or v2 line for flow
// logs) and the detail-type of EventBridge envelopes. It returns SourceAuto
// when nothing matches. A CloudWatch Logs payload is detected by its first
// log event.
func Detect(data []byte) Source {
	return detect(data, 0)
}

func detect(data []byte, depth int) Source {
	if depth > maxUnwrap {
		return SourceAuto
	}
	if isGzip(data) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return SourceAuto
		}
		head, _ := io.ReadAll(io.LimitReader(zr, detectWindow))
		return detect(head, depth+1)
	}
	if bytes.HasPrefix(data, []byte("H4sI")) {
		n := min(len(data), detectWindow) &^ 3
		head := make([]byte, base64.StdEncoding.DecodedLen(n))
		k, _ := base64.StdEncoding.Decode(head, data[:n])
		return detect(head[:k], depth+1)
	}
	if len(data) > detectWindow {
		data = data[:detectWindow]
	}
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return SourceAuto
	}
	if t[0] != '{' && t[0] != '[' {
		if vpcflow.LooksLikeFlow(t) {
			return SourceVPCFlow
		}
		return SourceAuto
	}
	switch {
	case hasKey(t, "detail-type"):
		switch {
		case bytes.Contains(t, []byte("Malware Protection Object Scan Result")):
			return SourceMalwareScan
		case bytes.Contains(t, []byte("Inspector2 Finding")):
			return SourceInspector
		case bytes.Contains(t, []byte("Configuration Item Change Notification")):
			return SourceAWSConfig
		}
		if bytes.Contains(t, []byte("GuardDuty Finding")) || bytes.Contains(t, []byte(`"aws.guardduty"`)) {
			return SourceGuardDuty
		}
		if bytes.Contains(t, []byte("via CloudTrail")) {
			return SourceCloudTrail
		}
	case hasKey(t, "configurationItems"),
		hasKey(t, "configurationItemCaptureTime") && hasKey(t, "resourceType"):
		return SourceAWSConfig
	case hasKey(t, "Records") && hasKey(t, "eventSource"),
		hasKey(t, "eventVersion") && hasKey(t, "eventSource"),
		hasKey(t, "eventSource") && hasKey(t, "eventName") && hasKey(t, "userIdentity"):
		return SourceCloudTrail
	case hasKey(t, "Findings"),
		hasKey(t, "schemaVersion") && bytes.Contains(t, []byte("arn:aws:guardduty:")),
		hasKey(t, "schemaVersion") && hasKey(t, "resource") && hasKey(t, "service") && hasKey(t, "severity"):
		return SourceGuardDuty
	case hasKey(t, "class_uid"):
		return SourceAgent
	case hasKey(t, "output_fields"), hasKey(t, "rule") && hasKey(t, "priority") && hasKey(t, "output"):
		return SourceFalco
	case hasKey(t, "srcaddr") || hasKey(t, "interface-id") || hasKey(t, "interface_id") || hasKey(t, "log-status") || hasKey(t, "log_status"):
		return SourceVPCFlow
	case hasKey(t, "logEvents"):
		return detectLogEvents(t, depth)
	case hasKey(t, "awslogs"):
		if i := bytes.Index(t, []byte("H4sI")); i >= 0 {
			j := bytes.IndexByte(t[i:], '"')
			if j < 0 {
				j = len(t) - i
			}
			return detect(t[i:i+j], depth+1)
		}
	}
	return SourceAuto
}

// detectLogEvents detects the source of a CloudWatch Logs payload by its
// first message.
func detectLogEvents(t []byte, depth int) Source {
	i := bytes.Index(t, []byte(`"message"`))
	if i < 0 {
		return SourceAuto
	}
	rest := bytes.TrimLeft(t[i+len(`"message"`):], " \t\r\n:")
	if len(rest) == 0 || rest[0] != '"' {
		return SourceAuto
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == '{' {
		// An escaped JSON record: its keys appear as \"key\".
		un := bytes.ReplaceAll(rest, []byte(`\"`), []byte(`"`))
		return detect(un, depth+1)
	}
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		rest = rest[:j]
	}
	if vpcflow.LooksLikeFlow(rest) {
		return SourceVPCFlow
	}
	return SourceAuto
}

// hasKey reports whether data holds "key" followed by a colon: the key of a
// JSON member (a string value with the same text has no colon after it).
func hasKey(data []byte, key string) bool {
	for off := 0; off < len(data); {
		i := bytes.Index(data[off:], []byte(key))
		if i < 0 {
			return false
		}
		i += off
		off = i + len(key)
		if i == 0 || data[i-1] != '"' || off >= len(data) || data[off] != '"' {
			continue
		}
		j := off + 1
		for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
			j++
		}
		if j < len(data) && data[j] == ':' {
			return true
		}
	}
	return false
}
