package exposure_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
)

// seedItems is the seed's account: a public web server with IMDSv1, a role
// that can write s3://acme-release-artifacts/storefront/release.zip, an
// unversioned bucket and a pipeline that deploys it to production without
// an approval.
func seedItems(t testing.TB) []awsconfig.Item {
	t.Helper()
	data, err := os.ReadFile("../ingest/awsconfig/testdata/snapshot_seed_account.json")
	if err != nil {
		t.Fatal(err)
	}
	items, err := awsconfig.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// seedVulns is Inspector's critical, exploitable finding on the web server,
// decoded from its EventBridge event.
func seedVulns(t testing.TB) []exposure.Vulnerability {
	t.Helper()
	data, err := os.ReadFile("../ingest/inspector/testdata/ec2_critical_exploitable.json")
	if err != nil {
		t.Fatal(err)
	}
	evs, errs := ingest.NewDecoder(ingest.DefaultLimits()).Decode(ingest.SourceAuto, data)
	if len(errs) != 0 || len(evs) != 1 {
		t.Fatalf("inspector fixture: %v", errs)
	}
	v, ok := exposure.VulnerabilityOf(&evs[0])
	if !ok {
		t.Fatal("the Inspector finding is not a vulnerability on an instance")
	}
	return []exposure.Vulnerability{v}
}

// mutate returns a copy of items with f applied to the item of the given
// resource id (copying the detail f changes).
func mutate(items []awsconfig.Item, id string, f func(*awsconfig.Item)) []awsconfig.Item {
	out := slices.Clone(items)
	for i := range out {
		if out[i].ResourceID == id {
			f(&out[i])
		}
	}
	return out
}

const (
	webID    = "i-0a1b2c3d4e5f60001"
	webRole  = "arn:aws:iam::111122223333:role/web-frontend-role"
	bucketID = "acme-release-artifacts"
)

type shape struct{ full, short bool }

func shapeOf(ps []exposure.Path) shape {
	var s shape
	for _, p := range ps {
		if !slices.ContainsFunc(p.Nodes(), func(n exposure.Node) bool { return n.Value == webRole }) {
			continue
		}
		switch p.Kind {
		case exposure.KindInternetToProduction:
			s.full = true
		case exposure.KindRoleToProduction:
			s.short = true
		}
	}
	return s
}

func TestSeedPath(t *testing.T) {
	paths := exposure.Find(exposure.NewInventory(seedItems(t), seedVulns(t)))
	if len(paths) != 2 {
		for _, p := range paths {
			t.Logf("%s %s %v", p.Kind, p.ID, p.Nodes())
		}
		t.Fatalf("got %d paths, want 2 (the whole path and its role variant)", len(paths))
	}
	full, short := paths[0], paths[1]
	if full.Kind != exposure.KindInternetToProduction || short.Kind != exposure.KindRoleToProduction || full.Risk <= short.Risk {
		t.Fatalf("got kinds %s (risk %d), %s (risk %d); want the whole path first, riskier", full.Kind, full.Risk, short.Kind, short.Risk)
	}
	var rel, nodes []string
	for _, h := range full.Hops {
		rel = append(rel, h.Relation)
	}
	for _, n := range full.Nodes() {
		nodes = append(nodes, string(n.Entity)+":"+n.Value)
	}
	wantRel := []string{"exposes", "runs_as", "can_write", "source_of", "deploys_to"}
	wantNodes := []string{"internet:0.0.0.0/0", "instance:" + webID, "role:" + webRole, "object:acme-release-artifacts/storefront/release.zip", "pipeline:storefront-release", "deployment_group:storefront-prod"}
	if !slices.Equal(rel, wantRel) || !slices.Equal(nodes, wantNodes) {
		t.Errorf("got hops %v through %v, want %v through %v", rel, nodes, wantRel, wantNodes)
	}
	if w := full.Hops[2].Statements; len(w) != 1 || w[0].Sid != "PublishBuilds" || w[0].Action[0] != "s3:Put*" {
		t.Errorf("write evidence: got %+v, want the PublishBuilds statement (s3:Put* on acme-release-*/*)", w)
	}
	ev := strings.Join(full.Hops[1].Evidence, "; ")
	if !strings.Contains(ev, "CVE-2017-5638") || !strings.Contains(ev, "IMDSv1 allowed") {
		t.Errorf("entry evidence: got %q, want the CVE and IMDSv1", ev)
	}
	if !strings.Contains(strings.Join(full.Hops[0].Evidence, "; "), "tcp 443-443 from 0.0.0.0/0") {
		t.Errorf("exposure evidence: got %q", full.Hops[0].Evidence)
	}
	if full.Hops[3].Evidence[1] != "no manual approval before the deploy" {
		t.Errorf("pipeline evidence: got %q", full.Hops[3].Evidence)
	}
	a, _ := json.Marshal(short.Hops)
	b, _ := json.Marshal(full.Hops[2:])
	if string(a) != string(b) {
		t.Errorf("the role variant is not the tail of the whole path")
	}
}

// TestEachCountermeasureAlone changes the seed's account by one
// countermeasure at a time — real accounts, not the finder's own
// simulation — and checks that each breaks the path or shortens it to the
// role variant; then that Find's countermeasure list says the same.
func TestEachCountermeasureAlone(t *testing.T) {
	base := seedItems(t)
	cases := []struct {
		name   string
		id     string // Find's countermeasure id, or "" for those it does not propose
		change func(*awsconfig.Item)
		target string
		want   shape
	}{
		{"none", "", nil, "", shape{true, true}},
		{"IMDSv2 required", exposure.CMIMDSv2Required, func(it *awsconfig.Item) { in := *it.Instance; in.HTTPTokens = "required"; it.Instance = &in }, webID, shape{false, true}},
		{"no public address", exposure.CMRemoveExposure, func(it *awsconfig.Item) { in := *it.Instance; in.PublicIP = ""; it.Instance = &in }, webID, shape{false, true}},
		{"security group closed", "", func(it *awsconfig.Item) { sg := *it.SecurityGroup; sg.OpenIngress = nil; it.SecurityGroup = &sg }, "sg-0web0000000000001", shape{false, true}},
		{"least-privilege role (read only)", exposure.CMLeastPrivilegeRole, func(it *awsconfig.Item) {
			r := *it.Role
			r.InlinePolicies = []awsconfig.NamedPolicy{{Name: "read", Document: awsconfig.PolicyDocument{Statements: []awsconfig.Statement{
				{Effect: "Allow", Action: []string{"s3:GetObject", "s3:ListBucket"}, Resource: []string{"arn:aws:s3:::acme-release-artifacts", "arn:aws:s3:::acme-release-artifacts/*"}}}}}}
			it.Role = &r
		}, "AROAEXAMPLEWEB000001", shape{false, false}},
		{"explicit deny in the role", "", func(it *awsconfig.Item) {
			r := *it.Role
			r.InlinePolicies = append(slices.Clone(r.InlinePolicies), awsconfig.NamedPolicy{Name: "guard", Document: awsconfig.PolicyDocument{Statements: []awsconfig.Statement{
				{Effect: "Deny", NotAction: []string{"s3:Get*", "s3:List*"}, Resource: []string{"arn:aws:s3:::acme-release-artifacts/*"}}}}})
			it.Role = &r
		}, "AROAEXAMPLEWEB000001", shape{false, false}},
		{"S3 versioning", exposure.CMBucketVersioning, func(it *awsconfig.Item) { b := *it.Bucket; b.Versioning = "Enabled"; it.Bucket = &b }, bucketID, shape{false, false}},
		{"S3 Object Lock", exposure.CMBucketObjectLock, func(it *awsconfig.Item) { b := *it.Bucket; b.ObjectLock = true; it.Bucket = &b }, bucketID, shape{false, false}},
		{"bucket policy denies the role", "", func(it *awsconfig.Item) {
			b := *it.Bucket
			b.Policy = awsconfig.PolicyDocument{Statements: []awsconfig.Statement{{Effect: "Deny", Principal: json.RawMessage(`{"AWS":["` + webRole + `"]}`),
				Action: []string{"s3:PutObject"}, Resource: []string{"arn:aws:s3:::acme-release-artifacts/*"}}}}
			it.Bucket = &b
		}, bucketID, shape{false, false}},
		{"bucket policy denies only under a condition (not evaluated)", "", func(it *awsconfig.Item) {
			b := *it.Bucket
			b.Policy = awsconfig.PolicyDocument{Statements: []awsconfig.Statement{{Effect: "Deny", Principal: json.RawMessage(`"*"`),
				Action: []string{"s3:*"}, Resource: []string{"arn:aws:s3:::acme-release-artifacts/*"}, Condition: json.RawMessage(`{"Bool":{"aws:SecureTransport":"false"}}`)}}}
			it.Bucket = &b
		}, bucketID, shape{true, true}},
		{"manual approval stage", exposure.CMManualApprovalStage, func(it *awsconfig.Item) {
			p := *it.Pipeline
			p.Stages = []awsconfig.Stage{p.Stages[0], {Name: "Approve", Actions: []awsconfig.Action{{Name: "Lead", Category: "Approval", Provider: "Manual"}}}, p.Stages[1]}
			it.Pipeline = &p
		}, "storefront-release", shape{false, false}},
		{"deploys to staging, not production", "", func(it *awsconfig.Item) {
			g := *it.DeploymentGroup
			g.TagFilters = []awsconfig.TagFilter{{Key: "Environment", Value: "staging"}}
			it.DeploymentGroup = &g
		}, "storefront-prod", shape{false, false}},
	}
	paths := exposure.Find(exposure.NewInventory(base, nil)) // IMDSv1 is the way in
	var proposed []exposure.Countermeasure
	for _, p := range paths {
		if p.Kind == exposure.KindInternetToProduction {
			proposed = p.Countermeasures
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			items := base
			if c.change != nil {
				items = mutate(base, c.target, c.change)
			}
			got := shapeOf(exposure.Find(exposure.NewInventory(items, nil)))
			if got != c.want {
				t.Errorf("got whole path %v, role variant %v; want %v, %v", got.full, got.short, c.want.full, c.want.short)
			}
			if c.id == "" {
				return
			}
			i := slices.IndexFunc(proposed, func(cm exposure.Countermeasure) bool { return cm.ID == c.id })
			want := "breaks"
			if c.want.short {
				want = "shortens"
			}
			if i < 0 || proposed[i].Effect != want {
				t.Errorf("Find proposes %+v, want %s with effect %s", proposed, c.id, want)
			}
		})
	}
}

// With an exploitable vulnerability as well as IMDSv1, neither IMDSv2 nor
// patching alone closes the way in; both together do.
func TestVulnerableAndIMDSv1NeedsBoth(t *testing.T) {
	items, vulns := seedItems(t), seedVulns(t)
	imdsv2 := mutate(items, webID, func(it *awsconfig.Item) { in := *it.Instance; in.HTTPTokens = "required"; it.Instance = &in })
	for _, c := range []struct {
		name  string
		items []awsconfig.Item
		vulns []exposure.Vulnerability
		full  bool
	}{
		{"both open", items, vulns, true},
		{"IMDSv2 only", imdsv2, vulns, true},
		{"patched only", items, nil, true},
		{"both closed", imdsv2, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := exposure.Find(exposure.NewInventory(c.items, c.vulns))
			if got := shapeOf(ps); got.full != c.full || !got.short {
				t.Errorf("got %+v, want whole path %v and the role variant", got, c.full)
			}
			for _, p := range ps {
				if p.Kind == exposure.KindInternetToProduction && slices.ContainsFunc(p.Countermeasures, func(cm exposure.Countermeasure) bool {
					return cm.ID == exposure.CMIMDSv2Required || cm.ID == exposure.CMPatchVulnerability
				}) && c.name == "both open" {
					t.Errorf("IMDSv2 or patching proposed as enough alone: %+v", p.Countermeasures)
				}
			}
		})
	}
}

func TestHardenedAccountHasNoPath(t *testing.T) {
	data, err := os.ReadFile("../ingest/awsconfig/testdata/history_hardened_account.json")
	if err != nil {
		t.Fatal(err)
	}
	items, err := awsconfig.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if ps := exposure.Find(exposure.NewInventory(items, nil)); len(ps) != 0 {
		t.Errorf("got %d paths in the hardened account, want none: %+v", len(ps), ps)
	}
	// Its pipeline minus the approval and its bucket minus versioning and
	// Object Lock still has no path: the managed policy's Deny holds.
	items = mutate(items, "api-release", func(it *awsconfig.Item) {
		p := *it.Pipeline
		p.Stages = []awsconfig.Stage{p.Stages[0], p.Stages[2]}
		it.Pipeline = &p
	})
	items = mutate(items, "globex-deploy-bundles", func(it *awsconfig.Item) {
		b := *it.Bucket
		b.Versioning, b.ObjectLock = "Suspended", false
		it.Bucket = &b
	})
	if ps := exposure.Find(exposure.NewInventory(items, nil)); len(ps) != 0 {
		t.Errorf("got %d paths with the managed policy's Deny in place, want none", len(ps))
	}
	// Without the Deny (policy version v1: s3:* on *), the role writes.
	items = mutate(items, "ANPAEXAMPLEPOL000003", func(it *awsconfig.Item) {
		p := *it.Policy
		p.Document = awsconfig.PolicyDocument{Statements: p.Document.Statements[:1]}
		it.Policy = &p
	})
	ps := exposure.Find(exposure.NewInventory(items, nil))
	if len(ps) != 1 || ps[0].Kind != exposure.KindRoleToProduction {
		t.Fatalf("got %d paths, want the role variant only (the instance requires IMDSv2 and has no known vulnerability)", len(ps))
	}
	if ne := strings.Join(ps[0].NotEvaluated, "; "); !strings.Contains(ne, "permissions boundary") {
		t.Errorf("not evaluated: got %q, want the permissions boundary named", ne)
	}
}

func TestFindIgnoresItemOrder(t *testing.T) {
	items, vulns := seedItems(t), seedVulns(t)
	want, _ := json.Marshal(exposure.Find(exposure.NewInventory(items, vulns)))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10 {
		sh := slices.Clone(items)
		rng.Shuffle(len(sh), func(a, b int) { sh[a], sh[b] = sh[b], sh[a] })
		got, _ := json.Marshal(exposure.Find(exposure.NewInventory(sh, vulns)))
		if string(got) != string(want) {
			t.Fatalf("shuffle %d: paths differ", i)
		}
	}
}

// manyAccounts copies the seed's account n times under other account ids.
func manyAccounts(t testing.TB, n int) []awsconfig.Item {
	base := seedItems(t)
	var out []awsconfig.Item
	for i := range n {
		acct := fmt.Sprintf("%012d", 100000000000+i)
		for _, it := range base {
			it.Account = acct
			it.ARN = strings.ReplaceAll(it.ARN, "111122223333", acct)
			bucket := fmt.Sprintf("acme-release-artifacts-%d", i) // bucket names are global
			if it.Bucket != nil {
				it.ResourceID, it.ResourceName = bucket, bucket
			}
			if it.Pipeline != nil {
				p := *it.Pipeline
				p.Stages = slices.Clone(p.Stages)
				src := p.Stages[0]
				src.Actions = slices.Clone(src.Actions)
				src.Actions[0].S3Bucket = bucket
				p.Stages[0] = src
				it.Pipeline = &p
			}
			if it.Role != nil {
				r := *it.Role
				r.InstanceProfiles = []string{strings.ReplaceAll(r.InstanceProfiles[0], "111122223333", acct)}
				it.Role = &r
			}
			if it.Instance != nil && it.Instance.InstanceProfileARN != "" {
				in := *it.Instance
				in.InstanceProfileARN = strings.ReplaceAll(in.InstanceProfileARN, "111122223333", acct)
				it.Instance = &in
			}
			out = append(out, it)
		}
	}
	return out
}

func TestManyAccountsKeepTheirPaths(t *testing.T) {
	ps := exposure.Find(exposure.NewInventory(manyAccounts(t, 5), nil))
	per := map[string]int{}
	for _, p := range ps {
		per[p.Account]++
		for _, n := range p.Nodes() {
			if n.Account != "" && n.Account != p.Account {
				t.Errorf("path %s of %s crosses into account %s", p.ID, p.Account, n.Account)
			}
		}
	}
	if len(per) != 5 {
		t.Errorf("got paths in %d accounts, want 5", len(per))
	}
	for a, n := range per {
		if n != 2 {
			t.Errorf("account %s: got %d paths, want 2", a, n)
		}
	}
}

func BenchmarkFind(b *testing.B) {
	items := manyAccounts(b, 50)
	b.ReportAllocs()
	for b.Loop() {
		if ps := exposure.Find(exposure.NewInventory(items, nil)); len(ps) != 100 {
			b.Fatalf("got %d paths", len(ps))
		}
	}
}
