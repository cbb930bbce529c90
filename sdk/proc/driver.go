package proc

import (
	"context"
	"fmt"

	"github.com/baepo/baepo/sdk"
)

// Layout is a driver's parsed config of one instance that runs as one
// Process.
type Layout interface {
	Process() Process
}

// Instances is the half of sdk.Driver that every driver whose instance
// runs as one process shares: Start, Stop, Install, Status and Logs. A
// driver embeds it, says how to read an instance's config (Parse), start
// its process (Launch) and put a release in place (Place), and writes
// Describe, Validate and Step itself:
//
//	type Driver struct {
//		sdk.NoSteps
//		proc.Instances[*config]
//	}
//
//	func New() *Driver {
//		return &Driver{Instances: proc.Instances[*config]{Parse: parse, Launch: start, Place: install}}
//	}
//
// Every error begins with what failed on which instance: "stop instance
// shop/a1: …".
type Instances[L Layout] struct {
	// Parse reads inst's config.
	Parse func(inst sdk.Instance) (L, error)
	// ParseLogs, when not nil, reads inst's config for Logs instead of
	// Parse: the log of an instance whose state is not set up yet can
	// still be read.
	ParseLogs func(inst sdk.Instance) (L, error)
	// Launch starts the process of an instance that does not run and
	// returns its pid once it is up. It leaves no process behind when it
	// fails.
	Launch func(ctx context.Context, l L) (pid int, err error)
	// Place puts rel in place (Install copies and renames); found is the
	// instance's process, if it runs.
	Place func(ctx context.Context, l L, rel sdk.Release, found Found) (sdk.Result, error)
}

// Start implements sdk.Driver: unless the instance's process already runs
// (Process.AlreadyRunning, which also adopts a process whose pid file was
// lost and removes a stale pid file), it calls Launch.
func (d Instances[L]) Start(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	l, err := d.Parse(inst)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return sdk.Result{}, instanceError("start instance", inst, err)
	}
	if res, running, err := l.Process().AlreadyRunning(ctx); err != nil || running {
		return res, instanceError("start instance", inst, err)
	}
	pid, err := d.Launch(ctx, l)
	if err != nil {
		return sdk.Result{}, instanceError("start instance", inst, err)
	}
	return sdk.Result{Message: fmt.Sprintf("started (pid %d)", pid), Output: PIDOutput(pid)}, nil
}

// Install implements sdk.Driver: it looks up the instance's process
// (Process.Lookup) and calls Place.
func (d Instances[L]) Install(ctx context.Context, inst sdk.Instance, rel sdk.Release) (sdk.Result, error) {
	what := "install release " + rel.ID + " on instance"
	l, err := d.Parse(inst)
	if err != nil {
		return sdk.Result{}, instanceError(what, inst, err)
	}
	found, err := l.Process().Lookup()
	if err != nil {
		return sdk.Result{}, instanceError(what, inst, err)
	}
	res, err := d.Place(ctx, l, rel, found)
	return res, instanceError(what, inst, err)
}

// Stop implements sdk.Driver with Process.Stop.
func (d Instances[L]) Stop(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	l, err := d.Parse(inst)
	if err != nil {
		return sdk.Result{}, instanceError("stop instance", inst, err)
	}
	res, err := l.Process().Stop(ctx)
	return res, instanceError("stop instance", inst, err)
}

// Status implements sdk.Driver with Process.Status.
func (d Instances[L]) Status(ctx context.Context, inst sdk.Instance) (sdk.Status, error) {
	l, err := d.Parse(inst)
	if err != nil {
		return sdk.Status{}, instanceError("status of instance", inst, err)
	}
	st, err := l.Process().Status()
	return st, instanceError("status of instance", inst, err)
}

// Logs implements sdk.Driver with Process.Logs.
func (d Instances[L]) Logs(ctx context.Context, inst sdk.Instance, lines int) (string, error) {
	parse := d.Parse
	if d.ParseLogs != nil {
		parse = d.ParseLogs
	}
	l, err := parse(inst)
	if err != nil {
		return "", instanceError("logs of instance", inst, err)
	}
	text, err := l.Process().Logs(lines)
	return text, instanceError("logs of instance", inst, err)
}

// instanceError is err, when there is one, after what failed on which
// instance: "stop instance shop/a1: …".
func instanceError(what string, inst sdk.Instance, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s/%s: %w", what, inst.Service, inst.Name, err)
}
