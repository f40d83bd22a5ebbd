package glob

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"", "", true}, {"", "*", true}, {"a", "", false}, {"abc", "a*c", true},
		{"abc", "a*b", false}, {"aXbYc", "a*b*c", true}, {"abc", "???", true},
		{strings.Repeat("a", 5000), strings.Repeat("*a", 40) + "b", false},
		// IAM actions and resource ARNs: * crosses '/' and ':'.
		{"", "*", true}, {"anything/at:all", "*", true}, {"s3:PutObject", "s3:Put*", true}, {"s3:GetObject", "s3:Put*", false},
		{"arn:aws:s3:::acme-release/a/b.zip", "arn:aws:s3:::acme-*/*", true}, {"arn:aws:s3:::acme-release", "arn:aws:s3:::acme-*/*", false},
		{"s3:GetObject", "s3:?etObject", true}, {"s3:etObject", "s3:?etObject", false}, {"aXXbYYc", "a*b*c", true}, {"aXXbYY", "a*b*c", false},
		{"x", "**", true}, {"x", "", false}, {"ab", "abc", false},
	}
	for _, tt := range tests {
		if got := Match(tt.s, tt.p); got != tt.want {
			t.Errorf("Match(%.20q, %.20q): got %v, want %v", tt.s, tt.p, got, tt.want)
		}
	}
}
