package rules

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
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
		want := re.MatchString(text)
		// The second answer comes from the memo when the text is short.
		for i := range 2 {
			if got := m.match(text); got != want {
				t.Fatalf("pattern %q, text %q, call %d: guarded %v, regexp %v (required %q)", pattern, text, i+1, got, want, m.required)
			}
		}
	})
}

// The memo answers a repeated short text as the pattern did, keeps at most
// memoEntries texts, and answers the same from many goroutines at once.
func TestGuardedMatchMemo(t *testing.T) {
	m, err := newGuardedMatch(`^i-[0-9a-f]{8,17}$`)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"i-0123456789abcdef0", "i-xyz", "web-role", strings.Repeat("i-0", 30)}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 * memoEntries {
				s := texts[(i+g)%len(texts)]
				if i%3 == 0 {
					s = fmt.Sprintf("i-%016x", i) // distinct texts fill the memo
				}
				if got, want := m.match(s), m.re.MatchString(s); got != want {
					t.Errorf("match(%q) = %v, want %v", s, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(m.memo.seen); n == 0 || n > memoEntries {
		t.Errorf("memo holds %d texts, want 1 to %d", n, memoEntries)
	}
	for s := range m.memo.seen {
		if len(s) > memoMaxText {
			t.Errorf("memo holds a text of %d bytes, longer than %d", len(s), memoMaxText)
		}
	}
}

// Programs that use the same pattern share its guardedMatch, and so its
// memo; another pattern gets its own.
func TestGuardedMatchShared(t *testing.T) {
	a, err := sharedGuardedMatch(`^i-[0-9a-f]{8,17}$`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sharedGuardedMatch(`^i-[0-9a-f]{8,17}$`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sharedGuardedMatch(`^(nginx|httpd)$`)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a == c {
		t.Errorf("same pattern shared: %v, other pattern apart: %v", a == b, a != c)
	}
	if _, err := sharedGuardedMatch(`(`); err == nil {
		t.Error("an invalid pattern compiled")
	}
	// Two rules' programs over the same pattern share it through cel-go's
	// regex optimization.
	s := mustLoad(t, map[string]string{
		"a.yaml": ruleYAML("t.a", `'event.actor.session.name.matches("^i-[0-9a-f]{8,17}x$")'`),
		"b.yaml": ruleYAML("t.b", `'event.actor.session.name.matches("^i-[0-9a-f]{8,17}x$") && event.api.operation == "X"'`),
	})
	guardedShared.Lock()
	m := guardedShared.byPattern["^i-[0-9a-f]{8,17}x$"]
	guardedShared.Unlock()
	if m == nil {
		t.Fatal("the rules' pattern is not in the shared registry")
	}
	e := NewEngine(nil, nil)
	e.Swap(s)
	ev := ctEvent("X", "")
	ev.Actor.Session.Name = "i-0123456789abcdefx"
	if got := e.Evaluate(ev); len(got) != 2 {
		t.Fatalf("got %d alerts, want both rules'", len(got))
	}
	m.memo.mu.Lock()
	defer m.memo.mu.Unlock()
	if ok, known := m.memo.seen[ev.Actor.Session.Name]; !known || !ok || len(m.memo.seen) != 1 {
		t.Errorf("the shared memo holds %v, want the one session name both rules tested, matched", m.memo.seen)
	}
}

// BenchmarkGuardedMatch runs a session-name pattern over texts that recur,
// as a stream's session names do, with and without the memo.
func BenchmarkGuardedMatch(b *testing.B) {
	texts := make([]string, 500)
	for i := range texts {
		texts[i] = fmt.Sprintf("i-%017x", i*7919)
	}
	m, err := newGuardedMatch(`^i-[0-9a-f]{8,17}$`)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("memo", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			m.match(texts[i%len(texts)])
		}
	})
	b.Run("regexp", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			m.re.MatchString(texts[i%len(texts)])
		}
	})
}
