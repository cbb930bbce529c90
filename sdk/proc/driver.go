package proc

import (
	"context"
	"fmt"

	"github.com/baepo/baepo/sdk"
)

// Layout is a driver's parsed config of one instance that runs as one
// Process. A driver whose instances do answers Driver's Start, Stop,
// Install, Status and Logs with StartInstance, StopInstance,
// InstallInstance, InstanceStatus and InstanceLogs, given how it reads an
// instance's config:
//
//	func (d *Driver) Stop(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
//		return proc.StopInstance(ctx, inst, parse) // parse(sdk.Instance) (*config, error)
//	}
type Layout interface {
	Process() Process
}

// StartInstance answers Driver.Start: it reads inst's config with parse
// and, unless the instance's process already runs (AlreadyRunning, which
// also adopts a process whose pid file was lost and removes a stale pid
// file), calls start, which starts the process and returns its pid once it
// is up. Its errors begin with "start instance <service>/<name>: ".
func StartInstance[L Layout](ctx context.Context, inst sdk.Instance, parse func(sdk.Instance) (L, error), start func(context.Context, L) (pid int, err error)) (sdk.Result, error) {
	l, err := parse(inst)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return sdk.Result{}, instanceError("start instance", inst, err)
	}
	if res, running, err := l.Process().AlreadyRunning(ctx); err != nil || running {
		return res, instanceError("start instance", inst, err)
	}
	pid, err := start(ctx, l)
	if err != nil {
		return sdk.Result{}, instanceError("start instance", inst, err)
	}
	return sdk.Result{Message: fmt.Sprintf("started (pid %d)", pid), Output: PIDOutput(pid)}, nil
}

// InstallInstance answers Driver.Install: it reads inst's config with
// parse, looks up the instance's process (Process.Lookup) and calls install
// with both, which puts rel in place (Install copies and renames). Its
// errors begin with "install release <id> on instance <service>/<name>: ".
func InstallInstance[L Layout](ctx context.Context, inst sdk.Instance, rel sdk.Release, parse func(sdk.Instance) (L, error), install func(context.Context, L, sdk.Release, Found) (sdk.Result, error)) (sdk.Result, error) {
	what := "install release " + rel.ID + " on instance"
	l, err := parse(inst)
	if err != nil {
		return sdk.Result{}, instanceError(what, inst, err)
	}
	found, err := l.Process().Lookup()
	if err != nil {
		return sdk.Result{}, instanceError(what, inst, err)
	}
	res, err := install(ctx, l, rel, found)
	return res, instanceError(what, inst, err)
}

// StopInstance answers Driver.Stop: it reads inst's config with parse and
// stops the instance's process (Process.Stop). Its errors begin with
// "stop instance <service>/<name>: ".
func StopInstance[L Layout](ctx context.Context, inst sdk.Instance, parse func(sdk.Instance) (L, error)) (sdk.Result, error) {
	l, err := parse(inst)
	if err != nil {
		return sdk.Result{}, instanceError("stop instance", inst, err)
	}
	res, err := l.Process().Stop(ctx)
	return res, instanceError("stop instance", inst, err)
}

// InstanceStatus answers Driver.Status: it reads inst's config with parse
// and reports on the instance's process (Process.Status). Its errors begin
// with "status of instance <service>/<name>: ".
func InstanceStatus[L Layout](inst sdk.Instance, parse func(sdk.Instance) (L, error)) (sdk.Status, error) {
	l, err := parse(inst)
	if err != nil {
		return sdk.Status{}, instanceError("status of instance", inst, err)
	}
	st, err := l.Process().Status()
	return st, instanceError("status of instance", inst, err)
}

// InstanceLogs answers Driver.Logs: it reads inst's config with parse and
// returns the last lines of the process's log (Process.Logs). Its errors
// begin with "logs of instance <service>/<name>: ".
func InstanceLogs[L Layout](inst sdk.Instance, lines int, parse func(sdk.Instance) (L, error)) (string, error) {
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
