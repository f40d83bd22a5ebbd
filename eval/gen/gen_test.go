package gen

import "testing"

func TestBuildEveryVariant(t *testing.T) {
	for i, v := range Variants {
		s, err := Build(v, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d records, %d files, attack uids %d, benign %v", v, s.Records, len(s.Files), func() int {
			if s.Truth.Attack == nil {
				return 0
			}
			return len(s.Truth.Attack.EventUIDs)
		}(), s.Truth.Benign.Entities)
	}
}
