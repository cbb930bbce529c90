package engine

import (
	"context"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/luavalue"
)

// The run-level hooks of a template, as [HookReport] names them; each is
// also the phase of the worker that runs it.
const (
	HookBefore = "before"
	HookAfter  = "after"
)

// before runs the template's before(ctx), if it has one, and reports
// whether the batches may start. A failed before stops the run before any
// instance: finish makes it exit 2, nothing having changed.
func (r *run) before(report *Report) bool {
	if !r.t.HasBefore || r.ctx.Err() != nil {
		return true // an interrupted run starts no batch anyway
	}
	err := r.hook(report, r.ctx, HookBefore)
	if err == nil {
		return true
	}
	r.beforeErr = err
	if r.ctx.Err() == nil {
		for i := range report.Instances {
			report.Instances[i].Error = "not started: before failed"
		}
	}
	return false
}

// after runs the template's after(ctx, summary), if it has one, once the
// report has its outcome: after a failure too, and after an interrupt or
// the timeout until the grace period for running steps ends. Its failure
// is logged and reported; the exit code stands.
func (r *run) after(report *Report) {
	if r.t.HasAfter {
		r.hook(report, r.stepCtx, HookAfter, report.summary())
	}
}

// hook calls the template's function name (a hook) with ctx and args, in
// a fresh environment of a pooled worker, under luaCtx, and adds what
// happened to the report.
func (r *run) hook(report *Report, luaCtx context.Context, name string, args ...any) error {
	start := time.Now()
	w := r.get()
	defer r.put(w)
	w.luaCtx, w.phase = luaCtx, name
	defer func() { w.luaCtx, w.phase = r.ctx, "" }()
	err := w.fresh()
	if err == nil {
		lv := []lua.LValue{w.ctx}
		for _, a := range args {
			lv = append(lv, luavalue.ToLua(w.L, a))
		}
		err = w.call(name, lv...)
	}
	hr := HookReport{Name: name, Result: ResultOK, Duration: time.Since(start)}
	switch {
	case err == nil:
		r.logger.Info(name+" ok", "took", hr.Duration.Round(time.Millisecond))
	case name == HookAfter:
		r.logger.Error("after failed: the exit code stands", "error", err)
	default:
		r.logger.Error(name+" failed", "error", err)
	}
	if err != nil {
		hr.Result, hr.Error = ResultFailed, err.Error()
	}
	report.Hooks = append(report.Hooks, hr)
	return err
}

// summary is the report as the after hook sees it: the outcome, exit code
// and error, the counts by result and every instance with its result and
// the first line of its error.
func (r *Report) summary() map[string]any {
	c := r.Counts()
	insts := make([]map[string]any, len(r.Instances))
	for i, ir := range r.Instances {
		m := map[string]any{
			"instance": ir.Instance.String(), "server": ir.Server, "service": ir.Service, "name": ir.Name,
			"result": ir.Result, "batch": ir.Batch, "canary": ir.Canary,
		}
		if ir.Error != "" {
			m["error"] = firstLine(ir.Error)
		}
		insts[i] = m
	}
	s := map[string]any{
		"template": r.Template, "outcome": r.Outcome, "exit_code": r.ExitCode, "dry_run": r.DryRun,
		"duration": r.Duration.Round(time.Millisecond),
		"counts": map[string]any{
			"ok": c.OK, "failed": c.Failed, "rolled_back": c.RolledBack, "skipped": c.Skipped, "interrupted": c.Interrupted,
		},
		"instances": insts,
	}
	if r.Error != "" {
		s["error"] = firstLine(r.Error)
	}
	return s
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
