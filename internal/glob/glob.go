// Package glob matches strings against shell-style wildcard patterns, the
// form rule conditions (glob, iglob), observable name filters and IAM
// policies (actions, resource ARNs) share. It imports only the standard
// library, so the rule engine and the exposure analysis can both use it.
package glob

// Match reports whether s matches the pattern p, where * matches any run of
// characters (including none, '/' and ':') and ? exactly one; every other
// byte matches itself. It backtracks only to the last star, so it runs in
// O(len(s)*len(p)) time at worst, with no exponential blow-up.
func Match(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
