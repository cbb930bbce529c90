// Package agent is the core of baepo-agent: one per server, it owns the
// services and instances of its host. It keeps the artifact store, each
// instance's releases, the per-instance locks and per-service leases, the
// step history, probes health, counts metrics, and drives every instance
// through an sdk.Driver — the built-in Tomcat driver or a plugin.
//
// Its entry points ([Agent.Step], [Agent.Status], [Agent.Services],
// [Agent.PutArtifact], [Agent.ReleaseLease], [Agent.History], …) take and
// return the types of package api and refuse bad input with an *api.Error
// whose code says why. It does not serve HTTP: package httpapi does, over
// these entry points.
//
// The agent knows nothing of flows or templates: it runs one step at a time
// on one instance, as the client asks.
package agent
