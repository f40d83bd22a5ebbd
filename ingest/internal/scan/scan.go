// Package scan holds what every record decoder under ingest/ shares: a
// validating, allocation-free JSON scanner for typed decoding without
// map[string]any, the classified decode error with its machine reason, and
// timestamp parsing.
//
// The scanner reads one JSON value from a byte slice. Strings without escape
// sequences are returned as substrings of a string copy of the same bytes, so
// a decoder that copies a record once gets every field without further
// allocations. Every byte it passes over is validated (strict JSON grammar,
// nesting depth), including values it skips: a raw sub-slice it hands out is
// always valid JSON.
package scan

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Reasons classify a failed record. They are short, stable and few, so they
// can label a metric.
const (
	ReasonInvalidJSON    = "invalid_json"
	ReasonInvalidUTF8    = "invalid_utf8"
	ReasonTooLarge       = "too_large"
	ReasonTooDeep        = "too_deep"
	ReasonUnknownFormat  = "unknown_format"
	ReasonMissingField   = "missing_field"
	ReasonWrongType      = "wrong_type"
	ReasonInvalidValue   = "invalid_value"
	ReasonInvalidGzip    = "invalid_gzip"
	ReasonInvalidBase64  = "invalid_base64"
	ReasonUnsupported    = "unsupported"
	ReasonInternal       = "internal_error"
	ReasonTooManyRecords = "too_many_records"
)

// Error is a classified decode error at a byte offset of a record.
type Error struct {
	Reason string
	Offset int
	Msg    string
}

func (e *Error) Error() string {
	if e.Offset >= 0 {
		return e.Msg + " (at byte " + strconv.Itoa(e.Offset) + ")"
	}
	return e.Msg
}

// DecodeReason returns the machine reason; ingest reads it through an
// interface so that every decoder can classify its own errors.
func (e *Error) DecodeReason() string { return e.Reason }

// ReasonOf classifies an error from a decoder: the reason of an error
// that carries one (DecodeReason: scan's own and the decoders'), else
// invalid_json for encoding/json's syntax errors, wrong_type for its type
// errors, and invalid_value for anything else.
func ReasonOf(err error) string {
	var r interface{ DecodeReason() string }
	if errors.As(err, &r) {
		return r.DecodeReason()
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return ReasonInvalidJSON
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return ReasonWrongType
	}
	return ReasonInvalidValue
}

// Errorf returns an Error without a position.
func Errorf(reason, msg string) *Error { return &Error{Reason: reason, Offset: -1, Msg: msg} }

// special marks the bytes that end the fast path of a string scan.
var special = func() (t [256]bool) {
	for i := 0; i < 0x20; i++ {
		t[i] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// Scanner reads JSON from Buf. Str must hold the same bytes as Buf (a string
// copy or the empty string, in which case substrings are allocated). Errors
// are sticky: after the first one every method returns zero values and every
// loop ends, so decoders check Err once at the end.
type Scanner struct {
	Buf      []byte
	Str      string
	Pos      int
	MaxDepth int
	// Mismatch is set when a typed accessor met a value of another type; the
	// value is skipped and the accessor returns the zero value.
	Mismatch bool
	depth    int
	err      *Error
	// arrays has bit d set when the container at depth d is an array, so
	// that More accepts only its own closing bracket. Depths past 256 use
	// deep, allocated only for such limits.
	arrays [4]uint64
	deep   []bool
}

// New returns a scanner over buf; str is the same bytes as a string, or "".
func New(buf []byte, str string, maxDepth int) Scanner {
	if maxDepth <= 0 {
		maxDepth = 64
	}
	return Scanner{Buf: buf, Str: str, MaxDepth: maxDepth}
}

// Err returns the first error, or nil.
func (s *Scanner) Err() error {
	if s.err == nil {
		return nil
	}
	return s.err
}

// Failed reports whether an error occurred.
func (s *Scanner) Failed() bool { return s.err != nil }

// Fail records an error at the current position unless one is recorded.
func (s *Scanner) Fail(reason, msg string) {
	if s.err == nil {
		s.err = &Error{Reason: reason, Offset: s.Pos, Msg: msg}
	}
	s.Pos = len(s.Buf)
}

func (s *Scanner) sub(a, b int) string {
	if len(s.Str) == len(s.Buf) {
		return s.Str[a:b]
	}
	return string(s.Buf[a:b])
}

func (s *Scanner) ws() {
	for s.Pos < len(s.Buf) && s.Buf[s.Pos] <= ' ' {
		switch s.Buf[s.Pos] {
		case ' ', '\t', '\n', '\r':
			s.Pos++
		default:
			return
		}
	}
}

// plain returns the index of the first byte at or after i that ends the fast
// path of a string: a quote, a backslash or a control character. It looks at
// eight bytes at a time (SWAR): string scanning dominates decoding time.
func plain(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (ones * '"')
		bs := x ^ (ones * '\\')
		// A byte is flagged when it is zero in q or bs, or below 0x20 in x.
		m := ((q - ones) &^ q) | ((bs - ones) &^ bs) | ((x - ones*0x20) &^ x)
		if m&highs != 0 {
			break
		}
	}
	for i < len(b) && !special[b[i]] {
		i++
	}
	return i
}

// Peek returns the next non-space byte without consuming it, 0 at the end.
func (s *Scanner) Peek() byte {
	s.ws()
	if s.Pos >= len(s.Buf) {
		return 0
	}
	return s.Buf[s.Pos]
}

// AtEnd reports whether only white space is left.
func (s *Scanner) AtEnd() bool { return s.Peek() == 0 && s.Pos >= len(s.Buf) }

// End fails unless only white space is left.
func (s *Scanner) End() {
	if !s.AtEnd() && s.err == nil {
		s.Fail(ReasonInvalidJSON, "data after the JSON value")
	}
}

func (s *Scanner) enter(array bool) bool {
	s.depth++
	if s.depth > s.MaxDepth {
		s.Fail(ReasonTooDeep, "nesting deeper than "+strconv.Itoa(s.MaxDepth))
		return false
	}
	d := s.depth
	if d < 256 {
		if array {
			s.arrays[d>>6] |= 1 << (d & 63)
		} else {
			s.arrays[d>>6] &^= 1 << (d & 63)
		}
		return true
	}
	for len(s.deep) <= d-256 {
		s.deep = append(s.deep, false)
	}
	s.deep[d-256] = array
	return true
}

// inArray reports whether the innermost open container is an array.
func (s *Scanner) inArray() bool {
	d := s.depth
	if d < 256 {
		return s.arrays[d>>6]&(1<<(d&63)) != 0
	}
	return s.deep[d-256]
}

// Object consumes '{' and reports true; on null it reports false; on another
// type it skips the value, sets Mismatch and reports false.
func (s *Scanner) Object() bool { return s.open('{') }

// Array is Object for '['.
func (s *Scanner) Array() bool { return s.open('[') }

func (s *Scanner) open(c byte) bool {
	switch s.Peek() {
	case c:
		s.Pos++
		return s.enter(c == '[')
	case 'n':
		s.literal("null")
		return false
	case 0:
		s.Fail(ReasonInvalidJSON, "unexpected end of input")
		return false
	default:
		s.Mismatch = true
		s.Skip()
		return false
	}
}

// More advances to the next member of the object or element of the array
// just opened; it consumes the closing bracket and reports false at its end.
// first must start true for each object or array.
func (s *Scanner) More(first *bool) bool {
	c := s.Peek()
	if s.err != nil {
		return false
	}
	if c == '}' || c == ']' {
		if (c == ']') != s.inArray() || s.depth == 0 {
			s.Fail(ReasonInvalidJSON, "mismatched closing bracket")
			return false
		}
		s.Pos++
		s.depth--
		return false
	}
	if !*first {
		if c != ',' {
			s.Fail(ReasonInvalidJSON, "expected ',' or closing bracket")
			return false
		}
		s.Pos++
		s.ws()
	}
	*first = false
	if s.Pos >= len(s.Buf) {
		s.Fail(ReasonInvalidJSON, "unexpected end of input")
		return false
	}
	return true
}

// Key reads an object key and the colon after it.
func (s *Scanner) Key() string {
	if s.Peek() != '"' {
		s.Fail(ReasonInvalidJSON, "expected a string key")
		return ""
	}
	k := s.str()
	if s.Peek() != ':' {
		s.Fail(ReasonInvalidJSON, "expected ':'")
		return ""
	}
	s.Pos++
	return k
}

// skipKey consumes an object key and its colon without reading it.
func (s *Scanner) skipKey() {
	if s.Peek() != '"' {
		s.Fail(ReasonInvalidJSON, "expected a string key")
		return
	}
	s.skipString()
	if s.Peek() != ':' {
		s.Fail(ReasonInvalidJSON, "expected ':'")
		return
	}
	s.Pos++
}

// String reads a string value; null gives "", another type sets Mismatch.
func (s *Scanner) String() string {
	switch s.Peek() {
	case '"':
		return s.str()
	case 'n':
		s.literal("null")
	default:
		s.Mismatch = true
		s.Skip()
	}
	return ""
}

// Scalar reads a string, number or boolean as text (numbers and booleans as
// written); objects and arrays set Mismatch.
func (s *Scanner) Scalar() string {
	switch c := s.Peek(); {
	case c == '"':
		return s.str()
	case c == 'n':
		s.literal("null")
	case c == 't' || c == 'f' || c == '-' || (c >= '0' && c <= '9'):
		a := s.Pos
		s.Skip()
		if s.err == nil {
			return s.sub(a, s.Pos)
		}
	default:
		s.Mismatch = true
		s.Skip()
	}
	return ""
}

// Int reads an integer (or a string holding one); ok is false for null,
// another type or a value out of range.
func (s *Scanner) Int() (int64, bool) {
	t := s.Scalar()
	if t == "" || t == "true" || t == "false" {
		return 0, false
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil && f == float64(int64(f)) && f > -9.2e18 && f < 9.2e18 {
		return int64(f), true
	}
	s.Mismatch = true
	return 0, false
}

// Float reads a number (or a string holding one).
func (s *Scanner) Float() (float64, bool) {
	t := s.Scalar()
	if t == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		s.Mismatch = true
		return 0, false
	}
	return f, true
}

// Bool reads true or false (or a string holding one).
func (s *Scanner) Bool() bool {
	switch s.Scalar() {
	case "true", "True", "TRUE":
		return true
	}
	return false
}

// Raw skips one value and returns its bytes, capped so that an append to the
// result cannot write into the bytes after it. null gives nil.
func (s *Scanner) Raw() []byte {
	s.ws()
	a := s.Pos
	s.Skip()
	if s.err != nil {
		return nil
	}
	if s.Pos-a == 4 && s.Buf[a] == 'n' {
		return nil
	}
	return s.Buf[a:s.Pos:s.Pos]
}

// Skip consumes one value, validating it.
func (s *Scanner) Skip() {
	switch c := s.Peek(); {
	case c == '"':
		s.skipString()
	case c == '{':
		s.Pos++
		if !s.enter(false) {
			return
		}
		for first := true; s.More(&first); {
			s.skipKey()
			s.Skip()
		}
	case c == '[':
		s.Pos++
		if !s.enter(true) {
			return
		}
		for first := true; s.More(&first); {
			s.Skip()
		}
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		s.number()
	case c == 0:
		s.Fail(ReasonInvalidJSON, "unexpected end of input")
	default:
		s.Fail(ReasonInvalidJSON, "invalid character "+strconv.QuoteRune(rune(c)))
	}
}

func (s *Scanner) literal(lit string) {
	if len(s.Buf)-s.Pos >= len(lit) && string(s.Buf[s.Pos:s.Pos+len(lit)]) == lit {
		s.Pos += len(lit)
		return
	}
	s.Fail(ReasonInvalidJSON, "invalid literal")
}

func (s *Scanner) number() {
	b, i := s.Buf, s.Pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		s.Fail(ReasonInvalidJSON, "invalid number")
		return
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.Fail(ReasonInvalidJSON, "invalid number")
			return
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			s.Fail(ReasonInvalidJSON, "invalid number")
			return
		}
	}
	s.Pos = i
}

// skipString consumes a string, validating escapes.
func (s *Scanner) skipString() {
	b := s.Buf
	i := s.Pos + 1
	for {
		i = plain(b, i)
		if i >= len(b) {
			s.Fail(ReasonInvalidJSON, "unterminated string")
			return
		}
		switch b[i] {
		case '"':
			s.Pos = i + 1
			return
		case '\\':
			n := escapeLen(b, i)
			if n == 0 {
				s.Pos = i
				s.Fail(ReasonInvalidJSON, "invalid escape")
				return
			}
			i += n
		default:
			s.Pos = i
			s.Fail(ReasonInvalidJSON, "control character in string")
			return
		}
	}
}

// escapeLen returns the length of the escape sequence at b[i] (a
// backslash), or 0 when it is invalid.
func escapeLen(b []byte, i int) int {
	if i+1 >= len(b) {
		return 0
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if i+6 > len(b) {
			return 0
		}
		for _, c := range b[i+2 : i+6] {
			if hexVal(c) < 0 {
				return 0
			}
		}
		return 6
	}
	return 0
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// str reads a string at s.Pos (a quote) and returns it unescaped.
func (s *Scanner) str() string {
	b := s.Buf
	a := s.Pos + 1
	i := plain(b, a)
	if i < len(b) && b[i] == '"' {
		s.Pos = i + 1
		return s.sub(a, i)
	}
	// Slow path: escapes (or an error).
	s.skipString()
	if s.err != nil {
		return ""
	}
	return unescape(b[a : s.Pos-1])
}

func unescape(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch b[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := rune(hex4(b[i+1 : i+5]))
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
					r2 = rune(hex4(b[i+3 : i+7]))
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, b[i])
		}
	}
	return string(out)
}

func hex4(b []byte) int {
	n := 0
	for _, c := range b {
		n = n<<4 | hexVal(c)
	}
	return n
}

// Validate checks that buf holds exactly one JSON value no deeper than
// maxDepth.
func Validate(buf []byte, maxDepth int) error {
	s := New(buf, "", maxDepth)
	s.Skip()
	s.End()
	return s.Err()
}

// AppendString appends s to out as a JSON string, escaping quotes,
// backslashes and control characters. Builders of unmapped and request
// objects use it instead of encoding/json to stay allocation-free.
func AppendString(out []byte, s string) []byte {
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
