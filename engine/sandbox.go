package engine

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/luavalue"
)

// removedGlobals are the base functions a flow must not have: they read
// files, compile code at run time or reach below the sandbox.
var removedGlobals = []string{
	"dofile", "loadfile", "load", "loadstring", "require", "module",
	"getfenv", "setfenv", "newproxy", "_printregs", "collectgarbage",
	"_GOPHER_LUA_VERSION",
}

// sandbox is a Lua state for flows: only the base, table, string and math
// libraries, minus everything in removedGlobals, the flows module (see
// flowsModule), plus the modules its owner adds with setLib. It lives as long as a run (or a load) and evaluates
// templates many times, each time in a fresh environment (see newEnv).
type sandbox struct {
	L *lua.LState
	// libs holds, for each library table (string, json, …), the metatable
	// of its per-environment shadow: reads fall through to the library.
	libs map[string]*lua.LTable
	// envMeta is the metatable of every environment: reads fall through to
	// the globals, and getmetatable cannot reach them.
	envMeta *lua.LTable
	// flowMemory is the flow memory limit the primitives that allocate
	// much in one call check against (see need); a run sets its own.
	flowMemory int64
	// protected are the Go functions recoverPanics wrapped.
	protected map[*lua.LFunction]bool
}

// newSandbox returns a sandbox whose flows.builtin finds the templates of
// builtins.
func newSandbox(builtins map[string]*Template) *sandbox {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       200,
		RegistrySize:        256,
		RegistryMaxSize:     64 * 1024,
		MinimizeStackMemory: true,
	})
	s := &sandbox{L: L, libs: map[string]*lua.LTable{}, envMeta: L.NewTable(), flowMemory: DefaultFlowMemory, protected: map[*lua.LFunction]bool{}}
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, name := range removedGlobals {
		L.SetGlobal(name, lua.LNil)
	}
	for _, name := range []string{"dofile", "loadfile", "load", "loadstring", "require", "module", "getfenv", "setfenv"} {
		L.SetGlobal(name, L.NewFunction(absent(name+" is")))
	}
	for _, name := range []string{"os", "io", "debug", "package"} {
		tbl := L.NewTable()
		mt := L.NewTable()
		mt.RawSetString("__index", L.NewFunction(absent(name+" is")))
		L.SetMetatable(tbl, mt)
		s.setLib(name, tbl)
	}
	s.installStringLib()
	for _, name := range []string{lua.TabLibName, lua.StringLibName, lua.MathLibName} {
		s.setLib(name, L.GetGlobal(name).(*lua.LTable))
	}
	s.loadLib("flows", (&flowsModule{s: s, builtins: builtins}).Loader)
	if str, ok := L.GetGlobal(lua.StringLibName).(*lua.LTable); ok {
		str.RawSetString("dump", L.NewFunction(absent("string.dump is")))
	}
	// What every environment shares must stay out of a flow's reach: the
	// metatable of strings (its __index is the string library) and the
	// metatables of everything else.
	protect(L.GetMetatable(lua.LString("")).(*lua.LTable))
	setmetatable := L.GetGlobal("setmetatable").(*lua.LFunction)
	L.SetGlobal("setmetatable", L.NewFunction(func(L *lua.LState) int {
		L.CheckTable(1)
		return setmetatable.GFunction(L)
	}))
	s.envMeta.RawSetString("__index", L.Get(lua.GlobalsIndex))
	protect(s.envMeta)
	s.recoverPanics()
	return s
}

// recoverPanics makes a panic in a Go function of the sandbox (gopher-lua's
// libraries, the modules, the helpers) a Lua error at the line that called
// it, "file:line: math.random: internal error: …", instead of a crash or a
// message without a line. It wraps the functions in place, so every
// reference to them is covered; call it again after adding functions.
func (s *sandbox) recoverPanics() {
	seen := s.protected
	var walk func(prefix string, tbl *lua.LTable)
	walk = func(prefix string, tbl *lua.LTable) {
		tbl.ForEach(func(k, v lua.LValue) {
			name := prefix + lua.LVAsString(k)
			switch v := v.(type) {
			case *lua.LFunction:
				protectGo(v, name, seen)
			case *lua.LTable:
				if prefix == "" && v != tbl {
					walk(name+".", v)
				}
			}
		})
	}
	walk("", s.L.Get(lua.GlobalsIndex).(*lua.LTable))
}

// protectGo wraps the Go function fn (named name in errors) once.
func protectGo(fn *lua.LFunction, name string, seen map[*lua.LFunction]bool) {
	if !fn.IsG || seen[fn] {
		return
	}
	seen[fn] = true
	g := fn.GFunction
	fn.GFunction = func(L *lua.LState) (n int) {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(*lua.ApiError); ok {
					panic(v) // a Lua error on its way to a pcall
				}
				L.RaiseError("%s: internal error: %v (a bug in baepo or gopher-lua: please report it)", name, v)
			}
		}()
		return g(L)
	}
}

// setLib sets the global name to the library table lib, which flows only
// ever see through a shadow of their own (see newEnv).
func (s *sandbox) setLib(name string, lib *lua.LTable) {
	s.L.SetGlobal(name, lib)
	mt := s.L.NewTable()
	mt.RawSetString("__index", lib)
	protect(mt)
	s.libs[name] = mt
}

// loadLib calls a module's Loader and sets the table it pushes as the
// library name. Flows have no require.
func (s *sandbox) loadLib(name string, loader lua.LGFunction) {
	L := s.L
	L.Push(L.NewFunction(loader))
	L.Call(0, 1)
	s.setLib(name, L.CheckTable(-1))
	L.Pop(1)
}

// protect makes getmetatable return false for the values mt is the
// metatable of, and setmetatable refuse them.
func protect(mt *lua.LTable) { mt.RawSetString("__metatable", lua.LFalse) }

// newEnv returns a fresh global table for one evaluation of a template
// chunk. Reads fall through to the sandbox's globals; writes stay in the
// environment, _G included (it is the environment itself). Each library is
// a fresh, empty table reading through to the real one, so `string.x = 1`
// or rawset(json, …) stays in this environment too. Nothing a template
// writes outlives the environment, and nothing reaches the shared tables
// underneath: their metatables are protected.
func (s *sandbox) newEnv() *lua.LTable {
	L := s.L
	env := L.CreateTable(0, len(s.libs)+1)
	for name, mt := range s.libs {
		shadow := L.CreateTable(0, 0)
		shadow.Metatable = mt
		env.RawSetString(name, shadow)
	}
	env.RawSetString("_G", env)
	env.Metatable = s.envMeta
	return env
}

// eval runs a compiled template in a fresh environment and returns the
// table it returns.
func (s *sandbox) eval(proto *lua.FunctionProto) (*lua.LTable, error) {
	L := s.L
	fn := L.NewFunctionFromProto(proto)
	fn.Env = s.newEnv()
	L.Push(fn)
	if err := L.PCall(0, 1, nil); err != nil {
		return nil, luaError(err)
	}
	ret := L.Get(-1)
	L.Pop(1)
	decl, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("%s:%d: template must return a table { name = ..., each = ... }, got %s", proto.SourceName, max(proto.LastLineDefined, 1), luavalue.Describe(ret))
	}
	return decl, nil
}

// absent raises the error a flow gets when it reaches for what the sandbox
// leaves out.
func absent(what string) lua.LGFunction {
	return func(L *lua.LState) int {
		L.RaiseError("%s not available in flows: a flow reaches its hosts only through instance steps and the agent's allow-listed commands (i:run)", what)
		return 0
	}
}
