// Package engine runs baepo's flow templates.
//
// It owns the template registry (every Lua template compiled once at start-up
// and registered by name), the parameter schema, the Lua sandbox, the pool of
// Lua states and the strategy runner: which instances, in what batches, how
// many failures are allowed and what happens to a failed instance.
//
// The engine knows nothing of HTTP, inventories or agents. It reaches
// instances through the [Target] interface, which the client implements over
// the agent API and tests implement in process.
package engine
