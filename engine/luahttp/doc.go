// Package luahttp is the http module of flows, in the gopher-lua-libs
// shape: a [Module] with its HTTP client injected, whose Loader pushes the
// module's table. It is the one package of the engine that speaks HTTP, and
// only for a flow's notifications: the engine reaches instances through its
// Target.
//
// It must know nothing of templates, runs, instances or agents.
package luahttp
