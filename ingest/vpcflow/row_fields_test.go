package vpcflow_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/musubi-xdr/musubi/ingest/vpcflow"
	"github.com/musubi-xdr/musubi/ocsf"
)

// TestRowOfEveryField changes each field of a flow event, one at a time —
// every exported field of ocsf.Event and of the objects it holds — and
// requires that the event either has no row or is built back from its row
// into the same document: nothing set on a flow event, by a source or by
// anything after it, is lost in its typed columns. A field added to the
// event model is covered without changing the test.
func TestRowOfEveryField(t *testing.T) {
	const header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status vpc-id subnet-id instance-id tcp-flags type region az-id flow-direction"
	const line = "5 111122223333 eni-1 203.0.113.9 10.0.0.2 443 51000 6 3 4 100 160 ACCEPT OK vpc-1 subnet-1 i-0123456789abcdef0 2 IPv4 eu-west-1 euw1-az1 ingress"
	format, err := vpcflow.ParseHeader(header)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() ocsf.Event {
		ev, err := format.Normalize([]byte(line), "fields", 1)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	base := fresh()
	if _, ok := vpcflow.RowOf(&base); !ok {
		t.Fatal("the test's record has no row")
	}
	var paths [][]int
	var names []string
	var walk func(typ reflect.Type, path []int, name string)
	walk = func(typ reflect.Type, path []int, name string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue // Raw: not part of the document
			}
			p := append(append([]int(nil), path...), i)
			n := name + "." + f.Name
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, p, n)
				continue
			}
			paths, names = append(paths, p), append(names, n)
		}
	}
	walk(reflect.TypeFor[ocsf.Event](), nil, "Event")
	if len(paths) < 100 {
		t.Fatalf("found %d fields, want the whole event model", len(paths))
	}
	for k, p := range paths {
		ev := fresh()
		if !change(reflect.ValueOf(&ev).Elem().FieldByIndex(p)) {
			t.Fatalf("%s: cannot change a %s", names[k], reflect.ValueOf(&ev).Elem().FieldByIndex(p).Type())
		}
		row, ok := vpcflow.RowOf(&ev)
		if !ok {
			continue
		}
		var back ocsf.Event
		row.Event(&back, ev.Raw)
		back.Metadata.TenantUID = ev.Metadata.TenantUID // the reader sets it from its column
		want, _ := ev.AppendJSON(nil)
		got, _ := back.AppendJSON(nil)
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed: the event has a row, and its row builds another document\n got %s\nwant %s", names[k], got, want)
		}
	}
}

// change sets v, a field of an event, to another value than it has, and reports
// whether it could.
func change(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 0.5)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(`{"changed":"x"}`))
			return true
		}
		el := reflect.New(v.Type().Elem()).Elem()
		if el.Kind() == reflect.Struct {
			// An element with its first field set, so that it is not
			// left out of the document as empty.
			for i := range el.NumField() {
				if el.Type().Field(i).IsExported() && change(el.Field(i)) {
					break
				}
			}
		} else if !change(el) {
			return false
		}
		v.Set(reflect.Append(v, el))
	default: // a kind the event model does not use yet: the test says so
		return false
	}
	return true
}
