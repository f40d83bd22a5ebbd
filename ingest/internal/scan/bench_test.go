package scan

import (
	"bytes"
	"os"
	"testing"
)

// BenchmarkValidate is the floor of record decoding: one validating pass
// over a 1.8 KB CloudTrail record.
func BenchmarkValidate(b *testing.B) {
	data, err := os.ReadFile("../../cloudtrail/testdata/s3_putobject_instance_role.json")
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.TrimSpace(data)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Validate(data, 64); err != nil {
			b.Fatal(err)
		}
	}
}
