package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Options are the inputs of one run besides the template and its params.
type Options struct {
	Servers     []string      // server names, already resolved from the inventory, in order
	Batch       Count         // overrides strategy.batch when set
	MaxFailures Count         // overrides strategy.max_failures when set
	Canary      Count         // overrides strategy.canary when set
	Timeout     time.Duration // whole-run limit; 0 = DefaultTimeout
	Grace       time.Duration // how long a running step may finish after an interrupt; 0 = DefaultGrace
	FlowMemory  int64         // bytes the run's flows may hold together (see memoryWatch); 0 = DefaultFlowMemory
	DryRun      bool          // record mutating steps instead of sending them
	Build       Build
	Target      Target
	Logger      *slog.Logger
}

// Defaults for Options.
const (
	DefaultTimeout = 30 * time.Minute
	DefaultGrace   = 30 * time.Second
)

// luaGrace is how long Lua code may go on after an interrupt or the
// timeout once no step runs: a flow whose last step was running returns,
// and its instance is ok. New steps do not start (see worker.send).
const luaGrace = time.Second

// run is the state of one Run call.
type run struct {
	t         *Template
	opts      Options
	params    map[string]any
	artifacts map[string]Artifact // the artifact params, by the text a flow sees
	target    Target
	logger    *slog.Logger
	ctx       context.Context             // cancelled by an interrupt or the timeout: no new step starts
	stepCtx   context.Context             // cancelled a grace period after ctx: running steps stop
	changed   atomic.Bool                 // a mutating step reached an agent
	beforeErr error                       // the template's before hook failed: no batch started
	luaStop   context.Context             // what Lua runs under in place of ctx: cancelled luaGrace after ctx once no step runs
	mem       *memoryWatch                // stops Lua calls when the flows hold too much memory
	inflight  atomic.Int32                // steps running now
	lastStep  atomic.Int64                // when the last step ended, in Unix nanoseconds
	notes     map[Instance]map[string]any // the fields targets set on each instance; read-only once resolved

	mu      sync.Mutex
	idle    []*worker
	all     []*worker
	planned []StepRecord // a dry run's planned steps outside any instance (Report.Planned)
}

// Run runs the template with params, which must come from its
// ParseParams. An error means nothing ran: bad input (a [UsageError]), or
// targets that could not be resolved (an [ErrUnreachable] error when an agent
// could not be reached). Otherwise the report says what happened, and its
// ExitCode what the process should exit with; a run cancelled through ctx is
// reported as interrupted.
func (t *Template) Run(ctx context.Context, params Params, opts Options) (*Report, error) {
	if params.t != t {
		return nil, fmt.Errorf("engine: run %s: params not made by its ParseParams", t.Name)
	}
	if len(opts.Servers) == 0 {
		return nil, usagef("%s: no servers: pass --server NAMES", t.Name)
	}
	if opts.Target == nil {
		return nil, errors.New("engine: Options.Target is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.FlowMemory <= 0 {
		opts.FlowMemory = DefaultFlowMemory
	}
	r := &run{t: t, opts: opts, params: params.values, artifacts: map[string]Artifact{}, target: opts.Target, logger: opts.Logger.With("template", t.Name)}
	artifacts := params.artifacts()
	for _, a := range artifacts {
		r.artifacts[a.String()] = a
	}

	runCtx, cancel := context.WithTimeoutCause(ctx, opts.Timeout, fmt.Errorf("timeout after %s (raise it with --timeout)", opts.Timeout))
	defer cancel()
	stepCtx, cancelSteps := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelSteps(nil)
	stopGrace := context.AfterFunc(runCtx, func() {
		time.AfterFunc(opts.Grace, func() { cancelSteps(context.Cause(runCtx)) })
	})
	defer stopGrace()
	luaStop, stopLua := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopLua(nil)
	r.ctx, r.stepCtx, r.luaStop = runCtx, stepCtx, luaStop
	stopLuaLater := context.AfterFunc(runCtx, func() { r.stopLuaAfterSteps(stopLua, context.Cause(runCtx)) })
	defer stopLuaLater()
	r.mem = newMemoryWatch(opts.FlowMemory)
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go r.mem.run(watchCtx)
	defer r.close()

	report := &Report{
		Template: t.Name, Params: params.values, Servers: opts.Servers, DryRun: opts.DryRun,
		Build: opts.Build, Started: time.Now(),
	}
	insts, err := r.resolve()
	if err != nil {
		return nil, err
	}
	batch := cmp.Or(opts.Batch, t.Batch, defaultBatch).Of(len(insts))
	maxFail := cmp.Or(opts.MaxFailures, t.MaxFailures).Of(len(insts))
	canary := min(cmp.Or(opts.Canary, t.Canary).Of(len(insts)), len(insts))
	// An interrupt during the upload is reported like one during a step:
	// no step starts, and the summary and reports say so.
	if err := r.prepare(insts, artifacts); err != nil && !interrupted(runCtx) {
		return nil, err
	}
	report.Batch, report.MaxFail, report.Canary = batch, maxFail, canary
	report.Instances = make([]InstanceReport, len(insts))
	spans := batches(len(insts), canary, batch)
	for n, sp := range spans {
		for i := sp.start; i < sp.end; i++ {
			report.Instances[i] = InstanceReport{Instance: insts[i], Batch: n + 1, Canary: i < canary, Result: ResultSkipped}
		}
	}
	r.logger.Info("run started", "instances", len(insts), "canary", canary, "batch", batch, "max_failures", maxFail, "dry_run", opts.DryRun)
	if r.before(report) {
		r.runBatches(report, spans, canary, maxFail)
	}
	report.Duration = time.Since(report.Started)
	r.finish(report, runCtx)
	r.after(report)
	report.Duration = time.Since(report.Started)
	report.Planned = r.planned
	r.logger.Info("run finished", "outcome", report.Outcome, "exit_code", report.ExitCode, "took", report.Duration.Round(time.Millisecond))
	return report, nil
}

// stopLuaAfterSteps cancels r.luaStop with cause once no step has run for
// luaGrace, or when the grace period of running steps ends.
func (r *run) stopLuaAfterSteps(stop context.CancelCauseFunc, cause error) {
	since := time.Now()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.luaStop.Done():
			return
		case <-r.stepCtx.Done():
			stop(cause)
			return
		case <-t.C:
		}
		last := max(since.UnixNano(), r.lastStep.Load())
		if r.inflight.Load() == 0 && time.Since(time.Unix(0, last)) >= luaGrace {
			stop(cause)
			return
		}
	}
}

// runBatches runs the batches one after the other, the instances of each
// in parallel, until they are done, the run is stopped, the failure budget
// is spent or a canary failed.
func (r *run) runBatches(report *Report, spans []span, canary, maxFail int) {
	failures := 0
	for _, sp := range spans {
		if r.ctx.Err() != nil {
			r.logger.Warn("run stopped: no new batch starts", "reason", context.Cause(r.ctx))
			break
		}
		if failures > maxFail {
			r.logger.Warn("failure budget spent: no new batch starts", "failed", failures, "max_failures", maxFail)
			break
		}
		group := report.Instances[sp.start:sp.end]
		var wg sync.WaitGroup
		for i := range group {
			wg.Go(func() { r.runInstance(&group[i]) })
		}
		wg.Wait()
		var failed []string
		for _, ir := range group {
			if ir.Failed() {
				failures++
				failed = append(failed, ir.Instance.String())
			}
		}
		// A failed canary stops the run, whatever the failure budget: the
		// other instances stay as they are.
		if sp.start < canary && len(failed) > 0 {
			r.logger.Warn("canary failed: no other instance starts", "failed", failed)
			for i := range report.Instances[sp.end:] {
				report.Instances[sp.end+i].Error = "not started: canary " + strings.Join(failed, ", ") + " failed"
			}
			return
		}
	}
}

// span is one batch: the instances [start, end) of a run.
type span struct{ start, end int }

// batches cuts n instances into batches of size, the first canary of them
// apart: canaries run in batches of size too, but no batch holds both a
// canary and another instance.
func batches(n, canary, size int) []span {
	var out []span
	for start := 0; start < n; {
		end := min(start+size, n)
		if start < canary {
			end = min(end, canary)
		}
		out = append(out, span{start, end})
		start = end
	}
	return out
}

// resolve calls targets (or lists the service's instances) per server, in
// server order, and drops duplicates. It keeps the fields targets set on
// each instance in r.notes, for each.
func (r *run) resolve() ([]Instance, error) {
	w := r.get()
	defer r.put(w)
	var out []Instance
	r.notes = map[Instance]map[string]any{}
	seen := map[Instance]bool{}
	for _, server := range r.opts.Servers {
		picked, err := w.callTargets(server)
		if err != nil {
			if refused(err) {
				return nil, err
			}
			return nil, usagef("%s: resolve targets: %v", r.t.Name, err)
		}
		for _, p := range picked {
			if !seen[p.inst] {
				seen[p.inst] = true
				out = append(out, p.inst)
				if len(p.notes) > 0 {
					r.notes[p.inst] = p.notes
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, usagef("%s: no instances to run on %v (check --service and the agents' services)", r.t.Name, r.opts.Servers)
	}
	return out, nil
}

// prepare hands the run's artifact params to a Preparer target, with the
// servers that have instances to run on.
func (r *run) prepare(insts []Instance, artifacts []Artifact) error {
	p, ok := r.target.(Preparer)
	if !ok || r.opts.DryRun || len(artifacts) == 0 {
		return nil
	}
	var servers []string
	for _, inst := range insts {
		if !slices.Contains(servers, inst.Server) {
			servers = append(servers, inst.Server)
		}
	}
	err := p.Prepare(r.ctx, servers, artifacts)
	var ue *UsageError
	switch {
	case err == nil:
		return nil
	case refused(err), errors.As(err, &ue):
		return err
	default:
		return usagef("%s: prepare artifacts: %v", r.t.Name, err)
	}
}

// runInstance runs each for one instance and, when it fails, rollback.
func (r *run) runInstance(ir *InstanceReport) {
	start := time.Now()
	defer func() { ir.Duration = time.Since(start) }()
	w := r.get()
	defer r.put(w)
	// A panic of the engine's own (a Lua state's are Lua errors, see
	// sandbox.recoverPanics) fails the instance, not the run: the other
	// instances, the summary and the reports go on. The worker is not
	// used again.
	defer func() {
		if v := recover(); v != nil {
			w.broken = true
			ir.Result = ResultFailed
			ir.addError(fmt.Sprintf("internal error: %v (a bug in baepo: please report it)", v))
			r.logger.Error("instance failed: internal error", "instance", ir.Instance.String(), "panic", v)
		}
	}()
	if err := w.fresh(); err != nil {
		ir.Result, ir.Error = ResultFailed, err.Error()
		r.logger.Error("instance failed", "instance", ir.Instance.String(), "error", err)
		return
	}
	w.cur, w.phase = ir, "each"
	defer func() { w.cur = nil }()
	ud := w.newInstance(ir.Instance, r.notes[ir.Instance])
	err := w.planStatus()
	if err == nil {
		err = w.call("each", ud, w.ctx)
	}
	switch {
	case err == nil:
		ir.Result = ResultOK
		return
	case r.ctx.Err() != nil:
		ir.Result = ResultInterrupted
		ir.addError(err.Error())
		r.logger.Error("instance interrupted", "instance", ir.Instance.String(), "error", err)
		return
	}
	ir.Result, ir.unreached, ir.notHealthy = ResultFailed, unreached(w.goErr), errors.Is(w.goErr, errNotHealthy)
	ir.addError(err.Error())
	r.logger.Error("instance failed", "instance", ir.Instance.String(), "error", err)
	if !r.t.HasRollback {
		return
	}
	if ir.unreached {
		ir.addError("rollback not tried: the agent cannot be reached")
		return
	}
	w.phase = "rollback"
	r.logger.Warn("rolling back", "instance", ir.Instance.String())
	if rerr := w.call("rollback", ud, w.ctx, lua.LString(err.Error())); rerr != nil {
		ir.addError("rollback failed: " + rerr.Error())
		r.logger.Error("rollback failed", "instance", ir.Instance.String(), "error", rerr)
		return
	}
	ir.Result = ResultRolledBack
	r.logger.Info("rolled back", "instance", ir.Instance.String())
}

// finish sets the report's outcome and exit code. Exit 3 says that
// something changed: a run that failed before any step changed an
// instance ends with 4 when every failed instance met an agent it could
// not reach (or a busy one), else with 2 (a step the agent refused, a
// read-only step that failed, an error of the flow). A failed before hook
// ends with 2: no instance started. An interrupt whose cause is an
// [ExitCoder] ends with its code.
func (r *run) finish(report *Report, runCtx context.Context) {
	var failed, unhealthy, unreachable, verdicts int
	for _, ir := range report.Instances {
		if !ir.Failed() {
			continue
		}
		failed++
		if ir.notHealthy {
			verdicts++
		}
		if ir.Result != ResultRolledBack {
			unhealthy++
		}
		if ir.unreached {
			unreachable++
		}
	}
	switch cause := context.Cause(runCtx); {
	case interrupted(runCtx):
		report.Outcome, report.ExitCode = OutcomeInterrupted, ExitUnhealthy
		if !r.changed.Load() {
			report.ExitCode = ExitUsage
		}
		if ec := ExitCoder(nil); errors.As(cause, &ec) {
			report.ExitCode = ec.ExitCode()
		}
		report.Error = cause.Error()
	case r.beforeErr != nil:
		report.Outcome, report.ExitCode = OutcomeUnchanged, ExitUsage
		report.Error = "before failed: " + r.beforeErr.Error()
	case failed == 0:
		report.Outcome, report.ExitCode = OutcomeSucceeded, ExitOK
	case !r.changed.Load() && verdicts > 0:
		// A check that found an instance not healthy: nothing changed,
		// and someone must look.
		report.Outcome, report.ExitCode = OutcomeUnhealthy, ExitUnhealthy
	case !r.changed.Load() && unreachable == failed:
		report.Outcome, report.ExitCode = OutcomeUnreachable, ExitUnreachable
	case !r.changed.Load():
		report.Outcome, report.ExitCode = OutcomeUnchanged, ExitUsage
	case unhealthy == 0:
		report.Outcome, report.ExitCode = OutcomeRolledBack, ExitRolledBack
	default:
		report.Outcome, report.ExitCode = OutcomeUnhealthy, ExitUnhealthy
	}
	if report.Error == "" && failed > 0 {
		report.Error = fmt.Sprintf("%d of %d instances failed", failed, len(report.Instances))
	}
}

// get takes an idle worker or makes a new one.
func (r *run) get() *worker {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		w := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return w
	}
	r.mu.Unlock()
	w := newWorker(r)
	r.mu.Lock()
	r.all = append(r.all, w)
	r.mu.Unlock()
	return w
}

func (r *run) put(w *worker) {
	if w.broken {
		return // closed with the others by close
	}
	r.mu.Lock()
	r.idle = append(r.idle, w)
	r.mu.Unlock()
}

func (r *run) close() {
	for _, w := range r.all {
		w.L.Close()
	}
}

// refused reports whether err says the step it ended changed nothing: an
// agent could not be reached, refused the credentials, was busy, or
// refused the step itself.
func refused(err error) bool {
	return unreached(err) || errors.Is(err, ErrRefused)
}

// unreached reports whether err says an agent could not be reached,
// refused the credentials or was busy: asking it again later may work.
func unreached(err error) bool {
	return err != nil && (errors.Is(err, ErrUnreachable) || errors.Is(err, ErrBusy))
}

// interrupted reports whether ctx was cancelled before its deadline: the
// run was stopped, by a signal in the client.
func interrupted(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded)
}
