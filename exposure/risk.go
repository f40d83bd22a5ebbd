package exposure

import (
	"fmt"
	"slices"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ocsf"
)

// EntityRef is an entity of an incident as the correlator names it (kind
// and value), with its account when known.
type EntityRef struct {
	Kind    ocsf.Entity
	Value   string
	Account string
}

// Factor is one reason for an asset risk score.
type Factor struct {
	Name     string `json:"name"`
	Points   int    `json:"points"`
	Asset    string `json:"asset"` // kind:value of the asset it was found on
	Evidence string `json:"evidence"`
}

// Risk is an asset risk score, 0–100, and the factors that make it.
type Risk struct {
	Score   int      `json:"score"`
	Factors []Factor `json:"factors"`
}

// The factors of AssetRisk and their points. Each counts once per incident
// (on the first asset that shows it), so the score says what kinds of
// exposure the incident touches, not how many assets it has.
const (
	FactorInternetFacing  = "internet_facing"
	FactorIMDSv1          = "imdsv1_allowed"
	FactorExploitable     = "exploitable_vulnerability"
	FactorWritesDeploySrc = "role_writes_deployment_source"
	FactorProduction      = "production_target"
	FactorCrownJewel      = "crown_jewel"
	FactorOnPredictedPath = "on_predicted_path"
)

var factorPoints = map[string]int{
	FactorInternetFacing: 15, FactorIMDSv1: 10, FactorExploitable: 20, FactorWritesDeploySrc: 20,
	FactorProduction: 15, FactorCrownJewel: 20, FactorOnPredictedPath: 10,
}

// RiskOptions configures AssetRisk.
type RiskOptions struct {
	// CrownJewelTags marks crown jewels: an asset with a tag whose key is
	// listed (any case) and whose value is one of the listed values (any
	// case; an empty list matches any value).
	CrownJewelTags map[string][]string `yaml:"crown_jewel_tags"`
}

// AssetRisk scores an incident's entities by the assets they resolve to in
// the inventory: internet-facing instances, IMDSv1 allowed, a known
// exploitable vulnerability, a role that can write to a deployment source,
// production targets, crown-jewel tags, and membership of a predicted
// attack path (paths from Find on the same inventory). Entities that
// resolve to no asset add nothing. A role session (assumed-role ARN)
// resolves to its role; an object to its bucket; an address to the
// instance that holds it (a private address only within its account).
func AssetRisk(inv *Inventory, paths []Path, entities []EntityRef, opt RiskOptions) Risk {
	var r Risk
	seen := map[string]bool{}
	add := func(name, asset, evidence string) {
		if seen[name] {
			return
		}
		seen[name] = true
		r.Factors = append(r.Factors, Factor{Name: name, Points: factorPoints[name], Asset: asset, Evidence: evidence})
		r.Score += factorPoints[name]
	}
	writers := map[string]string{} // role ARN → object it can write
	onPath := map[string]string{}  // kind:value → path id
	for _, p := range paths {
		for _, h := range p.Hops {
			if h.Relation == "can_write" {
				writers[h.From.Value] = h.To.Value
			}
		}
		for _, n := range p.Nodes() {
			k := string(n.Entity) + ":" + n.Value
			if _, ok := onPath[k]; !ok {
				onPath[k] = p.ID
			}
		}
	}
	// Stable: the same entities in any order give the same factors.
	ents := slices.Clone(entities)
	slices.SortFunc(ents, func(a, b EntityRef) int {
		return strings.Compare(string(a.Kind)+a.Value+a.Account, string(b.Kind)+b.Value+b.Account)
	})
	for _, e := range ents {
		asset := string(e.Kind) + ":" + e.Value
		for _, it := range inv.resolve(e) {
			name := it.ResourceType + " " + it.ResourceID
			if k, v, ok := crownJewel(it.Tags, opt.CrownJewelTags); ok {
				add(FactorCrownJewel, asset, fmt.Sprintf("%s tagged %s=%s", name, k, v))
			}
			if id, ok := onPath[nodeKey(it)]; ok {
				add(FactorOnPredictedPath, asset, name+" lies on predicted path "+id)
			}
			switch {
			case it.Instance != nil:
				if ok, why := inv.internetFacing(it); ok {
					add(FactorInternetFacing, asset, name+": "+strings.Join(why, "; "))
				}
				if it.Instance.IMDSv1Allowed() {
					add(FactorIMDSv1, asset, name+": metadata httpTokens "+firstOf(it.Instance.HTTPTokens, "not recorded (optional by default)"))
				}
				if vs := inv.seriousVulns(it.ResourceID); len(vs) > 0 {
					add(FactorExploitable, asset, fmt.Sprintf("%s: %s with a known exploit", name, vs[0].CVE))
				}
				for k, v := range it.Tags {
					if awsconfig.IsProductionTag(k, v) {
						add(FactorProduction, asset, fmt.Sprintf("%s tagged %s=%s", name, k, v))
					}
				}
				if role := inv.roleOf(it); role != nil {
					if obj, ok := writers[role.ARN]; ok {
						add(FactorWritesDeploySrc, asset, fmt.Sprintf("%s runs as %s, which can write %s", name, role.ARN, obj))
					}
				}
			case it.Role != nil:
				if obj, ok := writers[it.ARN]; ok {
					add(FactorWritesDeploySrc, asset, fmt.Sprintf("%s can write %s", it.ARN, obj))
				}
			case it.DeploymentGroup != nil:
				if it.DeploymentGroup.Production(it.Tags) {
					add(FactorProduction, asset, name+" deploys to production")
				}
			}
		}
	}
	r.Score = min(r.Score, 100)
	return r
}

// nodeKey names an item as path nodes name it.
func nodeKey(it *awsconfig.Item) string {
	switch {
	case it.Instance != nil:
		return string(ocsf.EntityInstance) + ":" + it.ResourceID
	case it.Role != nil:
		return string(ocsf.EntityRole) + ":" + it.ARN
	case it.Pipeline != nil:
		return string(ocsf.EntityPipeline) + ":" + it.Pipeline.Name
	case it.DeploymentGroup != nil:
		return string(ocsf.EntityDeploymentGroup) + ":" + it.DeploymentGroup.DeploymentGroupName
	}
	return ""
}

// resolve returns the inventory items an entity names.
func (inv *Inventory) resolve(e EntityRef) []*awsconfig.Item {
	var out []*awsconfig.Item
	switch e.Kind {
	case ocsf.EntityInstance:
		for _, in := range inv.instances {
			if in.ResourceID == e.Value && (e.Account == "" || in.Account == e.Account) {
				out = append(out, in)
			}
		}
	case ocsf.EntityIP:
		for key, id := range inv.ips {
			acct, ip, _ := strings.Cut(key, "/")
			if ip != e.Value || (e.Account != "" && acct != e.Account) {
				continue
			}
			in := inv.instances[acct+"/"+id]
			if e.Account == "" && in.Instance.PublicIP != ip {
				continue // a private address means nothing without its account
			}
			out = append(out, in)
		}
	case ocsf.EntityRole, ocsf.EntitySession, ocsf.EntityPrincipal:
		acct, name, ok := roleName(e.Value)
		if !ok {
			break
		}
		for _, r := range inv.roles {
			if r.Account == acct && r.Role.RoleName == name {
				out = append(out, r)
			}
		}
	case ocsf.EntityBucket, ocsf.EntityObject:
		bucket, _, _ := strings.Cut(e.Value, "/")
		if b, ok := inv.buckets[bucket]; ok {
			out = append(out, b)
		}
	case ocsf.EntityDeploymentGroup:
		for _, g := range inv.deploymentGroup {
			if g.DeploymentGroup.DeploymentGroupName == e.Value && (e.Account == "" || g.Account == e.Account) {
				out = append(out, g)
			}
		}
	case ocsf.EntityPipeline:
		for _, p := range inv.pipelines {
			if p.Pipeline.Name == e.Value && (e.Account == "" || p.Account == e.Account) {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b *awsconfig.Item) int { return strings.Compare(a.Account+a.ResourceID, b.Account+b.ResourceID) })
	return out
}

// roleName reads the account and role name of a role ARN
// (arn:aws:iam::123:role/path/name) or a role session ARN
// (arn:aws:sts::123:assumed-role/name/session).
func roleName(arn string) (account, name string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return "", "", false
	}
	res := parts[5]
	switch {
	case parts[2] == "iam" && strings.HasPrefix(res, "role/"):
		return parts[4], res[strings.LastIndexByte(res, '/')+1:], true
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		rest := strings.TrimPrefix(res, "assumed-role/")
		name, _, _ := strings.Cut(rest, "/")
		return parts[4], name, name != ""
	}
	return "", "", false
}

func crownJewel(tags map[string]string, want map[string][]string) (string, string, bool) {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for wk, vals := range want {
			if !strings.EqualFold(k, wk) {
				continue
			}
			if len(vals) == 0 || slices.ContainsFunc(vals, func(v string) bool { return strings.EqualFold(v, tags[k]) }) {
				return k, tags[k], true
			}
		}
	}
	return "", "", false
}
