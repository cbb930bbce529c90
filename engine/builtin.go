package engine

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// flowsModule is the flows module of templates, for building on a built-in
// template instead of copying it:
//
//	local deploy = flows.builtin("deploy")
//	-- deploy.params, deploy.strategy, deploy.each, deploy.rollback, …
//
// builtin returns a fresh copy of the table the built-in's file returns —
// its top level runs again, in an environment of its own — so a template
// may change the copy as it likes. It is always the built-in (a template of
// a [Source] marked Builtin), even when a later source replaces the name: a
// team's deploy.lua can wrap the built-in deploy.
type flowsModule struct {
	s        *sandbox
	builtins map[string]*Template // by name; filled while loading, read-only after
}

// Loader pushes the module's table.
func (m *flowsModule) Loader(L *lua.LState) int {
	mod := L.CreateTable(0, 1)
	mod.RawSetString("builtin", L.NewFunction(m.builtin))
	L.Push(mod)
	return 1
}

// builtin implements flows.builtin(name).
func (m *flowsModule) builtin(L *lua.LState) int {
	name := L.CheckString(1)
	t, ok := m.builtins[name]
	if !ok {
		L.ArgError(1, fmt.Sprintf("no built-in template %q (built-ins: %s)", name, strings.Join(slices.Sorted(maps.Keys(m.builtins)), ", ")))
	}
	decl, err := m.s.eval(t.proto)
	if err != nil {
		L.RaiseError("flows.builtin(%q): %v", name, err)
	}
	L.Push(decl)
	return 1
}
