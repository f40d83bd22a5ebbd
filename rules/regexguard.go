package rules

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// guardedMatches precompiles a constant pattern of matches() as cel-go's
// own optimization does, and first checks the literals every match of the
// pattern must contain: a text without one of them cannot match, and
// strings.Contains says so far faster than the regexp package, whose
// backtracker tries a pattern such as `\b(cat|less|curl)\b.*\.aws/` at
// every position of a command line that holds no ".aws/" (a quarter of a
// rule's regular expression time on the benchmark's mixed stream went to
// such texts). The answer is the regexp package's in every case
// (FuzzGuardedMatchAgreesWithRegexp). It is registered per overload id,
// which cel-go consults before the function name its own optimization is
// registered under.
func guardedMatches() cel.ProgramOption {
	return cel.OptimizeRegex(
		&interpreter.RegexOptimization{Function: overloads.Matches, OverloadID: overloads.MatchesString, RegexIndex: 1, Factory: guardedMatchCall},
		&interpreter.RegexOptimization{Function: overloads.Matches, OverloadID: overloads.Matches, RegexIndex: 1, Factory: guardedMatchCall},
	)
}

func guardedMatchCall(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
	m, err := sharedGuardedMatch(pattern)
	if err != nil {
		return nil, err
	}
	return interpreter.NewCall(call.ID(), call.Function(), call.OverloadID(), call.Args(), func(values ...ref.Val) ref.Val {
		if len(values) != 2 {
			return types.NoSuchOverloadErr()
		}
		in, ok := values[0].Value().(string)
		if !ok {
			return types.NoSuchOverloadErr()
		}
		return types.Bool(m.match(in))
	}), nil
}

// guardedMatch is a compiled pattern, the literals its matches contain,
// and the answers it gave for short texts.
type guardedMatch struct {
	re       *regexp.Regexp
	required []string
	memo     matchMemo
}

// matchMemo remembers the regular expression's answer for texts of at
// most memoMaxText bytes, up to memoEntries of them, and forgets them all
// when full (about 100 KB at most). A rule's patterns mostly test short
// identifiers that recur from event to event — a session name against
// `^i-[0-9a-f]{8,17}$`, a process's basename against a list of web
// servers — where a map lookup is several times cheaper than running the
// pattern (BenchmarkGuardedMatch).
// Longer texts (command lines, paths, user agents) vary too much to be
// worth keeping and go to the regexp package each time. The texts are
// copied, so the memo holds no event's memory. Evaluations on other
// goroutines do not wait for the lock: while one holds it they run the
// pattern themselves.
type matchMemo struct {
	mu   sync.Mutex
	seen map[string]bool
}

const (
	memoMaxText = 64
	memoEntries = 1024
)

// guardedShared holds one guardedMatch per pattern for every program that
// uses it: the rules that test a session name against the same pattern,
// and the tracked and untracked programs of one rule, share one memo, so
// the first rule's answer serves the rest on the same event and the memos
// take at most about 100 KB per distinct pattern. It keeps up to
// maxSharedPatterns patterns (the pack has 49), so its memos stay within
// about 25 MB; past that (rule sets reloaded again and again with ever new
// patterns) a program gets a guardedMatch of its own, which goes with it.
var guardedShared struct {
	sync.Mutex
	byPattern map[string]*guardedMatch
}

const maxSharedPatterns = 256

func sharedGuardedMatch(pattern string) (*guardedMatch, error) {
	guardedShared.Lock()
	defer guardedShared.Unlock()
	if m, ok := guardedShared.byPattern[pattern]; ok {
		return m, nil
	}
	m, err := newGuardedMatch(pattern)
	if err != nil {
		return nil, err
	}
	if guardedShared.byPattern == nil {
		guardedShared.byPattern = make(map[string]*guardedMatch)
	}
	if len(guardedShared.byPattern) < maxSharedPatterns {
		guardedShared.byPattern[pattern] = m
	}
	return m, nil
}

func newGuardedMatch(pattern string) (*guardedMatch, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	m := &guardedMatch{re: re}
	// regexp.Compile parses with syntax.Perl; what it accepted parses here.
	if p, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		m.required = requiredLiterals(p.Simplify(), nil)
	}
	return m, nil
}

func (m *guardedMatch) match(s string) bool {
	for _, lit := range m.required {
		if !strings.Contains(s, lit) {
			return false
		}
	}
	if len(s) > memoMaxText || !m.memo.mu.TryLock() {
		return m.re.MatchString(s)
	}
	defer m.memo.mu.Unlock()
	ok, known := m.memo.seen[s]
	if !known {
		ok = m.re.MatchString(s)
		if m.memo.seen == nil || len(m.memo.seen) >= memoEntries {
			m.memo.seen = make(map[string]bool, 64)
		}
		m.memo.seen[strings.Clone(s)] = ok
	}
	return ok
}

// requiredLiterals appends to out the case-sensitive literals that every
// text matched by re contains: a literal, the parts of a concatenation,
// the group of a capture and the operand of a repetition of at least one.
// Alternations, optional parts and case-folded literals require nothing
// here (they are skipped, never guessed).
func requiredLiterals(re *syntax.Regexp, out []string) []string {
	switch re.Op {
	case syntax.OpLiteral:
		// U+FFFD is left out: the regexp package reads each invalid UTF-8
		// byte of the text as that rune, which the text does not contain
		// as bytes.
		if lit := string(re.Rune); re.Flags&syntax.FoldCase == 0 && lit != "" && !slices.Contains(re.Rune, utf8.RuneError) && !slices.Contains(out, lit) {
			out = append(out, lit)
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			out = requiredLiterals(sub, out)
		}
	case syntax.OpCapture, syntax.OpPlus:
		out = requiredLiterals(re.Sub[0], out)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			out = requiredLiterals(re.Sub[0], out)
		}
	}
	return out
}
