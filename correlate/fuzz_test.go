package correlate

import "testing"

// FuzzParseRules: the correlation rule parser never panics on any input.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(gapRule))
	f.Add([]byte(thresholdRule))
	f.Add([]byte(absenceRule))
	f.Add([]byte("kind: correlation\nstages: [{alert: 'true'}]\n"))
	f.Add([]byte("kind: detection\nid: x\n---\nkind: correlation\nid: y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRules("fuzz.yaml", data)
		if err == nil {
			for _, r := range rs {
				if r.ID == "" || len(r.Stages) == 0 {
					t.Fatalf("accepted an incomplete rule: %+v", r)
				}
			}
		}
	})
}
