package awsconfig_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/ingest"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ingest/internal/golden"
	"github.com/musubi-xdr/musubi/ocsf"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGolden decodes every fixture through ingest's auto-detection, as
// `musubi normalize` does, and compares events and error reasons with the
// golden files.
func TestGolden(t *testing.T) {
	if n := len(golden.Fixtures(t)); n < 5 {
		t.Fatalf("got %d fixtures, want at least 5", n)
	}
	golden.CheckFixtures(t, ingest.SourceAWSConfig)
}

func TestSnapshotItems(t *testing.T) {
	items, err := awsconfig.Parse(read(t, "snapshot_seed_account.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 7 {
		t.Fatalf("got %d items, want 7", len(items))
	}
	by := map[string]awsconfig.Item{}
	for _, it := range items {
		by[it.ResourceID] = it
		if it.Account != "111122223333" || it.CaptureTime != 1796025600000 {
			t.Errorf("%s: account %s capture %d", it.ResourceID, it.Account, it.CaptureTime)
		}
	}
	web := by["i-0a1b2c3d4e5f60001"].Instance
	if web == nil || web.PublicIP != "203.0.113.10" || web.HTTPTokens != "optional" || !web.IMDSv1Allowed() ||
		web.InstanceProfileARN != "arn:aws:iam::111122223333:instance-profile/web-frontend-profile" || len(web.SecurityGroups) != 1 {
		t.Errorf("web instance: got %+v", web)
	}
	if app := by["i-0a1b2c3d4e5f60002"].Instance; app == nil || app.IMDSv1Allowed() || app.PublicIP != "" {
		t.Errorf("app instance: got %+v", app)
	}
	sg := by["sg-0web0000000000001"].SecurityGroup
	if sg == nil || len(sg.OpenIngress) != 2 || sg.OpenIngress[0].FromPort != 443 || sg.OpenIngress[0].CIDR != "0.0.0.0/0" || sg.OpenIngress[1].CIDR != "::/0" {
		t.Errorf("security group open ingress: got %+v (the 10.0.0.0/8 SSH rule must not count)", sg)
	}
	role := by["AROAEXAMPLEWEB000001"].Role
	if role == nil || len(role.InlinePolicies) != 1 || len(role.InstanceProfiles) != 1 || len(role.AttachedPolicies) != 1 {
		t.Fatalf("role: got %+v", role)
	}
	st := role.InlinePolicies[0].Document.Statements
	if len(st) != 2 || st[1].Sid != "PublishBuilds" || st[1].Action[0] != "s3:Put*" || st[1].Resource[0] != "arn:aws:s3:::acme-release-*/*" {
		t.Errorf("URL-encoded inline policy: got %+v", st)
	}
	if len(role.TrustPolicy.Statements) != 1 || role.TrustPolicy.Statements[0].Action[0] != "sts:AssumeRole" {
		t.Errorf("trust policy: got %+v", role.TrustPolicy)
	}
	b := by["acme-release-artifacts"].Bucket
	if b == nil || b.VersioningEnabled() || b.ObjectLock || b.PublicAccessBlock == nil || !b.PublicAccessBlock.BlockPublicPolicy || len(b.Policy.Statements) != 0 {
		t.Errorf("bucket: got %+v", b)
	}
	p := by["storefront-release"].Pipeline
	if p == nil || len(p.Stages) != 2 || p.Stages[0].Actions[0].S3Bucket != "acme-release-artifacts" || p.Stages[0].Actions[0].S3ObjectKey != "storefront/release.zip" ||
		p.Stages[1].Actions[0].Provider != "CodeDeploy" || p.Stages[1].Actions[0].DeploymentGroupName != "storefront-prod" {
		t.Errorf("pipeline: got %+v", p)
	}
	dgItem := by["storefront-prod"]
	if g := dgItem.DeploymentGroup; g == nil || g.ApplicationName != "storefront" || len(g.TagFilters) != 2 || !g.Production(dgItem.Tags) {
		t.Errorf("deployment group: got %+v", g)
	}
}

func TestHistoryItems(t *testing.T) {
	items, err := awsconfig.Parse(read(t, "history_hardened_account.json"))
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]awsconfig.Item{}
	for _, it := range items {
		by[it.ResourceID] = it
	}
	// Configuration written into a string (the API's form).
	if in := by["i-0b00000000000b001"].Instance; in == nil || in.HTTPTokens != "required" || in.PublicIP != "198.51.100.77" {
		t.Errorf("instance from a string configuration: got %+v", in)
	}
	if r := by["AROAEXAMPLEAPI000002"].Role; r == nil || r.PermissionsBoundary != "arn:aws:iam::444455556666:policy/boundary" || r.AttachedPolicies[0] != "arn:aws:iam::444455556666:policy/api-s3" {
		t.Errorf("role: got %+v", r)
	}
	pol := by["ANPAEXAMPLEPOL000003"].Policy
	if pol == nil || pol.DefaultVersion != "v2" || len(pol.Document.Statements) != 2 || pol.Document.Statements[1].Effect != "Deny" {
		t.Errorf("managed policy default version: got %+v", pol)
	}
	b := by["globex-deploy-bundles"].Bucket
	if b == nil || !b.VersioningEnabled() || !b.ObjectLock || len(b.Policy.Statements) != 1 || len(b.Policy.Statements[0].Condition) == 0 {
		t.Errorf("bucket from string supplementary configuration: got %+v", b)
	}
	if p := by["api-release"].Pipeline; p == nil || len(p.Stages) != 3 || p.Stages[1].Actions[0].Category != "Approval" || p.Stages[1].Actions[0].Provider != "Manual" {
		t.Errorf("pipeline with approval: got %+v", p)
	}
	g := by["api-prod"]
	if g.DeploymentGroup == nil || len(g.DeploymentGroup.AutoScalingGroups) != 1 || g.DeploymentGroup.AutoScalingGroups[0] != "api-asg" ||
		len(g.DeploymentGroup.TagFilters) != 1 || !g.DeploymentGroup.Production(g.Tags) {
		t.Errorf("deployment group with tag set and ASG objects: got %+v", g.DeploymentGroup)
	}
	del := by["i-0b00000000000b0ff"]
	if !del.Deleted() || del.Instance != nil {
		t.Errorf("deleted item: got %+v", del)
	}
	if l := by["thumbnailer"]; l.ResourceType != "AWS::Lambda::Function" || l.Instance != nil {
		t.Errorf("other type kept as plain inventory: got %+v", l)
	}
}

func TestChangeNotification(t *testing.T) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	evs, errs := d.Decode(ingest.SourceAuto, read(t, "eventbridge_change_imds.json"))
	if len(errs) != 0 || len(evs) != 1 {
		t.Fatalf("got %d events, errors %v", len(evs), errs)
	}
	ev := evs[0]
	if ev.ClassUID != ocsf.ClassInventoryInfo || ev.Metadata.LogName != "awsconfig" || ev.Device.InstanceUID != "i-0c0000000000000c1" || ev.Device.IP != "192.0.2.44" {
		t.Errorf("event: got class %d log %s device %+v", ev.ClassUID, ev.Metadata.LogName, ev.Device)
	}
	var um struct{ Asset awsconfig.Item }
	if err := json.Unmarshal(ev.Unmapped, &um); err != nil || um.Asset.Instance == nil || um.Asset.Instance.HTTPTokens != "optional" {
		t.Errorf("unmapped.asset: got %s (%v)", ev.Unmapped, err)
	}
	// NormalizeTo reads the whole EventBridge event too.
	var whole ocsf.Event
	if err := awsconfig.NormalizeTo(&whole, read(t, "eventbridge_change_imds.json"), 64); err != nil || whole.Device.InstanceUID != "i-0c0000000000000c1" {
		t.Errorf("whole event: got %v, device %+v", err, whole.Device)
	}
	// An oversized notification carries no item: a clear error, not an event.
	evs, errs = d.Decode(ingest.SourceAuto, read(t, "hostile/eventbridge_oversized.json"))
	if len(evs) != 0 || len(errs) != 1 || errs[0].Reason != ingest.ReasonUnsupported || len(errs[0].Raw) == 0 {
		t.Errorf("oversized: got %d events, errors %v", len(evs), errs)
	}
}

func TestHostileItems(t *testing.T) {
	data := read(t, "hostile/hostile_items.jsonl")
	lines := bytes.Count(data, []byte("\n"))
	d := ingest.NewDecoder(ingest.DefaultLimits())
	evs, errs := d.Decode(ingest.SourceAWSConfig, data)
	if len(evs) != 0 || len(errs) != lines {
		t.Fatalf("got %d events and %d errors, want 0 and %d", len(evs), len(errs), lines)
	}
	for _, e := range errs {
		if len(e.Raw) == 0 || e.Reason == ingest.ReasonInternal || strings.Contains(e.Error(), "struct {") {
			t.Errorf("error %v: want raw bytes, a classified reason and a short message", e)
		}
	}
	// Parse reports every bad item with its index and keeps the good ones.
	good := read(t, "snapshot_seed_account.json")
	var f struct{ ConfigurationItems []json.RawMessage }
	if err := json.Unmarshal(good, &f); err != nil {
		t.Fatal(err)
	}
	mixed, _ := json.Marshal(append([]json.RawMessage{f.ConfigurationItems[0], json.RawMessage(`{"awsAccountId":"111122223333"}`)}, f.ConfigurationItems[1]))
	items, err := awsconfig.Parse(mixed)
	if len(items) != 2 || err == nil || !strings.Contains(err.Error(), "item 1:") {
		t.Errorf("mixed array: got %d items, error %v", len(items), err)
	}
	for _, bad := range []string{"", "nul", `{"configurationItems":7}`, `[1,2]`} {
		if _, err := awsconfig.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q): got no error", bad)
		}
	}
}

func TestPolicyDocumentForms(t *testing.T) {
	for _, c := range []struct {
		name, in string
		n        int
		wantErr  bool
	}{
		{"object, single statement and strings", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}}`, 1, false},
		{"json in a string", `"{\"Statement\":[{\"Effect\":\"Deny\",\"NotAction\":\"iam:*\",\"NotResource\":[\"a\",\"b\"]}]}"`, 1, false},
		{"url-encoded", `"%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D"`, 1, false},
		{"null", `null`, 0, false},
		{"bad escape", `"%7B%ZZ"`, 0, true},
		{"action of the wrong type", `{"Statement":[{"Effect":"Allow","Action":7}]}`, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc, err := awsconfig.ParsePolicyDocument(json.RawMessage(c.in))
			if (err != nil) != c.wantErr || len(doc.Statements) != c.n {
				t.Errorf("got %d statements, error %v; want %d, error %v", len(doc.Statements), err, c.n, c.wantErr)
			}
		})
	}
}

func TestItemUIDIsStable(t *testing.T) {
	a, _ := awsconfig.Parse(read(t, "snapshot_seed_account.json"))
	b, _ := awsconfig.Parse(read(t, "snapshot_seed_account.json"))
	seen := map[string]bool{}
	for i := range a {
		if a[i].UID() != b[i].UID() {
			t.Errorf("uid of %s differs between parses", a[i].ResourceID)
		}
		if seen[a[i].UID()] {
			t.Errorf("uid of %s repeats", a[i].ResourceID)
		}
		seen[a[i].UID()] = true
	}
}

func FuzzNormalize(f *testing.F) {
	d := ingest.NewDecoder(ingest.DefaultLimits())
	golden.FuzzNormalize(f, awsconfig.NormalizeTo, func(t *testing.T, data []byte) {
		_, _ = awsconfig.Parse(data)
		_, errs := d.Decode(ingest.SourceAWSConfig, data)
		for _, e := range errs {
			if e.Reason == ingest.ReasonInternal {
				t.Fatalf("decoder panicked: %v", e)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data := read(b, "snapshot_seed_account.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := awsconfig.Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data := read(b, "snapshot_seed_account.json")
	d := ingest.NewDecoder(ingest.DefaultLimits())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if evs, errs := d.Decode(ingest.SourceAuto, data); len(errs) != 0 || len(evs) != 7 {
			b.Fatal(errs)
		}
	}
}
