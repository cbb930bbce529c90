// Package luajson is the json module of flows, in the gopher-lua-libs
// shape: a [Module] whose Loader pushes the module's table.
//
// It must know nothing of templates, runs or instances.
package luajson
