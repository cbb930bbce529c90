package luavalue_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/luavalue"
)

// FuzzGoLuaGo converts JSON data (what a step's output and decoded JSON
// are) to Lua and back. Data Lua can hold exactly comes back as it was,
// integral numbers as int64; anything FromLua gives back converts again to
// the same (Go → Lua → Go → Lua → Go is stable).
func FuzzGoLuaGo(f *testing.F) {
	for _, s := range []string{
		`null`, `true`, `"héllo"`, `42`, `-7`, `1.5`, `9007199254740992`, `9007199254740994`, `-0`, `1e308`,
		`[1, "a", true]`, `[]`, `{}`, `{"a": 1, "b": {"c": "d"}}`, `[{"a": 1}, {"a": 2}]`,
		`[1, null, 3]`, `[null, 1]`, `{"a": null}`, `{"1": "x", "2": "y"}`, `[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]`,
		`"\u0000\ud800"`, strings.Repeat("[", 70) + strings.Repeat("]", 70),
	} {
		f.Add([]byte(s))
	}
	L := newState(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return
		}
		got, err := luavalue.FromLua(luavalue.ToLua(L, v))
		want, exact, depth := plain(v, 0)
		if depth > 64 {
			if err == nil {
				t.Fatalf("%s: %d levels converted, want an error past 64", data, depth)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: FromLua(ToLua) = %v", data, err)
		}
		if exact && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Go → Lua → Go = %#v, want %#v", data, got, want)
		}
		again, err := luavalue.FromLua(luavalue.ToLua(L, got))
		if err != nil {
			t.Fatalf("%s: second round: %v", data, err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("%s: first round %#v, second %#v", data, got, again)
		}
	})
}

// newState is one Lua state for all the inputs of a fuzz target: a fuzz
// worker runs them one at a time, and a state is costly to make.
func newState(f *testing.F) *lua.LState {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	f.Cleanup(L.Close)
	return L
}

// plain is JSON data as FromLua gives it back: integral numbers within
// ±2^53 as int64, an empty list as an empty map. exact is false when Lua
// cannot hold v as it is (a nil inside a table); depth is how deeply its
// tables nest.
func plain(v any, level int) (out any, exact bool, depth int) {
	switch v := v.(type) {
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= 1<<53 {
			return int64(v), true, level
		}
		return v, true, level
	case []any:
		if len(v) == 0 {
			return map[string]any{}, true, level + 1
		}
		list, exact, depth := make([]any, len(v)), true, level+1
		for i, item := range v {
			var ok bool
			var d int
			list[i], ok, d = plain(item, level+1)
			exact, depth = exact && ok && item != nil, max(depth, d)
		}
		return list, exact, depth
	case map[string]any:
		m, exact, depth := make(map[string]any, len(v)), true, level+1
		for k, item := range v {
			var ok bool
			var d int
			m[k], ok, d = plain(item, level+1)
			exact, depth = exact && ok && item != nil, max(depth, d)
		}
		return m, exact, depth
	}
	return v, true, level
}

// FuzzLuaGoLua builds a Lua table from a small program of bytes (keys of
// every kind: list indexes, holes, zero, negative and fractional numbers,
// strings, booleans; values: numbers, strings, booleans, nested and shared
// tables, functions) and converts it to Go and back. What FromLua accepts
// converts back to a Lua value that FromLua reads as the same data, and
// errors name where the bad value sits.
func FuzzLuaGoLua(f *testing.F) {
	for _, s := range []string{"", "\x00\x01\x02", "\x10\x11\x12\x13", "\x05abc\x06", "\x08\x08\x08\x09\x09", "\x0a", "\x0b", "\x0c\x01", "\x07\x07\x07"} {
		f.Add([]byte(s))
	}
	L := newState(f)
	f.Fuzz(func(t *testing.T, prog []byte) {
		root := build(L, prog)
		got, err := luavalue.FromLua(root)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			return
		}
		lv := luavalue.ToLua(L, got)
		again, err := luavalue.FromLua(lv)
		if err != nil {
			t.Fatalf("FromLua gave %#v, which does not convert back: %v", got, err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("Lua → Go %#v, → Lua → Go %#v", got, again)
		}
		// A list or a table of string keys is Lua data that survives the
		// trip as it was.
		if stringKeyed(root) && !luaEqual(root, lv) {
			t.Fatalf("Lua → Go → Lua changed a table of string keys: %#v", got)
		}
	})
}

// build interprets prog: each byte is an operation on a stack of tables,
// its low nibble choosing a key and its high bits a value.
func build(L *lua.LState, prog []byte) lua.LValue {
	root := L.NewTable()
	stack := []*lua.LTable{root}
	keys := []lua.LValue{lua.LNumber(1), lua.LNumber(2), lua.LNumber(3), lua.LNumber(0), lua.LNumber(-1), lua.LNumber(1.5),
		lua.LString("a"), lua.LString("1"), lua.LString(""), lua.LBool(true), lua.LNumber(4), lua.LNumber(1 << 53)}
	for i := 0; i < len(prog); i++ {
		b := prog[i]
		top := stack[len(stack)-1]
		switch op := b >> 4; {
		case op == 0 && b&0xf == 0x0a: // open a nested table at the next index
			t := L.NewTable()
			top.Append(t)
			if len(stack) < 80 {
				stack = append(stack, t)
			}
		case op == 0 && b&0xf == 0x0b: // close
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case op == 0 && b&0xf == 0x0c: // a cycle: the table holds its parent
			top.Append(stack[max(0, len(stack)-2)])
		case op == 0 && b&0xf == 0x07: // a shared table
			top.Append(root)
		case op == 0: // append a number
			top.Append(lua.LNumber(float64(b) - 3))
		case op == 1: // key k = next byte as a string
			v := lua.LValue(lua.LString(""))
			if i+1 < len(prog) {
				i++
				v = lua.LString(strconv.Itoa(int(prog[i])))
			}
			top.RawSet(keys[int(b&0xf)%len(keys)], v)
		case op == 2: // key k = a bool
			top.RawSet(keys[int(b&0xf)%len(keys)], lua.LBool(b&1 == 1))
		case op == 3: // key k = a fraction
			top.RawSet(keys[int(b&0xf)%len(keys)], lua.LNumber(float64(b)/7))
		case op == 4: // key k = nil (a hole)
			top.RawSet(keys[int(b&0xf)%len(keys)], lua.LNil)
		case op == 5: // key k = a function
			top.RawSet(keys[int(b&0xf)%len(keys)], L.NewFunction(func(*lua.LState) int { return 0 }))
		default: // append a string of the byte
			top.Append(lua.LString(string(rune(b))))
		}
	}
	return root
}

// stringKeyed reports whether v and every table in it has only string
// keys, or is a non-empty list 1..n.
func stringKeyed(v lua.LValue) bool {
	t, ok := v.(*lua.LTable)
	if !ok {
		return true
	}
	n, strs, all := 0, 0, true
	t.ForEach(func(k, item lua.LValue) {
		n++
		if _, ok := k.(lua.LString); ok {
			strs++
		}
		all = all && stringKeyed(item)
	})
	if !all || n == 0 {
		return false
	}
	if strs == n {
		return true
	}
	if strs > 0 || t.MaxN() != n {
		return false
	}
	for i := 1; i <= n; i++ {
		if t.RawGetInt(i) == lua.LNil {
			return false
		}
	}
	return true
}

// luaEqual compares two Lua values deeply; numbers by value.
func luaEqual(a, b lua.LValue) bool {
	ta, ok := a.(*lua.LTable)
	if !ok {
		return a == b
	}
	tb, ok := b.(*lua.LTable)
	if !ok {
		return false
	}
	na, nb, eq := 0, 0, true
	ta.ForEach(func(k, v lua.LValue) {
		na++
		eq = eq && luaEqual(v, tb.RawGet(k))
	})
	tb.ForEach(func(lua.LValue, lua.LValue) { nb++ })
	return eq && na == nb
}

// FuzzDuration checks the duration arguments of flows (seconds or a Go
// duration string): an accepted duration is never negative and is what
// was asked for.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"30s", "1m30s", " 250ms ", "-1s", "0", "1e300s", "9223372036854775807ns", "", "5"} {
		f.Add(s, 0.25)
	}
	f.Add("", math.Inf(1))
	f.Add("", math.NaN())
	f.Add("", -1.0)
	f.Add("", 9.2e9)
	f.Add("", 1e300)
	f.Add("", 9223372036.854776) // float64(MaxInt64 ns) rounds up to 2^63
	f.Fuzz(func(t *testing.T, s string, secs float64) {
		if d, err := luavalue.Duration(lua.LString(s)); err == nil {
			want, perr := time.ParseDuration(strings.TrimSpace(s))
			if d < 0 || perr != nil || d != want {
				t.Fatalf("Duration(%q) = %v, want %v (%v) and not negative", s, d, want, perr)
			}
		}
		d, err := luavalue.Duration(lua.LNumber(secs))
		if err != nil {
			return
		}
		if d < 0 || math.IsNaN(secs) || math.IsInf(secs, 0) {
			t.Fatalf("Duration(%v) = %v, want an error or a duration >= 0", secs, d)
		}
		if diff := math.Abs(d.Seconds() - secs); diff > 1e-6*math.Max(1, secs) {
			t.Fatalf("Duration(%v) = %v, %v off", secs, d, diff)
		}
	})
}
