package exposure_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/musubi-xdr/musubi/exposure"
	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ocsf"
)

func factorNames(r exposure.Risk) []string {
	var out []string
	for _, f := range r.Factors {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

// TestAssetRiskOrdersIncidents scores the entities of three incidents in
// the seed's account: the attack (the web server, its role's session, the
// release bundle), a deployment by the CI (the bundle and the production
// deployment group) and activity on the internal app server. The attack
// ranks first, and each score explains itself.
func TestAssetRiskOrdersIncidents(t *testing.T) {
	inv := exposure.NewInventory(seedItems(t), seedVulns(t))
	paths := exposure.Find(inv)
	opt := exposure.RiskOptions{CrownJewelTags: map[string][]string{"app": {"storefront"}}}
	attack := exposure.AssetRisk(inv, paths, []exposure.EntityRef{
		{Kind: ocsf.EntityInstance, Value: webID},
		{Kind: ocsf.EntitySession, Value: "arn:aws:sts::111122223333:assumed-role/web-frontend-role/" + webID},
		{Kind: ocsf.EntityObject, Value: "acme-release-artifacts/storefront/release.zip"},
		{Kind: ocsf.EntityIP, Value: "198.51.100.99"}, // the attacker: no asset
	}, opt)
	deploy := exposure.AssetRisk(inv, paths, []exposure.EntityRef{
		{Kind: ocsf.EntityPrincipal, Value: "arn:aws:iam::111122223333:user/ci-deployer"},
		{Kind: ocsf.EntityObject, Value: "acme-release-artifacts/storefront/release.zip"},
		{Kind: ocsf.EntityDeploymentGroup, Value: "storefront-prod", Account: "111122223333"},
	}, opt)
	internal := exposure.AssetRisk(inv, paths, []exposure.EntityRef{
		{Kind: ocsf.EntityIP, Value: "10.0.2.21", Account: "111122223333"},
	}, opt)
	nothing := exposure.AssetRisk(inv, paths, []exposure.EntityRef{{Kind: ocsf.EntityIP, Value: "10.0.2.21"}}, opt)

	// The bucket of the object carries app=storefront: a crown jewel.
	wantAttack := []string{exposure.FactorCrownJewel, exposure.FactorExploitable, exposure.FactorIMDSv1, exposure.FactorInternetFacing,
		exposure.FactorOnPredictedPath, exposure.FactorProduction, exposure.FactorWritesDeploySrc}
	slices.Sort(wantAttack)
	if got := factorNames(attack); !slices.Equal(got, wantAttack) {
		t.Errorf("attack factors: got %v, want %v", got, wantAttack)
	}
	// The bucket is tagged app=storefront: a crown jewel.
	if got := factorNames(deploy); !slices.Equal(got, []string{exposure.FactorCrownJewel, exposure.FactorOnPredictedPath, exposure.FactorProduction}) {
		t.Errorf("deploy factors: got %v", got)
	}
	// The app server: production and a crown jewel, but not exposed.
	if got := factorNames(internal); !slices.Equal(got, []string{exposure.FactorCrownJewel, exposure.FactorProduction}) {
		t.Errorf("internal factors: got %v", got)
	}
	if nothing.Score != 0 {
		t.Errorf("a private address without its account: got %+v, want nothing", nothing)
	}
	if !(attack.Score > deploy.Score && attack.Score > internal.Score && attack.Score <= 100) {
		t.Errorf("scores: attack %d, deploy %d, internal %d; want the attack first", attack.Score, deploy.Score, internal.Score)
	}
	sum := 0
	for _, f := range attack.Factors {
		sum += f.Points
		if f.Evidence == "" || f.Asset == "" {
			t.Errorf("factor %+v: want its asset and evidence", f)
		}
	}
	if attack.Score != min(sum, 100) {
		t.Errorf("score %d is not the sum of its factors (%d)", attack.Score, sum)
	}
	for _, f := range attack.Factors {
		if f.Name == exposure.FactorWritesDeploySrc && !strings.Contains(f.Evidence, "release.zip") {
			t.Errorf("write factor evidence: got %q", f.Evidence)
		}
	}
	// After the countermeasures (IMDSv2, patched, versioning), the same
	// attack entities score lower: no IMDSv1, no exploit, no path.
	items := mutate(seedItems(t), webID, func(it *awsconfig.Item) { in := *it.Instance; in.HTTPTokens = "required"; it.Instance = &in })
	items = mutate(items, bucketID, func(it *awsconfig.Item) { b := *it.Bucket; b.Versioning = "Enabled"; it.Bucket = &b })
	hard := exposure.NewInventory(items, nil)
	after := exposure.AssetRisk(hard, exposure.Find(hard), []exposure.EntityRef{{Kind: ocsf.EntityInstance, Value: webID}}, opt)
	if got := factorNames(after); !slices.Equal(got, []string{exposure.FactorInternetFacing, exposure.FactorProduction}) {
		t.Errorf("after countermeasures: got %v", got)
	}
}
