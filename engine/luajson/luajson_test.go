package luajson_test

import (
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/internal/luatest"
	"github.com/baepo/baepo/engine/luajson"
)

func jsonState(t testing.TB) *lua.LState {
	t.Helper()
	return luatest.NewState(t, map[string]lua.LGFunction{"json": luajson.Module{}.Loader})
}

func TestJSONEncode(t *testing.T) {
	tests := []struct {
		name      string
		code      string
		want      string // the encoded string, when there is one
		wantErr   string // in the second result
		wantRaise string // in the error DoString returns
	}{
		{"sorted keys", `return json.encode({ b = 1, a = "x" })`, `{"a":"x","b":1}`, "", ""},
		{"list", `return json.encode({ 1, 2, 3 })`, `[1,2,3]`, "", ""},
		{"empty table", `return json.encode({})`, `{}`, "", ""},
		{"nested", `return json.encode({ servers = { "web01" }, build = { number = 42 } })`, `{"build":{"number":42},"servers":["web01"]}`, "", ""},
		{"float", `return json.encode(1.5)`, `1.5`, "", ""},
		{"2^53", `return json.encode(2^53)`, `9007199254740992`, "", ""},
		{"no HTML escaping", `return json.encode("a<b & c>d")`, `"a<b & c>d"`, "", ""},
		{"unicode", `return json.encode("é\n")`, `"é\n"`, "", ""},
		{"nil", `return json.encode(nil)`, `null`, "", ""},
		{"bool", `return json.encode(false)`, `false`, "", ""},

		{"function", `return json.encode({ f = print })`, "", "json.encode: f: cannot convert a function to data", ""},
		{"cycle", `local t = {}; t.self = t; return json.encode(t)`, "", "json.encode: self: table contains itself", ""},
		{"NaN", `return json.encode({ n = 0/0 })`, "", "json.encode: json: unsupported value: NaN", ""},
		{"missing argument", `return json.encode()`, "", "", "bad argument #1 to encode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := luatest.Eval(jsonState(t), tc.code)
			luatest.CheckResult(t, vals, err, tc.wantErr, tc.wantRaise)
			if tc.want != "" && vals[0] != lua.LString(tc.want) {
				t.Errorf("got %v, want %s", vals[0], tc.want)
			}
		})
	}
}

func TestJSONDecode(t *testing.T) {
	tests := []struct {
		name      string
		code      string
		want      any // fromLua of the first result
		wantErr   string
		wantRaise string
	}{
		{"object", `return json.decode('{"a":"x","b":1.5,"c":true}')`, map[string]any{"a": "x", "b": 1.5, "c": true}, "", ""},
		{"array is 1-based", `local v = json.decode('["a","b"]'); return v[1] == "a" and v[2] == "b" and #v == 2`, true, "", ""},
		{"nested", `return json.decode('{"items":[{"n":1},{"n":2}]}')`, map[string]any{"items": []any{map[string]any{"n": int64(1)}, map[string]any{"n": int64(2)}}}, "", ""},
		{"null in object is omitted", `local v = json.decode('{"a":null,"b":1}'); return v.a == nil and v.b == 1`, true, "", ""},
		{"null in array is a hole", `local v = json.decode('[1,null,3]'); return v[1] == 1 and v[2] == nil and v[3] == 3`, true, "", ""},
		{"numbers", `return json.decode('[1e3, -2, 0.5]')`, []any{int64(1000), int64(-2), 0.5}, "", ""},
		{"escapes", `return json.decode('"\\u00e9\\n"')`, "é\n", "", ""},
		{"empty object", `return json.decode('{}')`, map[string]any{}, "", ""},
		{"top-level null", `return json.decode('null')`, nil, "", ""},
		{"top-level number", `return json.decode('42')`, int64(42), "", ""},

		{"truncated", `return json.decode('{')`, nil, "json.decode: unexpected end of JSON input", ""},
		{"trailing data", `return json.decode('1 2')`, nil, "json.decode: invalid character", ""},
		{"missing argument", `return json.decode()`, nil, "", "bad argument #1 to decode"},
		{"table argument", `return json.decode({})`, nil, "", "bad argument #1 to decode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := luatest.Eval(jsonState(t), tc.code)
			luatest.CheckValue(t, vals, err, tc.want, tc.wantErr, tc.wantRaise)
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, s := range []string{
		`{"a":[1,2.5,"x"],"b":{"c":true},"d":{}}`,
		`[{"name":"stop","ok":true},{"name":"start","ok":false}]`,
		`"a<b>&c"`,
		`-9007199254740992`,
	} {
		t.Run(s, func(t *testing.T) {
			L := jsonState(t)
			L.SetGlobal("s", lua.LString(s))
			vals, err := luatest.Eval(L, `return json.encode(json.decode(s))`)
			if err != nil {
				t.Fatal(err)
			}
			if got := vals[0].String(); got != s {
				t.Errorf("encode(decode(s)) = %s, want %s", got, s)
			}
		})
	}
}

func BenchmarkJSONEncode(b *testing.B) {
	L := jsonState(b)
	vals, err := luatest.Eval(L, luatest.BenchTable)
	if err != nil {
		b.Fatal(err)
	}
	encode := L.GetGlobal("json").(*lua.LTable).RawGetString("encode")
	b.ReportAllocs()
	for b.Loop() {
		if err := L.CallByParam(lua.P{Fn: encode, NRet: 1, Protect: true}, vals[0]); err != nil {
			b.Fatal(err)
		}
		if L.Get(-1).Type() != lua.LTString {
			b.Fatalf("encode returned %v", L.Get(-1))
		}
		L.Pop(1)
	}
}
