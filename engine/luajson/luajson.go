package luajson

import (
	"bytes"
	"encoding/json"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/luavalue"
)

// Module is the json module of a flow:
//
//	local s, err = json.encode({ service = "A", ok = true }) -- '{"ok":true,"service":"A"}'
//	local v, err = json.decode('{"items":[1,2]}')            -- v.items[1] == 1
//
// Both return nil and a message when the value cannot be converted; a
// missing argument raises an error.
type Module struct{}

// Loader pushes the module's table. It is a lua.LGFunction that
// L.PreloadModule("json", Loader) registers for require; a state without
// require (the engine's sandbox) calls it and sets the table as a global.
func (Module) Loader(L *lua.LState) int {
	mod := L.NewTable()
	mod.RawSetString("encode", L.NewFunction(encode))
	mod.RawSetString("decode", L.NewFunction(decode))
	L.Push(mod)
	return 1
}

// encode implements json.encode(value): compact JSON with object keys
// sorted. Lists (keys 1..n) become arrays, other tables objects, an empty
// table {}.
func encode(L *lua.LState) int {
	b, err := Encode(L.CheckAny(1))
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("json.encode: " + err.Error()))
		return 2
	}
	L.Push(lua.LString(b))
	return 1
}

// decode implements json.decode(s): objects and arrays become tables
// (arrays 1-based), numbers Lua numbers, null nil.
func decode(L *lua.LState) int {
	s := L.CheckString(1)
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("json.decode: " + err.Error()))
		return 2
	}
	L.Push(luavalue.ToLua(L, v))
	return 1
}

// Encode is v as json.encode writes it: compact, object keys sorted, <, >
// and & not escaped (the result goes to HTTP APIs and logs, not into HTML).
// A value that [luavalue.FromLua] cannot convert is an error that says
// where it sits.
func Encode(v lua.LValue) ([]byte, error) {
	data, err := luavalue.FromLua(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
