package ocsf

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// stdJSON is what storage wrote before AppendJSON: encoding/json without
// HTML escaping.
func stdJSON(t testing.TB, e *Event) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// hostileStrings are the strings the filler draws from: empty, plain,
// every escape encoding/json makes, HTML characters (not escaped), invalid
// UTF-8, U+2028/U+2029 and multi-byte text.
var hostileStrings = []string{
	"", "", "a", "PutObject", "arn:aws:iam::123456789012:role/x", `quo"te`, `back\slash`,
	"tab\there", "new\nline\r\n", "\b\f\x00\x01\x1f\x7f", "<script>&amp;</script>", "\xff\xfe invalid",
	"sep\u2028par\u2029", "日本語 ✓ 🙂", "trailing\xe2\x80", "/var/www/html/shell.php",
}

// rawValues are json.RawMessage values, some with whitespace to compact.
var rawValues = []json.RawMessage{
	nil, {}, json.RawMessage(`{}`), json.RawMessage(`{"a":1,"b":[true,null,"x"]}`),
	json.RawMessage(" { \"k\" : [ 1 , 2 ],\n\t\"s\": \"a b\\n<&>\" } "), json.RawMessage(`"str"`), json.RawMessage(`[]`),
	json.RawMessage(`{"u":"\u2028 \u003c"}`), json.RawMessage("{\"deep\":{\"x\":{\"y\":[{}]}}}"),
}

// fill sets v (addressable) to a random value of its type: each field is
// left zero half the time, slices are nil, empty or populated, so every
// omitempty/omitzero branch and every field of the model is exercised,
// including fields added later.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	if v.Type() == reflect.TypeFor[json.RawMessage]() {
		v.Set(reflect.ValueOf(rawValues[r.IntN(len(rawValues))]))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(hostileStrings[r.IntN(len(hostileStrings))])
	case reflect.Int, reflect.Int64:
		switch r.IntN(4) {
		case 0:
			v.SetInt(0)
		case 1:
			v.SetInt(-r.Int64N(1 << 40))
		default:
			v.SetInt(r.Int64N(1 << 50))
		}
	case reflect.Uint8:
		v.SetUint(uint64(r.IntN(256)))
	case reflect.Float64:
		// CVSS scores, and the magnitudes where encoding/json switches
		// to exponent form.
		v.SetFloat([]float64{0, 9.8, 7.25, 1e21, 1e-7, -3.5}[r.IntN(6)])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Struct:
		for i := range v.NumField() {
			if r.IntN(2) == 0 || depth == 0 {
				fill(r, v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		switch r.IntN(3) {
		case 0: // nil
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := 1 + r.IntN(3)
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				fill(r, s.Index(i), depth+1)
			}
			v.Set(s)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// TestAppendJSONMatchesEncodingJSON compares AppendJSON with encoding/json
// byte for byte over many random events that reach every field.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 5000
	if testing.Short() {
		n = 1000
	}
	buf := []byte("prefix")
	for i := range n {
		var e Event
		fill(r, reflect.ValueOf(&e).Elem(), 0)
		if i%7 == 0 { // sparse events, like most real ones
			e = Event{ClassUID: e.ClassUID, Metadata: e.Metadata, Cloud: e.Cloud, Observables: e.Observables}
		}
		want, werr := stdJSON(t, &e)
		got, gerr := e.AppendJSON(buf[:6])
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("event %d: got error %v, want %v", i, gerr, werr)
		}
		if werr == nil && !bytes.Equal(got[6:], want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got[6:], want)
		}
		if string(got[:6]) != "prefix" {
			t.Fatalf("event %d: the prefix was overwritten", i)
		}
		buf = got
	}
}

// TestAppendJSONInvalidRaw: an invalid raw value is an error, as with
// encoding/json.
func TestAppendJSONInvalidRaw(t *testing.T) {
	for _, e := range []Event{
		{Unmapped: json.RawMessage(`{"a":`)},
		{API: API{Request: APIRequest{Data: json.RawMessage(`nope`)}}},
		{API: API{Response: APIResponse{Data: json.RawMessage(`{"a" 1}`)}}},
	} {
		if _, err := stdJSON(t, &e); err == nil {
			t.Fatal("encoding/json accepted invalid raw JSON")
		}
		if _, err := e.AppendJSON(nil); err == nil {
			t.Errorf("got no error for %+v, want one", e)
		}
	}
}

// FuzzAppendJSON feeds arbitrary strings and raw values through both
// encoders.
func FuzzAppendJSON(f *testing.F) {
	f.Add("a\"b", "{\"x\": 1}", int64(5))
	f.Add("\xff\u2028", "[1, 2]", int64(0))
	f.Fuzz(func(t *testing.T, s, raw string, n int64) {
		e := Event{ClassUID: int(n), Message: s, Time: n}
		e.Actor.User.Name = s
		e.Process.Lineage = []string{s, ""}
		e.API.Request.Data = json.RawMessage(raw)
		e.Observables = []Observable{{Name: s, Value: s}}
		want, werr := stdJSON(t, &e)
		got, gerr := e.AppendJSON(nil)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("got error %v, want %v", gerr, werr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	evs := make([]Event, 256)
	for i := range evs {
		fill(r, reflect.ValueOf(&evs[i]).Elem(), 0)
		evs[i].Unmapped, evs[i].API.Request.Data, evs[i].API.Response.Data = nil, nil, nil
	}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := stdJSON(b, &evs[i%len(evs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, err = evs[i%len(evs)].AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// plain8 answers as a byte-by-byte check does on words made of the bytes
// around every boundary it tests (0x1f/0x20, the quote, the backslash,
// 0x7f/0x80, 0xff), each in every position, and on random words.
func TestPlain8(t *testing.T) {
	plain := func(w uint64) bool {
		for k := range 8 {
			c := byte(w >> (8 * k))
			if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				return false
			}
		}
		return true
	}
	edges := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', 0x23, 0x5b, '\\', 0x5d, 'a', 0x7e, 0x7f, 0x80, 0x9f, 0xc3, 0xe2, 0xff}
	check := func(w uint64) {
		if got, want := plain8(w), plain(w); got != want {
			t.Fatalf("plain8(%#016x) = %v, want %v", w, got, want)
		}
	}
	for _, base := range []byte{'a', 0x20, 0x7e} {
		for _, x := range edges {
			for _, y := range edges {
				for p := range 8 {
					for q := range 8 {
						var w uint64
						for k := range 8 {
							c := base
							switch k {
							case p:
								c = x
							case q:
								c = y
							}
							w |= uint64(c) << (8 * k)
						}
						check(w)
					}
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		check(r.Uint64())
		// Mostly printable ASCII, as text is.
		var w uint64
		for k := range 8 {
			w |= uint64(0x20+r.IntN(0x60)) << (8 * k)
		}
		check(w)
	}
}
