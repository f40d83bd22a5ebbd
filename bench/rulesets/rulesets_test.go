package rulesets

import (
	"fmt"
	"testing"

	"github.com/musubi-xdr/musubi/correlate"
	"github.com/musubi-xdr/musubi/rules"
)

func TestWriteLoads(t *testing.T) {
	for _, n := range []int{10, 300} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Write(dir, "../../detections", "", n); err != nil {
				t.Fatal(err)
			}
			set, err := rules.Load(dir)
			if err != nil {
				t.Fatalf("the written set does not load: %v", err)
			}
			if set.Len() != n {
				t.Errorf("got %d rules, want %d", set.Len(), n)
			}
			if n == 10 && set.Rule("host.webshell_written_under_webroot") == nil {
				t.Error("the smallest set lacks the chain's first rule")
			}
			seq, err := correlate.LoadRules(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(seq) == 0 {
				t.Error("no correlation rules copied")
			}
		})
	}
}
