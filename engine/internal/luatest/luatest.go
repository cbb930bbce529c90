package luatest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/luavalue"
)

// NewState returns a state with every standard library, closed when the
// test ends. Each module is registered with L.PreloadModule and required
// into a global of its name.
func NewState(t testing.TB, modules map[string]lua.LGFunction) *lua.LState {
	t.Helper()
	L := lua.NewState()
	t.Cleanup(L.Close)
	for name, loader := range modules {
		L.PreloadModule(name, loader)
		if err := L.DoString(fmt.Sprintf("%s = require(%q)", name, name)); err != nil {
			t.Fatalf("require %s: %v", name, err)
		}
	}
	return L
}

// Eval runs code and returns everything it returns.
func Eval(L *lua.LState, code string) ([]lua.LValue, error) {
	top := L.GetTop()
	if err := L.DoString(code); err != nil {
		return nil, err
	}
	out := make([]lua.LValue, 0, L.GetTop()-top)
	for i := top + 1; i <= L.GetTop(); i++ {
		out = append(out, L.Get(i))
	}
	L.SetTop(top)
	return out, nil
}

// CheckResult fails t unless the code raised wantRaise (a caller's
// mistake), or returned nil, wantErr (a failure at run time), or, when both
// are empty, returned a value and no error.
func CheckResult(t *testing.T, vals []lua.LValue, err error, wantErr, wantRaise string) {
	t.Helper()
	if wantRaise != "" {
		if err == nil || !strings.Contains(err.Error(), wantRaise) {
			t.Fatalf("got %v, %v; want an error containing %q", vals, err, wantRaise)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if wantErr != "" {
		if len(vals) != 2 || vals[0] != lua.LNil || !strings.Contains(vals[1].String(), wantErr) {
			t.Fatalf("got %v; want nil and a message containing %q", vals, wantErr)
		}
		return
	}
	if len(vals) == 2 && vals[1] != lua.LNil {
		t.Fatalf("got %v; want no error", vals)
	}
}

// CheckValue is CheckResult and, when the code was to succeed, checks that
// its first result is want as [luavalue.FromLua] converts it.
func CheckValue(t *testing.T, vals []lua.LValue, err error, want any, wantErr, wantRaise string) {
	t.Helper()
	CheckResult(t, vals, err, wantErr, wantRaise)
	if wantErr != "" || wantRaise != "" {
		return
	}
	got, err := luavalue.FromLua(vals[0])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

// BenchTable is Lua code returning a table of 20 fields, like a
// notification payload, for benchmarks.
const BenchTable = `return {
  template = "deploy", service = "A", server = "web01", instance = "a1",
  outcome = "succeeded", exit_code = 0, dry_run = false, batch = 2,
  max_failures = 1, duration = 12.5, started = "2024-05-01T10:00:00Z",
  build = { tag = "v1.2.3", job = "deploy-A", number = "42", url = "https://ci.example/42" },
  servers = { "web01", "web02", "web03" },
  params = { artifact = "app.war", health_timeout = "30s" },
  steps = { { name = "stop", ok = true }, { name = "install", ok = true }, { name = "start", ok = true } },
  error = "", rolled_back = false, attempt = 1, user = "jenkins", note = "nightly <release> & more",
}`
