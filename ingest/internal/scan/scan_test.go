package scan

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `{"a":1}`, `{"a":[1,2,{"b":null}]}`, `"x\u00e9\ud83d\ude00"`, `-0.5e+3`, `true`, ` {"a" : "b" } `,
		`{"a":1,}`, `[1,]`, `{"a"}`, `{a:1}`, `01`, `1.`, `.5`, `"\x"`, "\"\x01\"", `"\u12"`, `{"a":1}x`, `nul`, ``, `[`, `{"a":`, `"abc`,
	} {
		want := json.Valid([]byte(in))
		got := Validate([]byte(in), 64) == nil
		if got != want {
			t.Errorf("Validate(%q): got %v, encoding/json says %v", in, got, want)
		}
	}
}

func TestDepth(t *testing.T) {
	in := strings.Repeat("[", 10) + strings.Repeat("]", 10)
	if err := Validate([]byte(in), 10); err != nil {
		t.Errorf("depth 10 at limit 10: %v", err)
	}
	err := Validate([]byte(in), 9)
	if e, ok := err.(*Error); !ok || e.Reason != ReasonTooDeep {
		t.Errorf("depth 10 at limit 9: got %v, want too_deep", err)
	}
}

func TestStrings(t *testing.T) {
	in := []byte(`{"plain":"abc","esc":"a\"b\\c\/d\n\u00e9\ud83d\ude00","bad":"\ud800x","long":"` + strings.Repeat("x", 100) + `\t"}`)
	s := New(in, string(in), 64)
	got := map[string]string{}
	if s.Object() {
		for first := true; s.More(&first); {
			k := s.Key()
			got[k] = s.String()
		}
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	var want map[string]string
	json.Unmarshal(in, &want)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
}

func TestTypedAccessors(t *testing.T) {
	in := []byte(`{"n":42,"s":"17","f":1.5,"b":true,"o":{"x":1},"big":123456789012345678901234567890}`)
	s := New(in, string(in), 64)
	s.Object()
	for first := true; s.More(&first); {
		switch s.Key() {
		case "n":
			if v, ok := s.Int(); !ok || v != 42 {
				t.Errorf("n: %d %v", v, ok)
			}
		case "s":
			if v, ok := s.Int(); !ok || v != 17 {
				t.Errorf("s: %d %v", v, ok)
			}
		case "f":
			if v, ok := s.Float(); !ok || v != 1.5 {
				t.Errorf("f: %v %v", v, ok)
			}
		case "b":
			if !s.Bool() {
				t.Error("b: false")
			}
		case "o":
			if v := s.String(); v != "" || !s.Mismatch {
				t.Errorf("o as string: %q mismatch %v", v, s.Mismatch)
			}
		case "big":
			if _, ok := s.Int(); ok {
				t.Error("big: an out-of-range integer was accepted")
			}
		}
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

func TestTimeMillis(t *testing.T) {
	for in, want := range map[string]int64{
		"2024-08-02T08:23:24Z":           1722587004000,
		"2020-02-14T18:12:22.316Z":       1581703942316,
		"2025-02-25 20:40:06.721":        1740516006721,
		"2025-02-25 20:40:06.000000000":  1740516006000,
		"2024-08-02T10:23:24+02:00":      1722587004000,
		"2024-08-02T08:23:24.123456789Z": 1722587004123,
	} {
		if got, ok := TimeMillis(in); !ok || got != want {
			t.Errorf("TimeMillis(%q): got %d %v, want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "yesterday", "2024-13-01T00:00:00Z", "2024-08-02T08:23:24X", "2024-08-02T08:23:24."} {
		if _, ok := TimeMillis(in); ok {
			t.Errorf("TimeMillis(%q): accepted", in)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{"a":[1,"x\u00e9",null,true]}`, `[[[]]]`, `"\ud83d\ude00"`, `-1.5e3`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Validate(data, 10000) == nil
		if want := json.Valid(data); got != want {
			t.Fatalf("Validate: got %v, encoding/json says %v", got, want)
		}
		s := New(data, string(data), 10000)
		raw := s.Raw()
		if s.Err() == nil && raw != nil && !json.Valid(raw) {
			t.Fatalf("Raw returned invalid JSON %q", raw)
		}
	})
}
