package gen

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/musubi-xdr/musubi/eval"
)

// Scenario is one generated scenario: its files (paths relative to the
// scenario directory, in name order) and its ground truth.
type Scenario struct {
	Name    string
	Variant Variant
	Seed    uint64
	Files   []File
	Truth   eval.Truth
	// Records counts the raw records written.
	Records int
}

// File is one raw delivery file.
type File struct {
	Path string
	Data []byte
}

// Generate returns n scenarios from seed, cycling through Variants.
func Generate(n int, seed uint64) ([]Scenario, error) {
	var out []Scenario
	for i := range n {
		v := Variants[i%len(Variants)]
		s, err := Build(v, seed*1_000_003+uint64(i))
		if err != nil {
			return nil, err
		}
		s.Name = fmt.Sprintf("%03d-%s", i, v)
		out = append(out, s)
	}
	return out, nil
}

// Build generates one scenario of variant v from seed.
func Build(v Variant, seed uint64) (Scenario, error) {
	r := newRNG(seed)
	w := newWorld(r, v == VariantCrossAccount)
	d := &day{w: w, r: r, noAgent: map[string]bool{}}
	if v == VariantGDRuntime {
		for _, h := range append([]host{w.web}, w.apps...) {
			d.noAgent[h.name] = true
		}
	}
	days := 1
	if v == VariantSlowTwoDays {
		days = 2
	}
	from, to := w.day, w.day.Add(time.Duration(days)*24*time.Hour)
	attackHour := float64(r.between(7, 19)) + r.Float64()
	attackAt := w.at(attackHour)

	// The hard negatives: legitimate deployments always, hours and
	// sometimes minutes before the attack; the rest by draw, at least five.
	for _, h := range []float64{attackHour - float64(r.between(2, 6)) - r.Float64(), attackHour + 2.5 + r.Float64()*3} {
		if h > 0.5 && h < 23.5 {
			d.legitDeploy(w.at(h))
		}
	}
	if r.chance(0.5) {
		d.legitDeploy(attackAt.Add(-time.Duration(r.between(20, 90)) * time.Minute))
	}
	negatives := []func(){
		func() { d.instanceRoles(from, to) },
		func() { d.bastionSSH(r.within(from.Add(7*time.Hour), 10*time.Hour)) },
		func() { d.imdsJobs(from, to) },
		func() { d.servicePrincipals(from, to) },
		func() { d.webrootUpload(r.within(from.Add(8*time.Hour), 10*time.Hour)) },
		func() { d.logRotation(from.Add(6*time.Hour + time.Duration(r.between(0, 59))*time.Minute)) },
		func() { d.falcoNoise(r.within(from.Add(5*time.Hour), 2*time.Hour)) },
		func() { d.sharedNAT(from.Add(7*time.Hour), from.Add(19*time.Hour)) },
		func() { d.bastionSSH(r.within(from.Add(9*time.Hour), 8*time.Hour)) },
	}
	for i, p := range r.Perm(len(negatives)) {
		if i < 5 || r.chance(0.6) {
			negatives[p]()
		}
	}
	d.background(from, to, 2*days)

	truth := eval.Truth{Variant: string(v), Seed: seed, HubIPs: []string{w.natIP + "/32", w.hostNAT + "/32"}}
	var ch chain
	if v != VariantBenignDay {
		d.as(labelAttack, func() { ch = d.attack(v, attackAt) })
		truth.Attack = &eval.Attack{MinSeverity: 4, Entities: ch.entities}
		truth.Description = fmt.Sprintf("%s: %s (%s) exploited at %s; stolen keys used from %s.", v, w.web.name, w.web.instance, iso(attackAt), ch.attackIPs[1])
	} else {
		truth.Description = fmt.Sprintf("benign day on %s: deployments, admins, jobs, services; no attack.", w.day.Format("2006-01-02"))
	}
	// Unrelated attacks in some scenarios.
	var unrel []unrelatedAttack
	kinds := []func(time.Time) unrelatedAttack{d.consoleBruteForce, d.portScan, d.reconCaller}
	for _, k := range r.Perm(len(kinds))[:r.IntN(3)] {
		t := r.within(from.Add(time.Hour), 22*time.Hour)
		name := ""
		d.as("pending", func() {
			u := kinds[k](t)
			name = u.name
			unrel = append(unrel, u)
		})
		for i := range d.recs {
			if d.recs[i].label == "pending" {
				d.recs[i].label = unrelatedLabel(name)
			}
		}
	}
	truth.Benign = eval.Benign{Entities: d.benign, MaxSeverity: 3}
	files, uids, seen, n, err := pack(w, d.recs, r)
	if err != nil {
		return Scenario{}, fmt.Errorf("%s seed %d: %w", v, seed, err)
	}
	if truth.Attack != nil {
		truth.Attack.EventUIDs = uids[labelAttack]
		if err := observed(truth.Attack.Entities, seen[labelAttack]); err != nil {
			return Scenario{}, fmt.Errorf("%s seed %d: attack: %w", v, seed, err)
		}
	}
	for _, u := range unrel {
		l := unrelatedLabel(u.name)
		if err := observed(u.entities, seen[l]); err != nil {
			return Scenario{}, fmt.Errorf("%s seed %d: %s: %w", v, seed, u.name, err)
		}
		truth.Unrelated = append(truth.Unrelated, eval.Unrelated{Name: u.name, MinSeverity: u.minSeverity, Entities: u.entities, EventUIDs: uids[l]})
	}
	if err := observed(truth.Benign.Entities, seen["*"]); err != nil {
		return Scenario{}, fmt.Errorf("%s seed %d: benign: %w", v, seed, err)
	}
	if err := truth.Validate(); err != nil {
		return Scenario{}, err
	}
	return Scenario{Variant: v, Seed: seed, Files: files, Truth: truth, Records: n}, nil
}

// observed checks that every entity is among the observables of the
// decoded events, so that the truth names what the normalizers produce.
func observed(entities []string, seen map[string]bool) error {
	var missing []string
	for _, e := range entities {
		if !seen[e] {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("entities not found in the decoded events: %v", missing)
	}
	return nil
}

// Write writes the scenario under dir/s.Name.
func (s Scenario) Write(dir string) error {
	root := filepath.Join(dir, s.Name)
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	for _, f := range s.Files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	data, err := s.Truth.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, "expected.json"), data, 0o644)
}

func sortFiles(fs []File) { sort.Slice(fs, func(i, j int) bool { return fs[i].Path < fs[j].Path }) }
