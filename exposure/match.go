package exposure

import (
	"cmp"
	"slices"
	"strings"

	"github.com/musubi-xdr/musubi/ingest/awsconfig"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Match is a predicted path that an incident's entities lie on.
type Match struct {
	Path Path `json:"path"`
	// Shared lists each path node the incident touched and the incident's
	// entity that resolved to it, in path order.
	Shared []SharedNode `json:"shared"`
	// Since is the capture time (ms since the Unix epoch) of the newest
	// configuration item among the path's assets (instance, role, bucket,
	// pipeline, deployment group): from then on the inventory showed the
	// path, so it was predictable from then.
	Since int64 `json:"since"`
}

// SharedNode is one path node that an incident entity resolved to.
type SharedNode struct {
	Node Node `json:"node"`
	// Entity is the incident's entity as kind:value.
	Entity string `json:"entity"`
}

// Walked returns the paths an incident's entities lie on: those with at
// least one node that an entity resolves to (a role session to its role, an
// object or bucket to the path's object and bucket, an address to its
// instance, as AssetRisk resolves them), most shared nodes first, then by
// risk and id. Paths come from Find on the same inventory.
func Walked(inv *Inventory, paths []Path, entities []EntityRef) []Match {
	// Each entity's keys: what it names directly and the assets it
	// resolves to, named as path nodes name them.
	type keyed struct {
		name string
		keys []string
	}
	ents := make([]keyed, 0, len(entities))
	for _, e := range entities {
		k := keyed{name: string(e.Kind) + ":" + e.Value, keys: []string{string(e.Kind) + ":" + e.Value}}
		for _, it := range inv.resolve(e) {
			if nk := nodeKey(it); nk != "" {
				k.keys = append(k.keys, nk)
			}
			if it.Bucket != nil || it.ResourceType == awsconfig.TypeBucket {
				k.keys = append(k.keys, "bucket:"+firstOf(it.ResourceName, it.ResourceID))
			}
		}
		ents = append(ents, k)
	}
	slices.SortFunc(ents, func(a, b keyed) int { return strings.Compare(a.name, b.name) })
	var out []Match
	for _, p := range paths {
		m := Match{Path: p}
		for _, n := range p.Nodes() {
			keys := []string{string(n.Entity) + ":" + n.Value}
			if n.Entity == ocsf.EntityObject {
				bucket, _, _ := strings.Cut(n.Value, "/")
				keys = append(keys, "bucket:"+bucket)
			}
			for _, e := range ents {
				if slices.ContainsFunc(e.keys, func(k string) bool { return slices.Contains(keys, k) }) {
					m.Shared = append(m.Shared, SharedNode{Node: n, Entity: e.name})
					break
				}
			}
		}
		if len(m.Shared) == 0 {
			continue
		}
		m.Since = inv.since(&p)
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Match) int {
		return cmp.Or(cmp.Compare(len(b.Shared), len(a.Shared)), cmp.Compare(b.Path.Risk, a.Path.Risk), strings.Compare(a.Path.ID, b.Path.ID))
	})
	return out
}

// since is the newest capture time among the items of p's assets.
func (inv *Inventory) since(p *Path) int64 {
	var t int64
	for _, n := range p.Nodes() {
		for _, it := range inv.resolve(EntityRef{Kind: n.Entity, Value: n.Value, Account: n.Account}) {
			t = max(t, it.CaptureTime)
		}
	}
	return t
}
