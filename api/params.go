package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// quote renders a user-supplied value for an error message: quoted, with
// at most 64 characters, so a huge value is not echoed back whole.
func quote(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		r := []rune(s)
		return strconv.Quote(string(r[:64])) + "…"
	}
	return strconv.Quote(s)
}

// printable reports whether s is valid UTF-8 without control characters
// (newlines and tabs allowed when multiline).
func printable(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// The times a range may name.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseRange reads from and to (RFC 3339) and checks the range: to after
// from, at most maxTimeRange long (an open end counts from now).
func parseRange(v url.Values, now time.Time, errs []string) (from, to time.Time, _ []string) {
	from, errs = parseTime(v, "from", errs)
	to, errs = parseTime(v, "to", errs)
	end := to
	if end.IsZero() {
		end = now
	}
	if !from.IsZero() {
		switch {
		case !to.IsZero() && to.Before(from):
			errs = append(errs, "to is before from")
		case end.Sub(from) > maxTimeRange:
			errs = append(errs, fmt.Sprintf("the time range is longer than %d days", int(maxTimeRange.Hours()/24)))
		}
	}
	return from, to, errs
}

// parseTime reads the RFC 3339 time parameter name; zero when it is
// absent or invalid.
func parseTime(v url.Values, name string, errs []string) (time.Time, []string) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, errs
	}
	t, err := time.Parse(time.RFC3339, s)
	switch {
	case err != nil:
		errs = append(errs, fmt.Sprintf("%s %s is not an RFC 3339 time like 2026-11-20T10:00:00Z", name, quote(s)))
	case t.Before(minTime) || !t.Before(maxTime):
		errs = append(errs, fmt.Sprintf("%s is outside 1970-01-01 .. 2199-12-31", name))
	default:
		return t, errs
	}
	return time.Time{}, errs
}

// parseSeverity reads the OCSF severity id parameter name, lowest..6; 0
// when it is absent.
func parseSeverity(v url.Values, name string, lowest int, errs []string) (int, []string) {
	s := v.Get(name)
	if s == "" {
		return 0, errs
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lowest || n > 6 {
		errs = append(errs, fmt.Sprintf("%s %s is not an OCSF severity id %d..6", name, quote(s), lowest))
	}
	return n, errs
}

// parseLimit reads the page size.
func parseLimit(v url.Values, def int, errs []string) (int, []string) {
	s := v.Get("limit")
	if s == "" {
		return def, errs
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxPageSize {
		return def, append(errs, fmt.Sprintf("limit %s is not a number in 1..%d", quote(s), maxPageSize))
	}
	return n, errs
}

// tenantParam narrows tenants (those the token may read) to the tenant
// query parameter, when one is given; a tenant outside them is an error.
func tenantParam(v url.Values, tenants []string, errs []string) ([]string, []string) {
	t := v.Get("tenant")
	if t == "" {
		return tenants, errs
	}
	if !slices.Contains(tenants, t) {
		errs = append(errs, fmt.Sprintf("tenant %s is not one of this token's tenants", quote(t)))
	}
	return []string{t}, errs
}
