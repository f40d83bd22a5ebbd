package exposure

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Kind is the shape of a predicted path.
type Kind string

// The path kinds, longest first.
const (
	// KindInternetToProduction is the seed's whole path: an internet-facing
	// instance whose credentials can be taken (a serious vulnerability or
	// IMDSv1) runs as a role that can write the source bundle of a pipeline
	// that deploys to production without an approval, from a bucket
	// without versioning or Object Lock.
	KindInternetToProduction Kind = "internet_instance_to_production"
	// KindRoleToProduction is the shorter variant: any role that can write
	// the source bundle of such a pipeline.
	KindRoleToProduction Kind = "role_to_production"
)

// EntityInternet names the internet as the start of a path.
const EntityInternet ocsf.Entity = "internet"

// Node is one asset on a path, named as the correlator names entities
// (kind and value), so an incident's entities can be matched to it.
type Node struct {
	Entity  ocsf.Entity `json:"entity"`
	Value   string      `json:"value"`
	Account string      `json:"account,omitempty"`
}

// Hop is one step of a path with the evidence that it is open.
type Hop struct {
	From     Node   `json:"from"`
	To       Node   `json:"to"`
	Relation string `json:"relation"` // exposes, runs_as, can_write, source_of, deploys_to
	// Evidence says why the hop is open, in words (a security group rule,
	// metadata options, a vulnerability, a pipeline stage).
	Evidence []string `json:"evidence"`
	// Statements are the policy statements that allow a can_write hop.
	Statements []StatementRef `json:"statements,omitempty"`
}

// Countermeasure is one of the seed's countermeasures, on one asset of a
// path, that alone would break the path or shorten it to its variant.
type Countermeasure struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Target Node   `json:"target"`
	Effect string `json:"effect"` // breaks | shortens
}

// The countermeasures the path finder tries.
const (
	CMIMDSv2Required      = "imdsv2_required"
	CMPatchVulnerability  = "patch_vulnerability"
	CMRemoveExposure      = "remove_internet_exposure"
	CMLeastPrivilegeRole  = "least_privilege_role"
	CMBucketVersioning    = "s3_versioning"
	CMBucketObjectLock    = "s3_object_lock"
	CMManualApprovalStage = "manual_approval_stage"
)

var cmTitles = map[string]string{
	CMIMDSv2Required:      "Require IMDSv2 (metadata httpTokens required) on the instance",
	CMPatchVulnerability:  "Patch the exploitable vulnerabilities of the instance",
	CMRemoveExposure:      "Take the instance off the internet (no public address or no open ingress)",
	CMLeastPrivilegeRole:  "Least privilege: the role must not write to the deployment source",
	CMBucketVersioning:    "Enable S3 versioning on the deployment source bucket",
	CMBucketObjectLock:    "Enable S3 Object Lock on the deployment source bucket",
	CMManualApprovalStage: "Add a manual approval stage before the production deploy",
}

// Path is one predicted attack path.
type Path struct {
	ID      string `json:"id"`
	Kind    Kind   `json:"kind"`
	Account string `json:"account"`
	// Risk is 0–100; RiskFactors say where it comes from.
	Risk            int              `json:"risk"`
	RiskFactors     []string         `json:"risk_factors"`
	Hops            []Hop            `json:"hops"`
	Countermeasures []Countermeasure `json:"countermeasures"`
	// NotEvaluated lists what the finder could not evaluate on this path
	// (conditions, attached policies whose documents are unknown, a bucket
	// missing from the inventory): the path may be closed by them.
	NotEvaluated []string `json:"not_evaluated,omitempty"`
}

// Nodes returns the path's assets in order.
func (p *Path) Nodes() []Node {
	var out []Node
	for i, h := range p.Hops {
		if i == 0 {
			out = append(out, h.From)
		}
		out = append(out, h.To)
	}
	return out
}

// Find returns the predicted attack paths of the inventory, by risk (then
// id), each with the countermeasures that alone would break or shorten it.
// The result depends only on the inventory, not on the order of its items.
func Find(inv *Inventory) []Path {
	paths := find(inv)
	cache := map[string]map[string]bool{} // countermeasure key → ids of the paths left
	for i := range paths {
		p := &paths[i]
		for _, c := range candidates(inv, p) {
			key := c.ID + "\x00" + c.Target.Account + "\x00" + c.Target.Value
			left, ok := cache[key]
			if !ok {
				left = map[string]bool{}
				for _, q := range find(apply(inv, c, p)) {
					left[q.ID] = true
				}
				cache[key] = left
			}
			if left[p.ID] {
				continue
			}
			c.Effect = "breaks"
			if p.Kind == KindInternetToProduction && left[variantID(p)] {
				c.Effect = "shortens"
			}
			p.Countermeasures = append(p.Countermeasures, c)
		}
	}
	return paths
}

// deployTarget is a pipeline source that reaches production unguarded.
type deployTarget struct {
	pipeline *awsconfig.Item
	source   awsconfig.Action
	srcStage string
	deploys  []awsconfig.Action
	stages   []string
	groups   []*awsconfig.Item
	bucket   *awsconfig.Item // nil when not in the inventory
}

func find(inv *Inventory) []Path {
	var paths []Path
	for _, t := range deployTargets(inv) {
		object := t.source.S3Bucket + "/" + t.source.S3ObjectKey
		objARN := "arn:aws:s3:::" + object
		acct := t.pipeline.Account
		tail := tailHops(t, object)
		var bucketPolicy []Policy
		var notEval []string
		if t.bucket == nil {
			notEval = append(notEval, "bucket "+t.source.S3Bucket+" is not in the inventory: its versioning, Object Lock and policy are unknown")
		} else if len(t.bucket.Bucket.Policy.Statements) > 0 {
			bucketPolicy = []Policy{{Name: "bucket policy of " + t.source.S3Bucket, Document: t.bucket.Bucket.Policy}}
		}
		for _, role := range sortedRoles(inv, acct) {
			ps, unknown := inv.policiesOf(role)
			d := Evaluate(ps, "s3:PutObject", objARN)
			if !d.Allowed || bucketDenies(bucketPolicy, role, objARN) {
				continue
			}
			ne := slices.Clone(notEval)
			for _, a := range d.Allows {
				if a.ConditionNotEvaluated {
					ne = append(ne, fmt.Sprintf("condition of %s statement %d not evaluated", a.Policy, a.Index))
				}
			}
			for _, u := range unknown {
				ne = append(ne, "attached policy "+u+" is not in the inventory (a Deny in it would close the path)")
			}
			if role.Role.PermissionsBoundary != "" {
				ne = append(ne, "permissions boundary "+role.Role.PermissionsBoundary+" not evaluated")
			}
			roleNode := Node{Entity: ocsf.EntityRole, Value: role.ARN, Account: acct}
			write := Hop{From: roleNode, To: Node{Entity: ocsf.EntityObject, Value: object, Account: acct}, Relation: "can_write",
				Evidence: []string{"s3:PutObject on " + objARN + " allowed"}, Statements: d.Allows}
			short := Path{Kind: KindRoleToProduction, Account: acct, Hops: append([]Hop{write}, tail...), NotEvaluated: ne}
			short.ID = pathID(&short)
			short.Risk, short.RiskFactors = 50, []string{"role can replace the production release bundle (+50)"}
			paths = append(paths, short)
			for _, in := range sortedInstances(inv, role) {
				head, factors, risk, ok := entryHops(inv, in, roleNode)
				if !ok {
					continue
				}
				full := Path{Kind: KindInternetToProduction, Account: acct, Hops: append(head, short.Hops...), NotEvaluated: ne}
				full.ID = pathID(&full)
				full.Risk, full.RiskFactors = min(100, 60+risk), append([]string{"internet-facing instance to production deploy (+60)"}, factors...)
				paths = append(paths, full)
			}
		}
	}
	slices.SortStableFunc(paths, func(a, b Path) int {
		if a.Risk != b.Risk {
			return b.Risk - a.Risk
		}
		return strings.Compare(a.ID, b.ID)
	})
	return slices.CompactFunc(paths, func(a, b Path) bool { return a.ID == b.ID })
}

// deployTargets lists, per pipeline S3 source, the production deploys it
// reaches without a manual approval, from a bucket without versioning or
// Object Lock.
func deployTargets(inv *Inventory) []deployTarget {
	var out []deployTarget
	for _, p := range inv.pipelines {
		stages := p.Pipeline.Stages
		for si, st := range stages {
			for _, a := range st.Actions {
				if a.Category != "Source" || a.Provider != "S3" || a.S3Bucket == "" || a.S3ObjectKey == "" {
					continue
				}
				b := inv.buckets[a.S3Bucket]
				if b != nil && (b.Bucket.VersioningEnabled() || b.Bucket.ObjectLock) {
					continue
				}
				t := deployTarget{pipeline: p, source: a, srcStage: st.Name, bucket: b}
			stages:
				for _, later := range stages[si:] {
					for _, d := range later.Actions {
						if d.Category == "Approval" {
							break stages // everything after an approval is gated
						}
					}
					for _, d := range later.Actions {
						if d.Category != "Deploy" || d.Provider != "CodeDeploy" {
							continue
						}
						g := inv.deploymentGroup[p.Account+"/"+d.ApplicationName+"/"+d.DeploymentGroupName]
						if g == nil || !g.DeploymentGroup.Production(g.Tags) {
							continue
						}
						t.deploys, t.stages, t.groups = append(t.deploys, d), append(t.stages, later.Name), append(t.groups, g)
					}
				}
				if len(t.groups) > 0 {
					out = append(out, t)
				}
			}
		}
	}
	return out
}

func tailHops(t deployTarget, object string) []Hop {
	acct := t.pipeline.Account
	pipe := Node{Entity: ocsf.EntityPipeline, Value: t.pipeline.Pipeline.Name, Account: acct}
	src := Hop{From: Node{Entity: ocsf.EntityObject, Value: object, Account: acct}, To: pipe, Relation: "source_of",
		Evidence: []string{fmt.Sprintf("stage %q action %q reads s3://%s", t.srcStage, t.source.Name, object), "no manual approval before the deploy"}}
	if t.bucket == nil {
		src.Evidence = append(src.Evidence, "bucket not in the inventory")
	} else {
		src.Evidence = append(src.Evidence, fmt.Sprintf("bucket versioning %s, Object Lock off", firstOf(t.bucket.Bucket.Versioning, "never enabled")))
	}
	hops := []Hop{src}
	for i, g := range t.groups {
		dg := g.DeploymentGroup
		ev := []string{fmt.Sprintf("stage %q action %q deploys with CodeDeploy to %s/%s", t.stages[i], t.deploys[i].Name, dg.ApplicationName, dg.DeploymentGroupName)}
		for _, f := range dg.TagFilters {
			ev = append(ev, "targets instances tagged "+f.Key+"="+f.Value)
		}
		for _, a := range dg.AutoScalingGroups {
			ev = append(ev, "targets Auto Scaling group "+a)
		}
		hops = append(hops, Hop{From: pipe, To: Node{Entity: ocsf.EntityDeploymentGroup, Value: dg.DeploymentGroupName, Account: acct}, Relation: "deploys_to", Evidence: ev})
	}
	return hops
}

// entryHops returns the hops from the internet to the role through
// instance in, when the instance is an entry point.
func entryHops(inv *Inventory, in *awsconfig.Item, role Node) ([]Hop, []string, int, bool) {
	facing, why := inv.internetFacing(in)
	if !facing {
		return nil, nil, 0, false
	}
	vulns := inv.seriousVulns(in.ResourceID)
	imds := in.Instance.IMDSv1Allowed()
	if len(vulns) == 0 && !imds {
		return nil, nil, 0, false
	}
	inst := Node{Entity: ocsf.EntityInstance, Value: in.ResourceID, Account: in.Account}
	var ev []string
	risk := 0
	var factors []string
	for _, v := range vulns {
		ev = append(ev, fmt.Sprintf("%s (%s, CVSS %.1f) with a known exploit", v.CVE, ocsf.SeverityName(v.SeverityID), v.CVSS))
	}
	if len(vulns) > 0 {
		risk += 25
		factors = append(factors, "exploitable vulnerability (+25)")
	}
	if imds {
		ev = append(ev, "IMDSv1 allowed (metadata httpTokens "+firstOf(in.Instance.HTTPTokens, "not recorded: optional by default")+")")
		risk += 15
		factors = append(factors, "IMDSv1 allowed (+15)")
	}
	return []Hop{
		{From: Node{Entity: EntityInternet, Value: "0.0.0.0/0"}, To: inst, Relation: "exposes", Evidence: append([]string{"public address " + in.Instance.PublicIP}, why...)},
		{From: inst, To: role, Relation: "runs_as", Evidence: append([]string{"instance profile " + in.Instance.InstanceProfileARN}, ev...)},
	}, factors, risk, true
}

// bucketDenies reports whether the bucket policy explicitly denies the
// role the write, unconditionally. Principals are matched as "*", the
// role's ARN or its account; conditions are not evaluated (a conditional
// Deny does not close the path).
func bucketDenies(ps []Policy, role *awsconfig.Item, objARN string) bool {
	d := Evaluate(ps, "s3:PutObject", objARN)
	for _, r := range d.Denies {
		if r.ConditionNotEvaluated {
			continue
		}
		st := ps[0].Document.Statements[r.Index]
		if principalMatches(st.Principal, role) {
			return true
		}
	}
	return false
}

func principalMatches(raw json.RawMessage, role *awsconfig.Item) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return star == "*"
	}
	var p struct {
		AWS json.RawMessage `json:"AWS"`
	}
	if json.Unmarshal(raw, &p) != nil || len(p.AWS) == 0 {
		return false
	}
	var list []string
	if json.Unmarshal(p.AWS, &list) != nil {
		var one string
		if json.Unmarshal(p.AWS, &one) != nil {
			return false
		}
		list = []string{one}
	}
	for _, a := range list {
		if a == "*" || a == role.ARN || a == role.Account || a == "arn:aws:iam::"+role.Account+":root" {
			return true
		}
	}
	return false
}

func sortedRoles(inv *Inventory, account string) []*awsconfig.Item {
	var out []*awsconfig.Item
	for _, r := range inv.roles {
		if r.Account == account {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *awsconfig.Item) int { return strings.Compare(a.ARN, b.ARN) })
	return out
}

func sortedInstances(inv *Inventory, role *awsconfig.Item) []*awsconfig.Item {
	var out []*awsconfig.Item
	for _, in := range inv.instances {
		if r := inv.roleOf(in); r == role {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b *awsconfig.Item) int { return strings.Compare(a.ResourceID, b.ResourceID) })
	return out
}

func pathID(p *Path) string {
	h := sha256.New()
	h.Write([]byte(p.Kind))
	for _, n := range p.Nodes() {
		fmt.Fprintf(h, "\x00%s\x00%s\x00%s", n.Entity, n.Account, n.Value)
	}
	return "xp-" + hex.EncodeToString(h.Sum(nil)[:10])
}

// variantID is the id of the role_to_production path inside a whole path.
func variantID(p *Path) string {
	short := Path{Kind: KindRoleToProduction, Hops: p.Hops[2:]}
	return pathID(&short)
}

// candidates lists the countermeasures to try on a path.
func candidates(inv *Inventory, p *Path) []Countermeasure {
	var out []Countermeasure
	add := func(id string, n Node) { out = append(out, Countermeasure{ID: id, Title: cmTitles[id], Target: n}) }
	for _, h := range p.Hops {
		switch h.Relation {
		case "exposes":
			in := inv.instances[h.To.Account+"/"+h.To.Value]
			if in.Instance.IMDSv1Allowed() {
				add(CMIMDSv2Required, h.To)
			}
			if len(inv.seriousVulns(in.ResourceID)) > 0 {
				add(CMPatchVulnerability, h.To)
			}
			add(CMRemoveExposure, h.To)
		case "can_write":
			add(CMLeastPrivilegeRole, h.From)
			bucket := Node{Entity: ocsf.EntityBucket, Value: strings.SplitN(h.To.Value, "/", 2)[0], Account: h.To.Account}
			add(CMBucketVersioning, bucket)
			add(CMBucketObjectLock, bucket)
		case "source_of":
			add(CMManualApprovalStage, h.To)
		}
	}
	return out
}

// apply returns the inventory of the path's account with one
// countermeasure in place. Paths never leave their account (writers are
// roles of the pipeline's account), so the other accounts need no second
// search.
func apply(inv *Inventory, c Countermeasure, p *Path) *Inventory {
	var items []awsconfig.Item
	for _, it := range inv.items {
		if it.Account == p.Account {
			items = append(items, it)
		}
	}
	var vulns []Vulnerability
	for _, vs := range inv.vulns {
		vulns = append(vulns, vs...)
	}
	for i := range items {
		it := &items[i]
		if it.Account != c.Target.Account {
			continue
		}
		switch c.ID {
		case CMIMDSv2Required, CMRemoveExposure:
			if it.Instance != nil && it.ResourceID == c.Target.Value {
				in := *it.Instance
				if c.ID == CMIMDSv2Required {
					in.HTTPTokens = "required"
				} else {
					in.PublicIP = ""
				}
				it.Instance = &in
			}
		case CMLeastPrivilegeRole:
			if it.Role != nil && it.ARN == c.Target.Value {
				r := *it.Role
				var object string
				for _, h := range p.Hops {
					if h.Relation == "can_write" {
						object = h.To.Value
					}
				}
				bucket := strings.SplitN(object, "/", 2)[0]
				r.InlinePolicies = append(slices.Clone(r.InlinePolicies), awsconfig.NamedPolicy{Name: "least-privilege", Document: awsconfig.PolicyDocument{
					Statements: []awsconfig.Statement{{Effect: "Deny", Action: []string{"s3:PutObject"}, Resource: []string{"arn:aws:s3:::" + bucket + "/*"}}}}})
				it.Role = &r
			}
		case CMBucketVersioning, CMBucketObjectLock:
			if it.Bucket != nil && firstOf(it.ResourceName, it.ResourceID) == c.Target.Value {
				b := *it.Bucket
				if c.ID == CMBucketVersioning {
					b.Versioning = "Enabled"
				} else {
					b.ObjectLock = true
				}
				it.Bucket = &b
			}
		case CMManualApprovalStage:
			if it.Pipeline != nil && it.Pipeline.Name == c.Target.Value {
				pl := *it.Pipeline
				pl.Stages = nil
				for _, st := range it.Pipeline.Stages {
					if slices.ContainsFunc(st.Actions, func(a awsconfig.Action) bool { return a.Category == "Deploy" }) {
						pl.Stages = append(pl.Stages, awsconfig.Stage{Name: "Approve", Actions: []awsconfig.Action{{Name: "Approve", Category: "Approval", Provider: "Manual"}}})
					}
					pl.Stages = append(pl.Stages, st)
				}
				it.Pipeline = &pl
			}
		}
	}
	if c.ID == CMPatchVulnerability {
		vulns = slices.DeleteFunc(vulns, func(v Vulnerability) bool { return v.InstanceID == c.Target.Value })
	}
	return NewInventory(items, vulns)
}
