package exposure

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Vulnerability is what the path finder and the risk score need of an
// Inspector finding on an instance.
type Vulnerability struct {
	InstanceID  string  `json:"instance_id"`
	CVE         string  `json:"cve,omitempty"`
	Title       string  `json:"title,omitempty"`
	SeverityID  int     `json:"severity_id"`
	CVSS        float64 `json:"cvss,omitempty"`
	Exploitable bool    `json:"exploitable"`
	FindingUID  string  `json:"finding_uid,omitempty"`
}

// VulnerabilityResourceType is the resource type under which the asset
// inventory (storage's asset_inventory) keeps Inspector findings on
// instances, one resource per finding ARN, the item being the
// Vulnerability as JSON and a closed finding a deletion: the inventory "as
// of T" then holds the findings open at T. AWS Config records no such
// type, so it cannot collide with a configuration item.
const VulnerabilityResourceType = "AWS::Inspector2::Finding"

// Serious reports whether the vulnerability makes its instance an entry
// point: high or critical with a known exploit.
func (v Vulnerability) Serious() bool { return v.Exploitable && v.SeverityID >= ocsf.SeverityHigh }

// VulnerabilityOf reads an Inspector Vulnerability Finding event (as
// ingest/inspector produces it) on an EC2 instance. Closed findings and
// findings on other resources give false.
func VulnerabilityOf(ev *ocsf.Event) (Vulnerability, bool) {
	if ev.ClassUID != ocsf.ClassVulnerabilityFinding || ev.ActivityID == 3 || ev.Device.InstanceUID == "" || len(ev.Vulnerabilities) == 0 {
		return Vulnerability{}, false
	}
	v := ev.Vulnerabilities[0]
	out := Vulnerability{InstanceID: ev.Device.InstanceUID, CVE: v.CVE.UID, Title: ev.FindingInfo.Title, SeverityID: ev.SeverityID,
		Exploitable: v.IsExploitAvailable, FindingUID: ev.FindingInfo.UID}
	for _, c := range v.CVE.CVSS {
		out.CVSS = max(out.CVSS, c.BaseScore)
	}
	return out, true
}

// Inventory is a snapshot of assets (the configuration items current at
// one time, deletions left out) and the vulnerabilities known on its
// instances, indexed for the path finder and the risk score. Build it with
// NewInventory; it is read-only afterwards and safe for concurrent reads.
type Inventory struct {
	items           []awsconfig.Item
	vulns           map[string][]Vulnerability // by instance id
	instances       map[string]*awsconfig.Item // by account/instance id
	ips             map[string]string          // account/address → instance id (private addresses repeat across accounts)
	roles           map[string]*awsconfig.Item // by role ARN
	profileRole     map[string]string          // instance profile ARN → role ARN
	policies        map[string]*awsconfig.Item // customer managed, by ARN
	buckets         map[string]*awsconfig.Item // by bucket name
	securityGroups  map[string]*awsconfig.Item // by account/group id
	pipelines       []*awsconfig.Item
	deploymentGroup map[string]*awsconfig.Item // application/group → item
}

// NewInventory indexes items (the latest item of each resource; a deleted
// resource's item is skipped) and vulnerabilities.
func NewInventory(items []awsconfig.Item, vulns []Vulnerability) *Inventory {
	inv := &Inventory{
		vulns: map[string][]Vulnerability{}, instances: map[string]*awsconfig.Item{}, ips: map[string]string{},
		roles: map[string]*awsconfig.Item{}, profileRole: map[string]string{}, policies: map[string]*awsconfig.Item{},
		buckets: map[string]*awsconfig.Item{}, securityGroups: map[string]*awsconfig.Item{}, deploymentGroup: map[string]*awsconfig.Item{},
	}
	for _, it := range items {
		if !it.Deleted() {
			inv.items = append(inv.items, it)
		}
	}
	// Stable order whatever the input order: results must not depend on it.
	slices.SortFunc(inv.items, func(a, b awsconfig.Item) int {
		return strings.Compare(a.Account+a.ResourceType+a.ResourceID, b.Account+b.ResourceType+b.ResourceID)
	})
	for i := range inv.items {
		it := &inv.items[i]
		switch {
		case it.Instance != nil:
			inv.instances[it.Account+"/"+it.ResourceID] = it
			for _, ip := range []string{it.Instance.PublicIP, it.Instance.PrivateIP} {
				if ip != "" {
					inv.ips[it.Account+"/"+ip] = it.ResourceID
				}
			}
		case it.Role != nil:
			inv.roles[it.ARN] = it
			for _, p := range it.Role.InstanceProfiles {
				inv.profileRole[p] = it.ARN
			}
		case it.Policy != nil:
			inv.policies[it.ARN] = it
		case it.Bucket != nil:
			inv.buckets[firstOf(it.ResourceName, it.ResourceID)] = it
		case it.SecurityGroup != nil:
			inv.securityGroups[it.Account+"/"+it.ResourceID] = it
		case it.Pipeline != nil:
			inv.pipelines = append(inv.pipelines, it)
		case it.DeploymentGroup != nil:
			inv.deploymentGroup[it.Account+"/"+it.DeploymentGroup.ApplicationName+"/"+it.DeploymentGroup.DeploymentGroupName] = it
		}
	}
	for _, v := range vulns {
		inv.vulns[v.InstanceID] = append(inv.vulns[v.InstanceID], v)
	}
	return inv
}

// DecodeItems decodes stored items (storage.InventoryRow.Item, the JSON
// of awsconfig.Item).
func DecodeItems(raw []json.RawMessage) ([]awsconfig.Item, error) {
	out := make([]awsconfig.Item, 0, len(raw))
	for i, r := range raw {
		var it awsconfig.Item
		if err := json.Unmarshal(r, &it); err != nil {
			return nil, fmt.Errorf("exposure: stored item %d: %w", i, err)
		}
		out = append(out, it)
	}
	return out, nil
}

// Items returns the inventory's items.
func (inv *Inventory) Items() []awsconfig.Item { return inv.items }

// roleOf returns the role of an instance, through its instance profile.
// When the role item does not list the profile, a profile named like a
// role of the same account is taken to hold that role (the console's
// convention) — an approximation.
func (inv *Inventory) roleOf(in *awsconfig.Item) *awsconfig.Item {
	p := in.Instance.InstanceProfileARN
	if p == "" {
		return nil
	}
	if arn, ok := inv.profileRole[p]; ok {
		return inv.roles[arn]
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		for _, r := range inv.roles {
			if r.Account == in.Account && r.Role.RoleName == p[i+1:] {
				return r
			}
		}
	}
	return nil
}

// policiesOf returns a role's policies: inline, customer managed (from
// their items) and the AWS managed policies Musubi knows. The ARNs of
// attached policies whose documents are unknown are returned apart.
func (inv *Inventory) policiesOf(role *awsconfig.Item) (ps []Policy, unknown []string) {
	for _, p := range role.Role.InlinePolicies {
		ps = append(ps, Policy{Name: role.Role.RoleName + "/" + p.Name, Document: p.Document})
	}
	for _, arn := range role.Role.AttachedPolicies {
		if it, ok := inv.policies[arn]; ok {
			ps = append(ps, Policy{Name: arn, Document: it.Policy.Document})
		} else if doc, ok := awsManaged[arn]; ok {
			ps = append(ps, Policy{Name: arn, Document: doc})
		} else {
			unknown = append(unknown, arn)
		}
	}
	return ps, unknown
}

// internetFacing reports whether an instance has a public address and a
// security group open to the internet, with the open rules as evidence.
func (inv *Inventory) internetFacing(in *awsconfig.Item) (bool, []string) {
	if in.Instance.PublicIP == "" {
		return false, nil
	}
	var ev []string
	for _, g := range in.Instance.SecurityGroups {
		sg, ok := inv.securityGroups[in.Account+"/"+g]
		if !ok {
			continue
		}
		for _, r := range sg.SecurityGroup.OpenIngress {
			ev = append(ev, fmt.Sprintf("%s allows %s %d-%d from %s", g, r.Protocol, r.FromPort, r.ToPort, r.CIDR))
		}
	}
	if len(ev) == 0 {
		// Groups not in the inventory: the public address alone is taken
		// as exposure (an approximation that errs toward reporting).
		for _, g := range in.Instance.SecurityGroups {
			if _, ok := inv.securityGroups[in.Account+"/"+g]; !ok {
				return true, []string{"public address " + in.Instance.PublicIP + "; security group " + g + " not in the inventory"}
			}
		}
		return false, nil
	}
	return true, ev
}

func (inv *Inventory) seriousVulns(instanceID string) []Vulnerability {
	var out []Vulnerability
	for _, v := range inv.vulns[instanceID] {
		if v.Serious() {
			out = append(out, v)
		}
	}
	return out
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
