package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"path"
	"reflect"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"

	"github.com/musubi-xdr/musubi/internal/glob"
	"github.com/musubi-xdr/musubi/ocsf"
)

// Limits that keep a hostile or careless expression from hurting the engine.
// They apply at load (parse and check) and at evaluation.
const (
	// MaxExpressionSize is the longest condition, in code points.
	MaxExpressionSize = 8192
	// MaxExpressionNodes is the largest condition, in AST nodes after macro
	// expansion.
	MaxExpressionNodes = 2000
	// MaxRecursion is the deepest nesting the parser accepts.
	MaxRecursion = 48
	// MaxComprehensionNesting is how deep comprehensions (all, exists, map,
	// filter) may nest: a comprehension inside a comprehension is fine, a
	// third level is rejected.
	MaxComprehensionNesting = 2
	// MaxRegexProgramSize caps the compiled size of a regular expression.
	MaxRegexProgramSize = 1000
	// MaxEstimatedCost is the highest worst-case cost a condition may have,
	// estimated over the size bounds below.
	MaxEstimatedCost = 25_000_000
	// CostLimit stops one evaluation once its actual cost exceeds it.
	CostLimit = 1_000_000
	// estimated sizes used for the worst-case estimate: the longest string
	// field and the longest list (observables, lineage, resources) that the
	// ingest limits let through.
	estimatedMaxString = 16 << 10
	estimatedMaxList   = 256
	estimatedMaxItem   = 1024
)

// Library returns Musubi's CEL function library. It is the one place our
// functions are declared, so the correlation engine compiles its
// expressions with exactly the same functions as detection rules.
//
// Functions (s is a string, p a string or a list of strings, where a list
// means "any of"):
//
//	cidr_match(ip, cidr | [cidrs])  ip inside a CIDR block (false if not an IP)
//	is_public_ip(ip)                a globally routable address
//	is_private_ip(ip)               RFC 1918, RFC 4193, loopback, link-local or shared (100.64/10)
//	is_ip(s)                        s parses as an IPv4 or IPv6 address
//	s.iequals(p)                    case-insensitive equality
//	s.icontains(p)                  case-insensitive substring
//	s.istartsWith(p), s.iendsWith(p)
//	s.glob(p), s.iglob(p)           shell-style glob: * any run (including /), ? one character
//	base64_decode(s)                standard, URL or unpadded base64 decoded as a string; "" if invalid
//	basename(path)                  last element of a / separated path
//	json_text(v)                    v (request, response or a member) as compact JSON, keys sorted; "" if not JSON
//
// The standard matches() takes RE2 regular expressions; the loader requires
// the pattern to be a constant, so it is compiled once at load.
func Library() cel.EnvOption {
	return cel.Lib(library{})
}

type library struct{}

func (library) LibraryName() string { return "musubi.rules" }

func (library) ProgramOptions() []cel.ProgramOption { return nil }

func (library) CompileOptions() []cel.EnvOption {
	str, lst := cel.StringType, cel.ListType(cel.StringType)
	boolStr := func(f func(string) bool) cel.OverloadOpt {
		return cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.Value().(string)
			return types.Bool(ok && f(s))
		})
	}
	// strMatch declares a member function s.name(p) with a string and a
	// list overload, both answering "s matches any p".
	strMatch := func(name string, f func(s, p string) bool) cel.EnvOption {
		return cel.Function(name,
			cel.MemberOverload("string_"+name+"_string", []*cel.Type{str, str}, cel.BoolType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					s, ok1 := a.Value().(string)
					p, ok2 := b.Value().(string)
					return types.Bool(ok1 && ok2 && f(s, p))
				})),
			cel.MemberOverload("string_"+name+"_list", []*cel.Type{str, lst}, cel.BoolType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					s, ok := a.Value().(string)
					if !ok {
						return types.False
					}
					return types.Bool(anyString(b, func(p string) bool { return f(s, p) }))
				})),
		)
	}
	return []cel.EnvOption{
		cel.Function("cidr_match",
			cel.Overload("cidr_match_string_string", []*cel.Type{str, str}, cel.BoolType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					ip, _ := a.Value().(string)
					c, _ := b.Value().(string)
					return types.Bool(cidrMatch(ip, c))
				})),
			cel.Overload("cidr_match_string_list", []*cel.Type{str, lst}, cel.BoolType,
				cel.BinaryBinding(func(a, b ref.Val) ref.Val {
					ip, _ := a.Value().(string)
					return types.Bool(anyString(b, func(c string) bool { return cidrMatch(ip, c) }))
				})),
		),
		cel.Function("is_public_ip", cel.Overload("is_public_ip_string", []*cel.Type{str}, cel.BoolType, boolStr(IsPublicIP))),
		cel.Function("is_private_ip", cel.Overload("is_private_ip_string", []*cel.Type{str}, cel.BoolType, boolStr(IsPrivateIP))),
		cel.Function("is_ip", cel.Overload("is_ip_string", []*cel.Type{str}, cel.BoolType, boolStr(func(s string) bool {
			_, err := netip.ParseAddr(s)
			return err == nil
		}))),
		strMatch("iequals", strings.EqualFold),
		strMatch("icontains", icontains),
		strMatch("istartsWith", func(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }),
		strMatch("iendsWith", func(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[len(s)-len(p):], p) }),
		strMatch("glob", Glob),
		strMatch("iglob", func(s, p string) bool { return Glob(strings.ToLower(s), strings.ToLower(p)) }),
		cel.Function("base64_decode", cel.Overload("base64_decode_string", []*cel.Type{str}, str,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, _ := v.Value().(string)
				return types.String(base64Decode(s))
			}))),
		cel.Function("json_text", cel.Overload("json_text_dyn", []*cel.Type{cel.DynType}, str,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(jsonText(v.Value())) }))),
		cel.Function("basename", cel.Overload("basename_string", []*cel.Type{str}, str,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, _ := v.Value().(string)
				if s == "" {
					return types.String("")
				}
				return types.String(path.Base(s))
			}))),
	}
}

// CostTrackers prices Musubi's library functions at evaluation the way the
// standard library prices string functions: a scan costs one unit per ten
// bytes (times the number of patterns of a list argument), so a function over
// a huge field runs into the cost limit like matches() does. Pass them to
// env.Program with cel.CostTrackerOptions.
func CostTrackers() []cost.TrackerOption {
	scan := func(args []ref.Val, _ ref.Val) *uint64 {
		n := uint64(1)
		if len(args) > 0 {
			if s, ok := args[0].Value().(string); ok {
				n += uint64(len(s)) / 10
			}
		}
		if len(args) > 1 {
			switch p := args[1].(type) {
			case types.String:
				n += uint64(len(p)) / 10
			case traits.Sizer: // a list of patterns
				if k, ok := p.Size().(types.Int); ok && k > 1 {
					n *= uint64(k)
				}
			}
		}
		return &n
	}
	glob := func(args []ref.Val, result ref.Val) *uint64 {
		n := *scan(args, result)
		if len(args) > 1 {
			if p, ok := args[1].Value().(string); ok {
				n *= max(1, uint64(strings.Count(p, "*")))
			}
		}
		return &n
	}
	var opts []cost.TrackerOption
	for _, name := range []string{"iequals", "icontains", "istartsWith", "iendsWith"} {
		opts = append(opts,
			cost.OverloadTracker("string_"+name+"_string", scan),
			cost.OverloadTracker("string_"+name+"_list", scan))
	}
	for _, name := range []string{"glob", "iglob"} {
		opts = append(opts,
			cost.OverloadTracker("string_"+name+"_string", glob),
			cost.OverloadTracker("string_"+name+"_list", glob))
	}
	return append(opts,
		cost.OverloadTracker("base64_decode_string", scan),
		cost.OverloadTracker("basename_string", scan),
		cost.OverloadTracker("json_text_dyn", func([]ref.Val, ref.Val) *uint64 { n := uint64(estimatedMaxString / 10); return &n }))
}

// NewEnv returns the CEL environment rules compile in: the OCSF event as the
// typed variable `event` (field names from the `cel` struct tags), the free-form
// API bodies as `request` and `response` (map(string, dyn), decoded lazily),
// the standard string and optional extensions, Musubi's Library and the
// load-time limits. extra options are appended, so the correlation engine can
// declare its own variables over the same functions.
func NewEnv(extra ...cel.EnvOption) (*cel.Env, error) {
	opts := []cel.EnvOption{
		ext.NativeTypes(reflect.TypeFor[ocsf.Event](), ext.ParseStructTags(true)),
		cel.Variable("event", cel.ObjectType("ocsf.Event")),
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("response", cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
		ext.Bindings(),
		cel.OptionalTypes(),
		Library(),
		cel.ParserExpressionSizeLimit(MaxExpressionSize),
		cel.ExpressionNodeLimit(MaxExpressionNodes),
		cel.ParserRecursionLimit(MaxRecursion),
		cel.RegexProgramSizeLimit(MaxRegexProgramSize),
		cel.ExtendedValidations(),
		cel.ASTValidators(
			cel.ValidateComprehensionNestingLimit(MaxComprehensionNesting),
			cel.ValidateRegexProgramSizeLimit(MaxRegexProgramSize),
		),
	}
	return cel.NewEnv(append(opts, extra...)...)
}

func anyString(list ref.Val, f func(string) bool) bool {
	l, ok := list.(traits.Lister)
	if !ok {
		return false
	}
	n, _ := l.Size().Value().(int64)
	for i := int64(0); i < n; i++ {
		if s, ok := l.Get(types.Int(i)).Value().(string); ok && f(s) {
			return true
		}
	}
	return false
}

func cidrMatch(ip, cidr string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		// A bare address is a /32 or /128.
		b, err := netip.ParseAddr(cidr)
		return err == nil && a.Unmap() == b.Unmap()
	}
	return p.Contains(a.Unmap())
}

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// IsPrivateIP reports whether s is an address that is not reachable from the
// internet: RFC 1918 and RFC 4193 ranges, loopback, link-local (including the
// instance metadata address 169.254.169.254) and the shared address space.
func IsPrivateIP(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || sharedAddressSpace.Contains(a)
}

// IsPublicIP reports whether s is a globally routable unicast address. A
// host name (CloudTrail records "ec2.amazonaws.com" as the source of calls
// made by AWS services) is not.
func IsPublicIP(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsGlobalUnicast() && !IsPrivateIP(s)
}

func icontains(s, sub string) bool {
	if len(sub) > len(s) {
		return false
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func base64Decode(s string) string {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return string(b)
		}
	}
	return ""
}

// Glob reports whether s matches the shell-style pattern p, where * matches
// any run of characters (including /) and ? exactly one; every other
// character matches itself. It runs in O(len(s)*len(p)) time at worst, with
// no backtracking blow-up.
func Glob(s, p string) bool { return glob.Match(s, p) }

// jsonText renders a decoded JSON value as compact JSON with sorted keys and
// without HTML escaping, so a rule can search a whole request or response
// body the way it reads in the record; "" when it is not JSON data.
func jsonText(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}
