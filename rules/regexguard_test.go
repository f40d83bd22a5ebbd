package rules

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"testing"
)

func TestRequiredLiterals(t *testing.T) {
	for _, c := range []struct {
		pattern string
		want    []string
	}{
		{`\b(cat|less|curl)\b.*\.aws/(credentials|config)`, []string{".aws/", "c"}}, // the alternation's common prefix, factored out by the parser
		{`\b(env|printenv|set)\b.*\|\s*grep\s.*AWS_(SECRET|SESSION|ACCESS)`, []string{"|", "grep", "AWS_"}},
		{`^i-[0-9a-f]{8,17}$`, []string{"i-"}},
		{`^(nginx|apache2?|httpd)$`, nil},
		{`(?i)aws_secret`, nil},
		{`x(abc)+y?`, []string{"x", "abc"}},
		{`(ab){2,3}`, []string{"ab"}},
		{`(ab)*c`, []string{"c"}},
		{`a|b`, nil},
		{`\x{FFFD}x`, nil},
		{`(?s)begin.*end`, []string{"begin", "end"}},
	} {
		re, err := syntax.Parse(c.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := requiredLiterals(re.Simplify(), nil); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.pattern, got, c.want)
		}
	}
}

// The guard never changes an answer: for any pattern the regexp package
// compiles and any text, the guarded match is the regexp's.
func FuzzGuardedMatchAgreesWithRegexp(f *testing.F) {
	for _, s := range [][2]string{
		{`\b(cat|less|more|head|tail|cp|scp|base64|strings|xxd|curl)\b.*\.aws/(credentials|config)`, "cat /home/u/.aws/credentials"},
		{`\b(cat|less)\b.*\.aws/`, "less ~/.aw s/config"},
		{`^i-[0-9a-f]{8,17}$`, "i-0123456789abcdef0"},
		{`\x{FFFD}x`, "\xffx"},
		{`(?i)SeCrEt`, "my secret"},
		{`a{2}b+`, "aab"},
		{`(ab){2,3}`, "ababx"},
		{`.`, "\xff"},
		{`é+`, "e\u0301"},
		{`^(nginx|apache2?|php-fpm[0-9.]*)$`, "php-fpm8.2"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		m, err := newGuardedMatch(pattern)
		if err != nil {
			t.Fatalf("%q compiles with regexp but not guarded: %v", pattern, err)
		}
		if got, want := m.match(text), re.MatchString(text); got != want {
			t.Fatalf("pattern %q, text %q: guarded %v, regexp %v (required %q)", pattern, text, got, want, m.required)
		}
	})
}
