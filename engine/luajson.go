package engine

import (
	"bytes"
	"encoding/json"

	lua "github.com/yuin/gopher-lua"
)

// jsonModule is the json module of a flow:
//
//	local s, err = json.encode({ service = "A", ok = true }) -- '{"ok":true,"service":"A"}'
//	local v, err = json.decode('{"items":[1,2]}')            -- v.items[1] == 1
//
// Both return nil and a message when the value cannot be converted; a
// missing argument raises an error.
type jsonModule struct{}

// Loader pushes the module's table; register it with L.PreloadModule or call
// it and set the result as a global.
func (jsonModule) Loader(L *lua.LState) int {
	mod := L.NewTable()
	mod.RawSetString("encode", L.NewFunction(jsonEncode))
	mod.RawSetString("decode", L.NewFunction(jsonDecode))
	L.Push(mod)
	return 1
}

// jsonEncode implements json.encode(value): compact JSON with object keys
// sorted. Lists (keys 1..n) become arrays, other tables objects, an empty
// table {}.
func jsonEncode(L *lua.LState) int {
	v, err := fromLua(L.CheckAny(1))
	if err == nil {
		var b []byte
		if b, err = encodeJSON(v); err == nil {
			L.Push(lua.LString(b))
			return 1
		}
	}
	L.Push(lua.LNil)
	L.Push(lua.LString("json.encode: " + err.Error()))
	return 2
}

// jsonDecode implements json.decode(s): objects and arrays become tables
// (arrays 1-based), numbers Lua numbers, null nil.
func jsonDecode(L *lua.LState) int {
	s := L.CheckString(1)
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("json.decode: " + err.Error()))
		return 2
	}
	L.Push(toLua(L, v))
	return 1
}

// encodeJSON marshals v (as returned by fromLua) compactly, without escaping
// <, > and &: the result goes to HTTP APIs and logs, not into HTML.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
