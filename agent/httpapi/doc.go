// Package httpapi is the agent's HTTP edge: it serves the protocol of
// package api over the agent's core. It owns routing (httprouter), bearer
// token checks, JSON bodies and their limits, the ndjson stream of a step,
// TLS and graceful shutdown, and the one mapping of error codes to HTTP
// statuses ([ErrorStatusCode]).
//
// It must not know how a step runs, where artifacts live or what a driver
// is: every request becomes one call of *agent.Agent.
package httpapi
