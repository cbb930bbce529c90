// Package luavalue converts between Lua values and plain Go data, for the
// engine and the Lua modules of flows: a step's args and output, params,
// JSON, durations given as seconds or strings, and the names of values in
// error messages.
//
// It must know nothing of templates, runs or modules: only gopher-lua's
// values and Go's.
package luavalue
