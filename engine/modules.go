package engine

import lua "github.com/yuin/gopher-lua"

// installStubs gives the load-time sandbox the engine's globals so a
// template's top level may refer to them; calling a step there is an error.
func installStubs(L *lua.LState) {
}
