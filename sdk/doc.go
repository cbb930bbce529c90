// Package sdk is what a baepo driver is written against: the [Driver]
// interface, the types it uses and, for plugins, [Serve] and the handshake.
//
// The agent drives every instance of every service through a Driver. Tomcat
// is built into the agent; any other app server is a plugin binary whose
// main is one line, sdk.Serve(New()). The agent itself does what is the same
// for every app server — releases, locks, health checks, history — so a
// driver only starts, stops, installs and reports on one instance. What
// each method owes the agent is said on [Driver]. A complete plugin with
// its tests, to copy, is examples/runner-plugin in baepo's repository, and
// docs/plugins.md there is the guide to building, pinning and running one.
//
// Across the plugin boundary a Driver behaves as it does in process, with
// these limits: a driver's error arrives as its text, unchanged, wrapping
// [ErrUnknownStep] when the driver's did and nothing else; of a call's ctx
// only its cancellation, its deadline and its [Progress] lines cross, and a
// call whose ctx is done fails with an error wrapping ctx.Err(); an empty
// map arrives as nil. Package sdktest runs a driver through that boundary,
// in process, for tests.
//
// This package imports nothing else from baepo's module, so plugin authors
// inherit no dependency of the agent.
package sdk
