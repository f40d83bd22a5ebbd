// Package entity finds the identifiers that tie events together when they
// hide inside other values: the EC2 instance id that names an instance
// profile's role session, the CodeDeploy deployment id inside a path under
// the CodeDeploy agent's deployment root, the parts of AWS ARNs.
package entity

import (
	"net/netip"
	"strings"
)

// IsInstanceID reports whether s is an EC2 instance id: "i-" and 8 or 17
// hexadecimal digits (either case: anonymised samples mix them).
func IsInstanceID(s string) bool {
	if len(s) != 10 && len(s) != 19 || s[0] != 'i' || s[1] != '-' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// IsDeploymentID reports whether s is a CodeDeploy deployment id: "d-" and 9
// upper-case letters or digits.
func IsDeploymentID(s string) bool {
	if len(s) != 11 || s[0] != 'd' || s[1] != '-' {
		return false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// DeploymentRoot is where the CodeDeploy agent unpacks revisions on Linux:
// <root>/<deployment-group-id>/<deployment-id>/deployment-archive/...
const DeploymentRoot = "/opt/codedeploy-agent/deployment-root/"

// Deployments calls fn for every CodeDeploy deployment id found after the
// agent's deployment root in s (a path, a command line, a working
// directory). It does not allocate: the ids are substrings of s.
func Deployments(s string, fn func(id string)) {
	for {
		i := strings.Index(s, DeploymentRoot)
		if i < 0 {
			return
		}
		s = s[i+len(DeploymentRoot):]
		// Skip the deployment group id.
		j := strings.IndexByte(s, '/')
		if j < 0 {
			return
		}
		rest := s[j+1:]
		end := 0
		for end < len(rest) && rest[end] != '/' && rest[end] != ' ' && rest[end] != '"' && rest[end] != '\'' {
			end++
		}
		if id := rest[:end]; IsDeploymentID(id) {
			fn(id)
		}
		s = rest
	}
}

// DeploymentIn returns the first deployment id in s, or "".
func DeploymentIn(s string) string {
	var id string
	Deployments(s, func(d string) {
		if id == "" {
			id = d
		}
	})
	return id
}

// IsIP reports whether s is an IP address. Dotted quads with leading zeros
// ("06.237.252.245", as anonymised CloudTrail samples write them) count as
// IPv4 addresses.
func IsIP(s string) bool {
	if s == "" {
		return false
	}
	if isDottedQuad(s) {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isDottedQuad(s string) bool {
	parts, n, v := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if n == 0 || n > 3 || v > 255 {
				return false
			}
			parts++
			n, v = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n++
		v = v*10 + int(c-'0')
	}
	return parts == 4
}

// ARN is an AWS ARN split into its parts, as substrings of the original.
type ARN struct {
	Partition, Service, Region, Account, Resource string
}

// ParseARN splits arn:partition:service:region:account:resource.
func ParseARN(s string) (ARN, bool) {
	if !strings.HasPrefix(s, "arn:") {
		return ARN{}, false
	}
	var a ARN
	rest := s[4:]
	fields := [4]*string{&a.Partition, &a.Service, &a.Region, &a.Account}
	for _, f := range fields {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			return ARN{}, false
		}
		*f, rest = rest[:i], rest[i+1:]
	}
	a.Resource = rest
	return a, true
}

// SessionName returns the role session name of an assumed-role ARN
// (arn:aws:sts::<account>:assumed-role/<role>/<session>) and the role name.
func SessionName(arn string) (role, session string, ok bool) {
	i := strings.Index(arn, ":assumed-role/")
	if i < 0 {
		return "", "", false
	}
	rest := arn[i+len(":assumed-role/"):]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		return rest, "", false
	}
	return rest[:j], rest[j+1:], true
}

// RoleARNFromSession returns the IAM role ARN of an assumed-role session
// ARN (arn:aws:iam::<account>:role/<role>); it allocates.
func RoleARNFromSession(arn string) string {
	a, ok := ParseARN(arn)
	role, _, ok2 := SessionName(arn)
	if !ok || !ok2 {
		return ""
	}
	return "arn:" + a.Partition + ":iam::" + a.Account + ":role/" + role
}
