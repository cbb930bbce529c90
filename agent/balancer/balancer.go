package balancer

import (
	"context"
	"time"
)

// Kinds of balancer, as GET /v1/services and flows (i.balancer) name them.
const (
	KindHAProxy = "haproxy"
	KindCommand = "command"
)

// Balancer takes one instance out of rotation and puts it back.
type Balancer interface {
	// Kind is KindHAProxy or KindCommand.
	Kind() string
	// String names the instance in the balancer, for messages:
	// "haproxy app/web1".
	String() string
	// Drain takes the instance out of rotation and waits, at most
	// timeout, until the requests in flight on it have ended. A wait that
	// times out is no failure: Result says how many were still in flight.
	Drain(ctx context.Context, timeout time.Duration) (Result, error)
	// Undrain puts the instance back and waits, at most timeout, until the
	// balancer sends it requests again; an instance still out of rotation
	// then is an error naming its state.
	Undrain(ctx context.Context, timeout time.Duration) (Result, error)
}

// Result is what a drain or undrain did, in one line, and the facts
// behind it for a step's output.
type Result struct {
	Message string
	Output  map[string]any
}
