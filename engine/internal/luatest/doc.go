// Package luatest holds what the tests of the engine's Lua packages share: a
// Lua state with modules loaded the gopher-lua way (L.PreloadModule, then
// require), running a chunk, and checking a module's two ways of failing.
package luatest
