// Package step is baepo's vocabulary of steps: the names a flow calls on an
// instance, that the client sends and the agent runs, and what each of them
// does to an instance. The engine, the client, the agent and its history
// all read it from here, so a new core step is one edit of [core].
//
// It must know nothing else: no HTTP, no Lua, no drivers.
package step

import "slices"

// The core steps every instance offers, whatever its driver.
const (
	Stop     = "stop"
	Start    = "start"
	Restart  = "restart"
	Install  = "install"
	Rollback = "rollback"
	Health   = "health"
	Status   = "status"
	Logs     = "logs"
	Drain    = "drain"   // take the instance out of its load balancer's rotation, wait for its requests
	Undrain  = "undrain" // put it back, wait until the balancer sends it requests
	Run      = "run"     // an allow-listed command of the agent's config
)

// Info is what a step does to an instance.
type Info struct {
	Name string
	// Changes: the step may change the instance. The agent runs it under
	// the instance's lock and the run's lease on the service; the client
	// asks for that lease to be ended when the run ends; the engine counts
	// a run that sent one as having changed something.
	Changes bool
	// Resets: the step may change what runs (the process or its release),
	// so the agent forgets the instance's last health check: a check
	// speaks only of what it probed.
	Resets bool
	// Journaled: the agent records the step in its history. Health checks
	// are, though they change nothing: they are part of a deploy's story.
	Journaled bool
	// DryRun: a dry run sends the step to the agent, because it only reads.
	// Every other step is recorded as planned and not sent.
	DryRun bool
	// Arg names the one positional argument a flow gives the step
	// (i:install("app.war") sends args.artifact); empty when it takes none.
	Arg string
}

// core is the one list of core steps and their properties.
var core = []Info{
	{Name: Stop, Changes: true, Resets: true, Journaled: true},
	{Name: Start, Changes: true, Resets: true, Journaled: true},
	{Name: Restart, Changes: true, Resets: true, Journaled: true},
	{Name: Install, Changes: true, Resets: true, Journaled: true, Arg: "artifact"},
	{Name: Rollback, Changes: true, Resets: true, Journaled: true},
	{Name: Health, Journaled: true},
	{Name: Status, DryRun: true},
	{Name: Logs, DryRun: true},
	{Name: Drain, Changes: true, Journaled: true},
	{Name: Undrain, Changes: true, Journaled: true},
	{Name: Run, Changes: true, Journaled: true, Arg: "command"},
}

// custom is what a step a driver declares is taken to do: change the
// instance, but not what runs (a thread dump must not cost the instance
// its health).
var custom = Info{Changes: true, Journaled: true}

// Core returns the names of the core steps, in their documented order.
func Core() []string {
	names := make([]string, len(core))
	for i, s := range core {
		names[i] = s.Name
	}
	return names
}

// IsCore reports whether name is a core step.
func IsCore(name string) bool {
	return slices.ContainsFunc(core, func(s Info) bool { return s.Name == name })
}

// Of returns what the step of name does. A name that is not a core step is
// a driver's own step, taken to change the instance.
func Of(name string) Info {
	if i := slices.IndexFunc(core, func(s Info) bool { return s.Name == name }); i >= 0 {
		return core[i]
	}
	info := custom
	info.Name = name
	return info
}
