// Package engine runs baepo's flow templates.
//
// It owns the template registry (every Lua template compiled once at start-up
// and registered by name), the parameter schema, the Lua sandbox, the pool of
// Lua states and the strategy runner: which instances, in what batches, how
// many failures are allowed and what happens to a failed instance.
//
// The engine knows nothing of HTTP, inventories or agents. It reaches
// instances through the [Target] interface, which the client implements over
// the agent API and tests implement in process. The Lua modules a flow gets
// live in their own packages and are registered by the engine: json in
// engine/luajson, http (for a flow's notifications, the one package of the
// engine that imports net/http) in engine/luahttp; both convert values with
// engine/luavalue. The names of steps come from engine/step.
package engine
