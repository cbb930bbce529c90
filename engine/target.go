package engine

import (
	"context"
	"errors"
	"fmt"
)

// Instance names one instance of a service on one server.
type Instance struct {
	Server  string `json:"server"`
	Service string `json:"service"`
	Name    string `json:"instance"`
	// Balancer is the kind of load balancer the agent drains the instance
	// from ("haproxy", "command"); "" when it has none. Flows read it as
	// i.balancer.
	Balancer string `json:"balancer,omitempty"`
	// Mode is the service's deploy_mode, "hot" or "restart"; "" when the
	// agent did not say. Flows read it as i.mode ("restart" for "").
	Mode string `json:"mode,omitempty"`
}

func (i Instance) String() string { return i.Server + "/" + i.Service + "/" + i.Name }

// Step is one operation on one instance: a core step of package step (stop,
// start, install, run of an allow-listed command, …) or a step the
// instance's driver declares. Install's Args["artifact"] is an [Artifact].
type Step struct {
	Name  string         `json:"step"`
	Args  map[string]any `json:"args,omitempty"`
	Build Build          `json:"build"` // the CI build that ordered it, for the agent's history
}

// StepResult is what a step that succeeded returned. Output reaches Lua as a
// table; Message is the one-line summary shown in logs and reports.
type StepResult struct {
	Message string         `json:"message,omitempty"`
	Output  map[string]any `json:"output,omitempty"`
}

// Target reaches the instances of the servers a run addresses.
//
// The client implements it over the agent's HTTP API; dry runs wrap it with
// [DryRun]. Implementations must be safe for concurrent use: the instances of
// one batch call Do in parallel.
type Target interface {
	// Instances lists the instances of service on server, in a stable order.
	Instances(ctx context.Context, server, service string) ([]Instance, error)
	// Do runs one step on one instance and returns once it has finished.
	Do(ctx context.Context, inst Instance, step Step) (StepResult, error)
}

// Preparer is a Target that wants to see the run's artifact params before
// the first step: the client uploads the local ones to every server then,
// once per server and in parallel. Dry runs skip it.
type Preparer interface {
	Prepare(ctx context.Context, servers []string, artifacts []Artifact) error
}

// Checker is a Target that can tell, without changing anything, whether an
// instance would take a step: that its agent allow-lists the command of a
// run step and takes the arguments given, that its driver offers a step of
// its own. A dry run asks it about each step it plans instead of sending.
// An error fails the step as the agent's answer would: one wrapping
// [ErrRefused] ends a run that changed nothing with [ExitUsage].
type Checker interface {
	Check(ctx context.Context, inst Instance, step Step) error
}

// ErrUnreachable marks an error of a Target that could not reach an agent or
// whose credentials were refused. Before anything has changed it makes a run
// end with [ExitUnreachable].
var ErrUnreachable = errors.New("agent unreachable")

// ErrBusy marks an error of a Target whose agent refused a step because
// another run holds the instance or service: the step changed nothing. Like
// ErrUnreachable, before anything has changed it makes a run end with
// [ExitUnreachable].
var ErrBusy = errors.New("busy")

// ErrRefused marks an error of a Target whose agent refused a step before
// running it: a step the instance does not offer, a command that is not
// allow-listed, malformed arguments. The step changed nothing, and running
// it again will not help: before anything has changed it makes a run end
// with [ExitUsage].
var ErrRefused = errors.New("refused")

// Exit codes of a run: what its outcome means to the job that started it.
// A run stopped through its context by a cause that is an [ExitCoder] (the
// client's signals) ends with that cause's code.
const (
	ExitOK          = 0 // every target succeeded
	ExitRolledBack  = 1 // the flow failed, something changed; every failed instance was rolled back
	ExitUsage       = 2 // usage or configuration error, or a flow that failed before anything changed
	ExitUnhealthy   = 3 // the flow failed, something changed, and an instance is not healthy
	ExitUnreachable = 4 // an agent could not be reached, or was busy, before anything changed
)

// ExitCoder is an error that names the exit code of the process it stops,
// such as the cause of a run cancelled by a signal (130, 143): a report
// then carries the code the process exits with.
type ExitCoder interface {
	error
	ExitCode() int
}

// UsageError is bad input from the person or job that started a run: an
// unknown template, a missing or mistyped parameter, a broken template. It maps
// to [ExitUsage].
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ExitCode maps an error returned before a run started to an exit code.
func ExitCode(err error) int {
	var ue *UsageError
	var le *LoadError
	var ec ExitCoder
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.As(err, &ue), errors.As(err, &le), errors.Is(err, ErrRefused):
		return ExitUsage
	case unreached(err):
		return ExitUnreachable
	default:
		return ExitUnhealthy
	}
}
