// Package engine runs baepo's flow templates.
//
// It owns the template registry (every Lua template compiled once at start-up
// and registered by name), the parameter schema, the Lua sandbox, the pool of
// Lua states and the strategy runner: which instances, in what batches
// (canaries first), how many failures are allowed, what happens to a failed
// instance, and the template's run-level hooks (before, and after with the
// run's summary, whatever happened). A pooled state outlives instances —
// its libraries loaded, the template compiled once — but every instance (and
// every hook) runs in a fresh environment of its own, so nothing a flow
// writes reaches another instance (docs/flows.md says what is shared).
//
// It takes parsed input. [Template.ParseParams] parses a run's params once
// into typed [Params] (an artifact param into an [Artifact], checked then);
// a batch size or failure budget is a [Count]. [Template.Run] takes both as
// they are.
//
// The engine knows nothing of HTTP, inventories or agents. It reaches
// instances through the [Target] interface, which the client implements over
// the agent API and tests implement in process; a Target may also be a
// [Preparer] (uploads before the first step) and a [Checker] (what a dry
// run plans, checked without sending it). The command line is the
// client's too: it tells the engine the names a param cannot have
// ([LoadOptions].Reserved, the flags of `baepo run`) and the CI build that
// started a run ([Build], from Jenkins' variables), and stops a run by
// cancelling its context (signals and their exit codes are the client's).
// The engine's messages only name the flags a user fixes a problem with, as
// params become flags.
//
// The Lua modules of flows live in packages of their own, each a Module with
// a Loader as in gopher-lua-libs, and the engine sets their tables as
// globals (flows have no require): json in engine/luajson, http in
// engine/luahttp (for a flow's notifications; the only package of the engine
// that imports net/http). The flows module (flows.builtin, for building on a
// built-in template) is the engine's own, as it evaluates templates. Both convert values with engine/luavalue.
// The string library's pattern functions are built on engine/luapattern, a
// matcher that stops with the run; what flows may allocate is bounded by
// Options.FlowMemory (limits.go). The names
// of steps come from engine/step; engine/enginetest is an in-process Target
// for tests.
package engine
