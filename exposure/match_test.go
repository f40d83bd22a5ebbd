package exposure_test

import (
	"slices"
	"testing"

	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ocsf"
)

// sharedOf names a match's shared nodes as entity→node.
func sharedOf(m exposure.Match) []string {
	var out []string
	for _, s := range m.Shared {
		out = append(out, s.Entity+"→"+string(s.Node.Entity)+":"+s.Node.Value)
	}
	return out
}

// TestWalked: an incident's entities are matched to the predicted paths
// they lie on through what they resolve to, and Since is the newest
// capture among the path's assets.
func TestWalked(t *testing.T) {
	items := seedItems(t)
	inv := exposure.NewInventory(items, nil)
	paths := exposure.Find(inv)
	if len(paths) != 2 {
		t.Fatalf("got %d seed paths, want 2", len(paths))
	}
	captured := items[0].CaptureTime
	session := "arn:aws:sts::111122223333:assumed-role/web-frontend-role/" + webID
	object := "acme-release-artifacts/storefront/release.zip"

	tests := []struct {
		name     string
		entities []exposure.EntityRef
		want     map[exposure.Kind][]string // kind → shared, in path order
		first    exposure.Kind
	}{
		{
			name: "the seed attack: stolen session, tampered bundle, production deploy",
			entities: []exposure.EntityRef{
				{Kind: ocsf.EntitySession, Value: session},
				{Kind: ocsf.EntityObject, Value: object},
				{Kind: ocsf.EntityDeploymentGroup, Value: "storefront-prod"},
				{Kind: ocsf.EntityIP, Value: "198.51.100.77"},
			},
			want: map[exposure.Kind][]string{
				exposure.KindInternetToProduction: {"session:" + session + "→role:" + webRole, "object:" + object + "→object:" + object, "deployment_group:storefront-prod→deployment_group:storefront-prod"},
				exposure.KindRoleToProduction:     {"session:" + session + "→role:" + webRole, "object:" + object + "→object:" + object, "deployment_group:storefront-prod→deployment_group:storefront-prod"},
			},
			first: exposure.KindInternetToProduction,
		},
		{
			name: "the web server by its public address, and the bucket",
			entities: []exposure.EntityRef{
				{Kind: ocsf.EntityIP, Value: "203.0.113.10"},
				{Kind: ocsf.EntityBucket, Value: "acme-release-artifacts"},
			},
			want: map[exposure.Kind][]string{
				exposure.KindInternetToProduction: {"ip:203.0.113.10→instance:" + webID, "bucket:acme-release-artifacts→object:" + object},
				exposure.KindRoleToProduction:     {"bucket:acme-release-artifacts→object:" + object},
			},
			first: exposure.KindInternetToProduction,
		},
		{
			name: "unrelated assets",
			entities: []exposure.EntityRef{
				{Kind: ocsf.EntityBucket, Value: "acme-logs"},
				{Kind: ocsf.EntityRole, Value: "arn:aws:iam::111122223333:role/other"},
				{Kind: ocsf.EntitySession, Value: "arn:aws:sts::999999999999:assumed-role/web-frontend-role/x"},
				{Kind: ocsf.EntityIP, Value: "10.0.1.15"}, // private, no account: means nothing
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := exposure.Walked(inv, paths, tc.entities)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d matches, want %d", len(got), len(tc.want))
			}
			if len(got) > 0 && got[0].Path.Kind != tc.first {
				t.Errorf("first match is %s, want %s", got[0].Path.Kind, tc.first)
			}
			for _, m := range got {
				if s, w := sharedOf(m), tc.want[m.Path.Kind]; !slices.Equal(s, w) {
					t.Errorf("%s: got shared %q, want %q", m.Path.Kind, s, w)
				}
				if m.Since != captured {
					t.Errorf("%s: got since %d, want the snapshot's capture %d", m.Path.Kind, m.Since, captured)
				}
			}
		})
	}

	// A later capture of an asset on the path (the pipeline) moves Since;
	// one off the path does not.
	later := slices.Clone(items)
	for i := range later {
		switch later[i].ResourceType {
		case awsconfig.TypePipeline:
			later[i].CaptureTime = captured + 60_000
		case awsconfig.TypeSecurityGroup:
			later[i].CaptureTime = captured + 120_000
		}
	}
	inv = exposure.NewInventory(later, nil)
	got := exposure.Walked(inv, exposure.Find(inv), []exposure.EntityRef{{Kind: ocsf.EntityPipeline, Value: "storefront-release"}})
	if len(got) != 2 || got[0].Since != captured+60_000 || got[1].Since != captured+60_000 {
		t.Errorf("got %d matches (since %v), want 2 since the pipeline's capture %d", len(got), got, captured+60_000)
	}
}
