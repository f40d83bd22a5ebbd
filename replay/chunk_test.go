package replay

import (
	"context"
	"slices"
	"testing"

	"github.com/musubi-xdr/musubi/config"
	"github.com/musubi-xdr/musubi/eval/gen"
	"github.com/musubi-xdr/musubi/incident"
	"github.com/musubi-xdr/musubi/storage"
)

// chunked replays dir with Stream, the correlator receiving size events
// per call, and returns the open incidents (see graphs).
func chunked(t *testing.T, o Options, dir string, size int) []string {
	t.Helper()
	inputs, cleanup, err := Inputs([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	s, err := NewStream(o, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	s.Chunk = size
	var incs []incident.Incident
	if _, err := s.Run(context.Background(), inputs, func(b storage.Batch) error {
		incs = append(incs, b.Incidents...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return graphs(incs)
}

// TestChunkingInvariance replays a generated account day, in event-time
// order, with the correlator receiving it in batches of different sizes:
// the incidents must not depend on where the batches were cut. In this
// scenario two medium Falco folds on different hosts (db-1, cron-1) are
// reachable from each other only through their shared NAT address, and
// only through links seen after both were placed: cut in small batches,
// those links used to bridge them by the looser rules of a new link, while
// in one batch the same links were known before the alerts were placed and
// did not join them. In scenarios 3 and 14 a GuardDuty finding reports the
// web instance's own public address after the instance's first calls from
// it: in one batch the report used to reach back and hold those calls as
// expected sources, while in small batches they were already placed. In
// scenarios 15 and 18 an incident changed in a batch used to be rendered
// after that batch's eviction: in one batch a deployment that linked two
// of its hosts hours before the batch's end was gone from the rendering,
// in small batches it was not. In scenario 13 two hosts are joined through
// a deployment and through an address, equally short paths: which one
// explained the join followed the order the links were learned in, which
// eviction changes. In scenario 18 a high Falco alert on app-1 and, 95
// minutes later, the informational CodeDeploy alert of a benign deployment
// to app-1 are connected only through the host (a weak path): in one batch
// the host alert is placed before the deployment alert exists, and the
// deployment alert is too low to join through the host; in batches of 100
// a later link made the host alert look again (see bridge), and it used to
// reach the deployment alert's incident because only the seeker's severity
// was checked, not that of the alert holding the deployment.
func TestChunkingInvariance(t *testing.T) {
	scs, err := gen.Generate(19, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{3, 7, 13, 14, 15, 18} {
		t.Run(scs[i].Name, func(t *testing.T) { chunkingInvariant(t, scs[i], 100, 300) })
	}
}

func chunkingInvariant(t *testing.T, sc gen.Scenario, sizes ...int) {
	dir := t.TempDir()
	if err := sc.Write(dir); err != nil {
		t.Fatal(err)
	}
	// As `musubi replay` runs by default: the scenario's NAT addresses are
	// not configured as hubs.
	o := Options{RulesDir: detections, Correlate: config.Default().CorrelateConfig()}
	want := chunked(t, o, dir+"/"+sc.Name, 5000)
	if len(want) < 2 {
		t.Fatalf("%s: %d incidents, want several", sc.Name, len(want))
	}
	for _, size := range sizes {
		got := chunked(t, o, dir+"/"+sc.Name, size)
		if slices.Equal(got, want) {
			continue
		}
		t.Errorf("%s: chunks of %d give other incidents than chunks of 5000", sc.Name, size)
		for _, x := range got {
			if !slices.Contains(want, x) {
				t.Logf("only in chunks of %d: %s", size, x)
			}
		}
		for _, x := range want {
			if !slices.Contains(got, x) {
				t.Logf("only in chunks of 5000: %s", x)
			}
		}
	}
}
