package engine

import (
	lua "github.com/yuin/gopher-lua"
)

// removedGlobals are the base functions a flow must not have: they read
// files, compile code at run time or reach below the sandbox.
var removedGlobals = []string{
	"dofile", "loadfile", "load", "loadstring", "require", "module",
	"getfenv", "setfenv", "newproxy", "_printregs", "collectgarbage",
	"_GOPHER_LUA_VERSION",
}

// newSandbox returns a Lua state with only the base, table, string and math
// libraries, minus everything in removedGlobals. The engine's own modules are
// added by the caller.
func newSandbox() *lua.LState {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       200,
		RegistrySize:        256,
		RegistryMaxSize:     64 * 1024,
		MinimizeStackMemory: true,
	})
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
		L.SetGlobal(name, tbl)
	}
	if str, ok := L.GetGlobal(lua.StringLibName).(*lua.LTable); ok {
		str.RawSetString("dump", L.NewFunction(absent("string.dump is")))
	}
	return L
}

// absent raises the error a flow gets when it reaches for what the sandbox
// leaves out.
func absent(what string) lua.LGFunction {
	return func(L *lua.LState) int {
		L.RaiseError("%s not available in flows: a flow reaches its hosts only through instance steps and the agent's allow-listed commands (i:run)", what)
		return 0
	}
}

// newEnv returns a fresh global table for one template chunk: reads fall
// through to the sandbox's globals, writes stay in the chunk's own table, so
// templates loaded into one state cannot see or clobber each other's globals.
func newEnv(L *lua.LState) *lua.LTable {
	env := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", L.Get(lua.GlobalsIndex))
	L.SetMetatable(env, mt)
	return env
}
