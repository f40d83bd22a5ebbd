package rules

import (
	"encoding/json"
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"

	"github.com/musubi-xdr/musubi/ocsf"
)

// activation binds one event to the variables of a rule: `event` is the
// typed OCSF event; `request` and `response` are api.request.data and
// api.response.data, decoded from JSON the first time a rule asks for them
// and kept for the other candidate rules of the same event. It is used by one
// goroutine for one event.
type activation struct {
	ev       *ocsf.Event
	adapter  types.Adapter
	evVal    ref.Val // the event adapted once, shared by all candidate rules
	req      ref.Val
	resp     ref.Val
	decoded  uint8 // bit 1: request decoded, bit 2: response decoded
	badJSON  bool  // a body was present but not valid JSON
	decodeFn func(json.RawMessage) (ref.Val, bool)
	// checked is the set of variables (readsEvent, …) measured against
	// the tiers of size hints of the untracked path; fit[t] those within
	// tier t of untrackedTiers. See fits.
	checked uint8
	fit     [len(untrackedTiers)]uint8
}

// fits reports whether every variable in reads is within tier t of the
// size hints of the untracked fast path (see untracked.go). Each variable
// is measured once per event, the first time a rule asks.
func (a *activation) fits(reads uint8, t int8) bool {
	if todo := reads &^ a.checked; todo != 0 {
		if todo&readsEvent != 0 {
			a.within(readsEvent, eventTier(a.ev))
		}
		if todo&readsRequest != 0 {
			a.within(readsRequest, jsonTier(a.ev.API.Request.Data))
		}
		if todo&readsResponse != 0 {
			a.within(readsResponse, jsonTier(a.ev.API.Response.Data))
		}
		a.checked |= todo
	}
	return reads&a.fit[t] == reads
}

// within records that variable v is within tier t and every wider one.
func (a *activation) within(v uint8, t int8) {
	for i := range t + 1 {
		a.fit[i] |= v
	}
}

func newActivation(ev *ocsf.Event, adapter types.Adapter) *activation {
	return &activation{ev: ev, adapter: adapter, decodeFn: decodeBody}
}

// EventActivation binds ev to `event`, `request` and `response` as a
// detection rule's condition sees them, for other conditions compiled in an
// environment from NewEnv (correlation stages): the event is adapted once
// and each body decoded only when a condition reads it, with the same
// absent-key policy. adapter is that environment's CELTypeAdapter. Share
// one activation among the conditions evaluated on one event, on one
// goroutine.
func EventActivation(ev *ocsf.Event, adapter types.Adapter) interpreter.Activation {
	return newActivation(ev, adapter)
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		if a.evVal == nil {
			a.evVal = a.adapter.NativeToValue(a.ev)
		}
		return a.evVal, true
	case "request":
		if a.decoded&1 == 0 {
			var ok bool
			a.req, ok = a.decodeFn(a.ev.API.Request.Data)
			a.badJSON = a.badJSON || !ok
			a.decoded |= 1
		}
		return a.req, true
	case "response":
		if a.decoded&2 == 0 {
			var ok bool
			a.resp, ok = a.decodeFn(a.ev.API.Response.Data)
			a.badJSON = a.badJSON || !ok
			a.decoded |= 2
		}
		return a.resp, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

var _ interpreter.Activation = (*activation)(nil)

// decodeBody turns a JSON body into a CEL value. An absent, null or
// non-object body reads as an empty object, so every lookup in it is absent;
// ok is false only for invalid JSON.
func decodeBody(raw json.RawMessage) (ref.Val, bool) {
	if len(raw) == 0 {
		return jsonObject(nil), true
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return jsonObject(nil), false
	}
	m, _ := v.(map[string]any)
	return jsonObject(m), true
}

// jsonObject is a decoded JSON object with Musubi's absent-key policy: a
// lookup of a key that is not there yields absent (see absentValue) instead
// of an evaluation error, at any depth. has(request.a.b) and the optional
// syntax request.?a.?b work as usual.
type jsonObject map[string]any

var (
	jsonObjectType = types.NewOpaqueType("musubi.JSONObject")
	absentType     = types.NewOpaqueType("musubi.Absent")
)

// jsonValue converts a decoded JSON value to CEL.
func jsonValue(v any) ref.Val {
	switch t := v.(type) {
	case nil:
		return types.NullValue
	case string:
		return types.String(t)
	case bool:
		return types.Bool(t)
	case float64:
		if t == float64(int64(t)) && t < 1<<53 && t > -(1<<53) {
			return types.Int(int64(t))
		}
		return types.Double(t)
	case map[string]any:
		return jsonObject(t)
	case []any:
		return types.NewDynamicList(jsonAdapter{}, t)
	}
	return types.NewErr("unsupported JSON value %T", v)
}

// jsonAdapter adapts the elements of a JSON array, so objects inside arrays
// follow the absent-key policy too.
type jsonAdapter struct{}

func (jsonAdapter) NativeToValue(v any) ref.Val { return jsonValue(v) }

func (o jsonObject) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return map[string]any(o), nil
}
func (o jsonObject) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return jsonObjectType
	}
	return types.NewErr("type conversion error from musubi.JSONObject to %s", t)
}
func (o jsonObject) Equal(other ref.Val) ref.Val {
	p, ok := other.(jsonObject)
	return types.Bool(ok && reflect.DeepEqual(o, p))
}
func (o jsonObject) Type() ref.Type { return jsonObjectType }
func (o jsonObject) Value() any     { return map[string]any(o) }

// Get implements traits.Indexer: absent keys yield absentValue.
func (o jsonObject) Get(key ref.Val) ref.Val {
	k, ok := key.Value().(string)
	if !ok {
		return absent
	}
	v, ok := o[k]
	if !ok {
		return absent
	}
	return jsonValue(v)
}

// IsSet implements traits.FieldTester, used by has() and optional selection.
func (o jsonObject) IsSet(key ref.Val) ref.Val {
	k, ok := key.Value().(string)
	if !ok {
		return types.False
	}
	_, ok = o[k]
	return types.Bool(ok)
}

// Contains implements `key in request`.
func (o jsonObject) Contains(key ref.Val) ref.Val { return o.IsSet(key) }

// Size implements size(request).
func (o jsonObject) Size() ref.Val { return types.Int(len(o)) }

var (
	_ traits.Indexer     = jsonObject(nil)
	_ traits.FieldTester = jsonObject(nil)
	_ traits.Container   = jsonObject(nil)
	_ traits.Sizer       = jsonObject(nil)
)

// absentValue is what a lookup of a missing key yields. It equals nothing
// (so `request.x == "a"` is false and `request.x != "a"` is true), is not
// set at any depth (`request.x.y` is absent too), and is not a member of
// anything. Calling a function on it (`request.x.startsWith("a")`) is an
// evaluation error, which the engine counts and treats as no match; guard
// such calls with has() or request.?x.orValue("").
type absentValue struct{}

var absent ref.Val = absentValue{}

func (absentValue) ConvertToNative(reflect.Type) (any, error) { return nil, nil }
func (absentValue) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return absentType
	}
	return types.NewErr("no such key")
}
func (absentValue) Equal(ref.Val) ref.Val    { return types.False }
func (absentValue) Type() ref.Type           { return absentType }
func (absentValue) Value() any               { return nil }
func (absentValue) Get(ref.Val) ref.Val      { return absent }
func (absentValue) IsSet(ref.Val) ref.Val    { return types.False }
func (absentValue) Contains(ref.Val) ref.Val { return types.False }
func (absentValue) Size() ref.Val            { return types.Int(0) }
func (absentValue) String() string           { return "<absent>" }
