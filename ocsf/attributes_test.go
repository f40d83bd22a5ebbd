package ocsf

import (
	"reflect"
	"testing"
)

// TestEveryModelAttributeHasAClass checks that every top-level attribute
// of the model is defined by at least one class, so the lint of rules
// never rejects a field the normalizers fill.
func TestEveryModelAttributeHasAClass(t *testing.T) {
	et := reflect.TypeFor[Event]()
	for i := range et.NumField() {
		tag := et.Field(i).Tag.Get("cel")
		if tag == "" || tag == "-" {
			continue
		}
		if len(DefiningClasses(tag)) == 0 {
			t.Errorf("attribute %s: no class defines it", tag)
		}
	}
}

func TestDefines(t *testing.T) {
	for _, tc := range []struct {
		class int
		attr  string
		want  bool
	}{
		{ClassNetworkActivity, "actor", true},
		{ClassNetworkActivity, "process", false},
		{ClassFileSystemActivity, "process", false},
		{ClassFileSystemActivity, "file", true},
		{ClassProcessActivity, "process", true},
		{ClassProcessActivity, "file", false},
		{ClassDNSActivity, "query", true},
		{ClassNetworkActivity, "query", false},
		{ClassAuthentication, "user", true},
		{ClassAPIActivity, "user", false},
		{ClassAPIActivity, "api", true},
		{ClassDetectionFinding, "finding_info", true},
		{ClassDetectionFinding, "dst_endpoint", true}, // Musubi's extension
		{ClassAuthentication, "cloud", true},
		{9999, "time", false},
	} {
		if got := Defines(tc.class, tc.attr); got != tc.want {
			t.Errorf("Defines(%d, %q): got %v, want %v", tc.class, tc.attr, got, tc.want)
		}
	}
}
