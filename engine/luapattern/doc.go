// Package luapattern is a Lua 5.1 pattern matcher (a port of the matching
// logic of Lua 5.1's lstrlib.c) that observes a context: every 1024 steps
// of its backtracking it checks ctx and gives up with ctx's error, so that
// a flow's string.find, match, gmatch or gsub on a pathological pattern
// (("(a*)"):rep(40) .. "b") stops at the run's timeout or interrupt instead
// of running for ever. The engine registers string functions built on it in
// place of gopher-lua's; it knows nothing of Lua states, flows or runs.
//
// Patterns are what the Lua 5.1 manual (§5.4.1) describes. Where this
// matcher and gopher-lua's (github.com/yuin/gopher-lua/pm) differ:
//
//   - %f[set] (the frontier pattern) works, as in Lua 5.1; gopher-lua
//     matches a literal "f".
//   - A class after % inside a set is the class, never the start of a
//     range: [%a-z] is letters, "-" or "z", as in Lua 5.1; gopher-lua
//     matches nothing there.
//   - Patterns are checked whole before matching, like gopher-lua and
//     unlike Lua 5.1 (which finds a malformed part only when matching
//     reaches it); the messages are Lua 5.1's ("malformed pattern (missing
//     ']')", "invalid capture index", "unfinished capture", …).
//   - At most [MaxCaptures] captures (Lua 5.1: 32; gopher-lua: no limit),
//     and at most [MaxDepth] nested pattern items on one backtracking path
//     ("pattern too complex"); Lua 5.1 has no such limit, gopher-lua's is
//     a million steps of recursion, which grows with the subject's length
//     here it grows only with the pattern's.
//   - A back-reference (%1) to a position capture matches nothing, as in
//     Lua 5.1.
//
// What string.gmatch and string.gsub do with a match (where the next one
// is looked for, "^" anchoring gmatch as in gopher-lua) is the caller's:
// see [Pattern.Find].
package luapattern
