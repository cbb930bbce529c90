// Package agent is the baepo-agent daemon: one per server, it owns the
// services and instances of its host. It serves the HTTP API of package api,
// checks bearer tokens, keeps the artifact store, each instance's releases,
// the per-instance locks and the step history, probes health, exports
// metrics, and drives every instance through an sdk.Driver — the built-in
// Tomcat driver or a plugin.
//
// The agent knows nothing of flows or templates: it runs one step at a time
// on one instance, as the client asks.
package agent
