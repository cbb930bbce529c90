package luavalue_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/internal/luatest"
	"github.com/baepo/baepo/engine/luavalue"
)

// nestedTables is Lua code returning n tables nested in each other.
func nestedTables(n int) string {
	return "local t = 1; for i = 1, " + strconv.Itoa(n) + " do t = { t } end; return t"
}

func TestFromLua(t *testing.T) {
	deep := any(int64(1))
	for range 64 {
		deep = []any{deep}
	}
	tests := []struct {
		name    string
		code    string
		want    any
		wantErr string
	}{
		{"nil", "return nil", nil, ""},
		{"bool", "return true", true, ""},
		{"string", `return "héllo"`, "héllo", ""},
		{"integer", "return 42", int64(42), ""},
		{"negative", "return -7", int64(-7), ""},
		{"float", "return 1.5", 1.5, ""},
		{"2^53 is an int", "return 2^53", int64(1 << 53), ""},
		{"-2^53 is an int", "return -2^53", int64(-1 << 53), ""},
		{"beyond 2^53 is a float", "return 2^53 + 2", float64(1<<53 + 2), ""},
		{"list", `return { 1, "a", true }`, []any{int64(1), "a", true}, ""},
		{"empty table", "return {}", map[string]any{}, ""},
		{"map", `return { a = 1, b = { c = "d" } }`, map[string]any{"a": int64(1), "b": map[string]any{"c": "d"}}, ""},
		{"list of maps", `return { { a = 1 }, { a = 2 } }`, []any{map[string]any{"a": int64(1)}, map[string]any{"a": int64(2)}}, ""},
		{"mixed keys", `return { 1, 2, x = 3 }`, map[string]any{"1": int64(1), "2": int64(2), "x": int64(3)}, ""},
		{"sparse", `return { [1] = "a", [3] = "c" }`, map[string]any{"1": "a", "3": "c"}, ""},
		{"hole", `return { 1, nil, 3 }`, map[string]any{"1": int64(1), "3": int64(3)}, ""},
		{"zero key", `return { [0] = "z" }`, map[string]any{"0": "z"}, ""},
		{"float key", `return { [1.5] = "x" }`, map[string]any{"1.5": "x"}, ""},
		{"shared table is no cycle", `local s = { 1 }; return { a = s, b = s }`, map[string]any{"a": []any{int64(1)}, "b": []any{int64(1)}}, ""},
		{"64 levels", nestedTables(64), deep, ""},

		{"function", "return print", nil, "cannot convert a function to data"},
		{"function in list", `return { items = { 1, print } }`, nil, "items[2]: cannot convert a function to data"},
		{"thread", "return coroutine.create(function() end)", nil, "cannot convert a thread to data"},
		{"cycle", "local t = {}; t.self = t; return t", nil, "self: table contains itself"},
		{"indirect cycle", "local a = { b = {} }; a.b.list = { a }; return a", nil, "b.list[1]: table contains itself"},
		{"65 levels", nestedTables(65), nil, "nested deeper than 64"},
		{"too many values", "local t = {} for i = 1, 2^20 do t[i] = i end return t", nil, "more than 1048576 values: too much data to convert"},
		{"bool key", "return { [true] = 1 }", nil, "table key true"},
		{"number and string key", `return { [1] = "a", ["1"] = "b", x = 1 }`, nil, `key "1" is both`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			L := luatest.NewState(t, nil)
			vals, err := luatest.Eval(L, tc.code)
			if err != nil {
				t.Fatal(err)
			}
			got, err := luavalue.FromLua(vals[0])
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromLua = %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FromLua = %#v, want %#v", got, tc.want)
			}
		})
	}
}

type testPort uint16

func TestToLua(t *testing.T) {
	tests := []struct {
		name  string
		in    any
		check string // a Lua expression on v that must be true
		want  any    // fromLua of the result
	}{
		{"nil", nil, "v == nil", nil},
		{"bool", true, "v == true", true},
		{"string", "a", `v == "a"`, "a"},
		{"int", 3, "v == 3", int64(3)},
		{"int8", int8(-3), "v == -3", int64(-3)},
		{"uint64", uint64(7), "v == 7", int64(7)},
		{"float32", float32(1.5), "v == 1.5", 1.5},
		{"float64", 0.25, "v == 0.25", 0.25},
		{"named number", testPort(8080), "v == 8080", int64(8080)},
		{"json integer", json.Number("12"), "v == 12", int64(12)},
		{"json float", json.Number("1.25"), "v == 1.25", 1.25},
		{"duration", 90 * time.Second, `v == "1m30s"`, "1m30s"},
		{"list", []any{1, "a", nil, true}, `#v == 4 and v[1] == 1 and v[3] == nil and v[4] == true`, map[string]any{"1": int64(1), "2": "a", "4": true}},
		{"strings", []string{"web01", "web02"}, `#v == 2 and v[1] == "web01"`, []any{"web01", "web02"}},
		{"list of maps", []map[string]any{{"a": 1}}, `v[1].a == 1`, []any{map[string]any{"a": int64(1)}}},
		{"map", map[string]any{"a": map[string]any{"b": []any{"c"}}}, `v.a.b[1] == "c"`, map[string]any{"a": map[string]any{"b": []any{"c"}}}},
		{"string map", map[string]string{"k": "v"}, `v.k == "v"`, map[string]any{"k": "v"}},
		{"empty list", []any{}, `next(v) == nil`, map[string]any{}},
		{"error", errors.New("boom"), `v == "boom"`, "boom"},
		{"struct", struct{ X int }{1}, `v == "{1}"`, "{1}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			L := luatest.NewState(t, nil)
			v := luavalue.ToLua(L, tc.in)
			L.SetGlobal("v", v)
			vals, err := luatest.Eval(L, "return "+tc.check)
			if err != nil {
				t.Fatal(err)
			}
			if vals[0] != lua.LTrue {
				t.Errorf("%s is false for v = %v", tc.check, v)
			}
			got, err := luavalue.FromLua(v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("FromLua(ToLua(%#v)) = %#v, want %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestTableToMap(t *testing.T) {
	tests := []struct {
		name    string
		code    string // empty: a nil table
		want    map[string]any
		wantErr string
	}{
		{"nil", "", nil, ""},
		{"options", `return { timeout = "30s", retries = 2 }`, map[string]any{"timeout": "30s", "retries": int64(2)}, ""},
		{"empty", "return {}", map[string]any{}, ""},
		{"list", `return { "30s" }`, nil, "named fields"},
		{"function", "return { f = print }", nil, "f: cannot convert a function"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tbl *lua.LTable
			if tc.code != "" {
				vals, err := luatest.Eval(luatest.NewState(t, nil), tc.code)
				if err != nil {
					t.Fatal(err)
				}
				tbl = vals[0].(*lua.LTable)
			}
			got, err := luavalue.TableToMap(tbl)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("TableToMap = %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("TableToMap = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name    string
		in      lua.LValue
		want    time.Duration
		wantErr string
	}{
		{"seconds", lua.LNumber(1), time.Second, ""},
		{"fraction", lua.LNumber(0.25), 250 * time.Millisecond, ""},
		{"zero", lua.LNumber(0), 0, ""},
		{"milliseconds", lua.LString("250ms"), 250 * time.Millisecond, ""},
		{"compound", lua.LString("1m30s"), 90 * time.Second, ""},
		{"spaces", lua.LString(" 5s "), 5 * time.Second, ""},
		{"negative number", lua.LNumber(-1), 0, "not a duration"},
		{"negative string", lua.LString("-1s"), 0, "not a duration"},
		{"no unit", lua.LString("5"), 0, `"5" is not a duration`},
		{"garbage", lua.LString("soon"), 0, "not a duration"},
		{"NaN", lua.LNumber(math.NaN()), 0, "not a duration"},
		{"too long", lua.LNumber(1e30), 0, "not a duration"},
		{"nil", lua.LNil, 0, "got nothing"},
		{"bool", lua.LTrue, 0, "got true"},
		{"table", &lua.LTable{}, 0, "got a table"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := luavalue.Duration(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Duration(%v) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Duration(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func BenchmarkFromLua(b *testing.B) {
	L := luatest.NewState(b, nil)
	vals, err := luatest.Eval(L, luatest.BenchTable)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := luavalue.FromLua(vals[0]); err != nil {
			b.Fatal(err)
		}
	}
}
