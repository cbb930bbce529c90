package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/luahttp"
	"github.com/baepo/baepo/engine/luajson"
	"github.com/baepo/baepo/engine/luavalue"
	"github.com/baepo/baepo/engine/step"
)

// worker is one Lua state of a run. A worker runs one instance at a time
// and is never shared between goroutines; the run keeps idle workers in a
// pool. The state, its libraries and the compiled template outlive an
// instance; what a template can write to does not (see fresh).
type worker struct {
	r *run
	*sandbox
	decl      *lua.LTable    // the table the template returned, in this environment
	ctx       *lua.LTable    // the ctx argument of targets, each and rollback
	instances *lua.LFunction // ctx:instances, made once per state

	cur   *InstanceReport // the instance being run; nil while resolving targets
	phase string          // "each" or "rollback"; "before" or "after" in a hook
	goErr error           // the last Go error raised into Lua, to classify failures
	// luaCtx is what Lua runs under: the run's context, or for the after
	// hook the grace period's (see run.after). The Lua VM stops a little
	// later than the run's context (see enterLua).
	luaCtx context.Context
	// broken is set when a panic left the state in doubt: it is not used
	// again.
	broken bool
}

const instanceType = "baepo.instance"

func newWorker(r *run) *worker {
	w := &worker{r: r, sandbox: newSandbox(r.t.builtins), luaCtx: r.ctx}
	w.flowMemory = r.opts.FlowMemory
	w.installGlobals()
	w.instances = w.L.NewFunction(w.listInstances)
	protectGo(w.instances, "ctx:instances", w.protected)
	return w
}

// fresh starts a call of targets or an instance's each and rollback from
// nothing: the template's chunk runs again in a new environment, so its
// module-level locals, the globals it sets and the fields it adds to
// libraries start over, and ctx is a new copy (ctx.params too).
func (w *worker) fresh() error {
	ctx, leave := w.enterLua()
	defer leave()
	decl, err := w.eval(w.r.t.proto)
	if err != nil {
		return w.stopped(ctx, "", err)
	}
	w.decl, w.ctx = decl, w.newCtx()
	return nil
}

// installGlobals adds the modules and helpers of flows to the sandbox.
// Flows have no require: each module's Loader is called once and its table
// set as the global of its name.
func (w *worker) installGlobals() {
	L := w.L
	httpMod := &luahttp.Module{}
	if w.r.opts.DryRun {
		httpMod.Plan = w.planRequest
	}
	for name, loader := range map[string]lua.LGFunction{
		"json": luajson.Module{}.Loader,
		"http": httpMod.Loader,
		"log":  w.logLoader,
	} {
		w.loadLib(name, loader)
	}
	L.SetGlobal("sleep", L.NewFunction(w.sleep))
	L.SetGlobal("fail", L.NewFunction(luaFail))
	L.SetGlobal("unhealthy", L.NewFunction(w.unhealthy))
	L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
		w.logger().Info(joinArgs(L, 1))
		return 0
	}))

	mt := L.NewTypeMetatable(instanceType)
	protect(mt)
	methods := L.NewTable()
	for _, name := range step.Core() {
		methods.RawSetString(name, L.NewFunction(w.coreStep(step.Of(name))))
	}
	methods.RawSetString("step", L.NewFunction(w.customStep))
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		h := checkHandle(L, 1, "index")
		switch key := L.CheckString(2); key {
		case "name":
			L.Push(lua.LString(h.inst.Name))
		case "service":
			L.Push(lua.LString(h.inst.Service))
		case "server":
			L.Push(lua.LString(h.inst.Server))
		case "mode":
			mode := h.inst.Mode
			if mode == "" {
				mode = "restart"
			}
			L.Push(lua.LString(mode))
		case "balancer":
			if h.inst.Balancer == "" {
				L.Push(lua.LNil)
			} else {
				L.Push(lua.LString(h.inst.Balancer))
			}
		default:
			if m := methods.RawGetString(key); m != lua.LNil {
				L.Push(m)
			} else {
				L.Push(h.vars.RawGetString(key))
			}
		}
		return 1
	}))
	// Other fields are the flow's own per-instance notes (i.installed =
	// true in each, read back in rollback); they live as long as the
	// instance's run.
	L.SetField(mt, "__newindex", L.NewFunction(func(L *lua.LState) int {
		h := checkHandle(L, 1, "newindex")
		key := L.CheckString(2)
		if key == "name" || key == "service" || key == "server" || key == "balancer" || key == "mode" || methods.RawGetString(key) != lua.LNil {
			L.ArgError(2, fmt.Sprintf("instance field %q is read-only", key))
		}
		h.vars.RawSetString(key, L.Get(3))
		return 0
	}))
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(checkInstance(L, 1, "tostring").String()))
		return 1
	}))
	methods.ForEach(func(k, v lua.LValue) { protectGo(v.(*lua.LFunction), "i:"+k.String(), w.protected) })
	mt.ForEach(func(k, v lua.LValue) {
		if fn, ok := v.(*lua.LFunction); ok {
			protectGo(fn, "instance "+k.String(), w.protected)
		}
	})
	w.recoverPanics()
}

// newCtx builds the ctx table: params, build, template, dry_run, servers and
// the instances method. Every table in it is new.
func (w *worker) newCtx() *lua.LTable {
	L, r := w.L, w.r
	ctx := L.CreateTable(0, 8)
	params := L.CreateTable(0, len(r.params))
	for k, v := range r.params {
		params.RawSetString(k, luavalue.ToLua(L, v))
	}
	ctx.RawSetString("params", params)
	build := L.CreateTable(0, 4)
	for k, v := range map[string]string{"tag": r.opts.Build.Tag, "url": r.opts.Build.URL, "job": r.opts.Build.Job, "number": r.opts.Build.Number} {
		if v != "" {
			build.RawSetString(k, lua.LString(v))
		}
	}
	ctx.RawSetString("build", build)
	ctx.RawSetString("template", lua.LString(r.t.Name))
	ctx.RawSetString("dry_run", lua.LBool(r.opts.DryRun))
	ctx.RawSetString("servers", luavalue.ToLua(L, r.opts.Servers))
	ctx.RawSetString("instances", w.instances)
	return ctx
}

// listInstances implements ctx:instances([service]): the instances of
// service (of every service when omitted) on the server being resolved.
func (w *worker) listInstances(L *lua.LState) int {
	self := L.CheckTable(1)
	service := L.OptString(2, "")
	server := lua.LVAsString(self.RawGetString("server"))
	if server == "" {
		L.RaiseError("ctx:instances: no server in ctx (call it from targets)")
	}
	insts, err := w.r.target.Instances(w.r.stepCtx, server, service)
	if err != nil {
		w.goErr = err
		L.RaiseError("instances of %s on %s: %v", orAll(service), server, err)
	}
	tbl := L.CreateTable(len(insts), 0)
	for _, inst := range insts {
		tbl.Append(w.newInstance(inst, nil))
	}
	L.Push(tbl)
	return 1
}

func orAll(service string) string {
	if service == "" {
		return "every service"
	}
	return "service " + service
}

// handle is the Go side of an instance value in Lua.
type handle struct {
	inst Instance
	vars *lua.LTable
}

// newInstance makes the Lua value of inst, with the fields targets set on it.
func (w *worker) newInstance(inst Instance, notes map[string]any) *lua.LUserData {
	vars := w.L.CreateTable(0, len(notes))
	for k, v := range notes {
		vars.RawSetString(k, luavalue.ToLua(w.L, v))
	}
	ud := w.L.NewUserData()
	ud.Value = &handle{inst: inst, vars: vars}
	w.L.SetMetatable(ud, w.L.GetTypeMetatable(instanceType))
	return ud
}

func checkHandle(L *lua.LState, n int, method string) *handle {
	if ud, ok := L.Get(n).(*lua.LUserData); ok {
		if h, ok := ud.Value.(*handle); ok {
			return h
		}
	}
	L.ArgError(n, fmt.Sprintf("instance expected: call steps with a colon, i:%s()", method))
	return nil
}

func checkInstance(L *lua.LState, n int, method string) Instance {
	return checkHandle(L, n, method).inst
}

// coreStep implements i:stop(), i:start(), … with an optional options
// table; a step with a positional argument takes it first, as in
// i:install(artifact [, opts]) and i:run(command [, opts]).
func (w *worker) coreStep(info step.Info) lua.LGFunction {
	return func(L *lua.LState) int {
		inst := checkInstance(L, 1, info.Name)
		w.checkNotHook(L, info.Name)
		if info.Arg == "" {
			L.Push(w.step(L, inst, info.Name, optArgs(L, 2)))
			return 1
		}
		var arg any
		if info.Name == step.Install {
			arg = w.artifact(L, 2)
		} else {
			arg = L.CheckString(2)
		}
		args := optArgs(L, 3)
		if args == nil {
			args = map[string]any{}
		}
		args[info.Arg] = arg
		L.Push(w.step(L, inst, info.Name, args))
		return 1
	}
}

// artifact reads install's artifact argument at n: an artifact param as
// the run parsed it, or a path or URL the flow made itself, parsed now. One
// that does not parse raises an argument error.
func (w *worker) artifact(L *lua.LState, n int) Artifact {
	raw := L.CheckString(n)
	if a, ok := w.r.artifacts[raw]; ok {
		return a
	}
	a, err := ParseArtifact(raw)
	if err != nil {
		L.ArgError(n, err.Error())
	}
	return a
}

// customStep implements i:step(name [, args]) for steps the driver declares.
func (w *worker) customStep(L *lua.LState) int {
	inst := checkInstance(L, 1, "step")
	name := L.CheckString(2)
	w.checkNotHook(L, name)
	L.Push(w.step(L, inst, name, optArgs(L, 3)))
	return 1
}

// checkNotHook raises an error for a step called from a hook: hooks run
// once per run, for no instance.
func (w *worker) checkNotHook(L *lua.LState, name string) {
	if w.phase == HookBefore || w.phase == HookAfter {
		L.RaiseError("%s: instance steps run in each and rollback, not in %s", name, w.phase)
	}
}

func optArgs(L *lua.LState, n int) map[string]any {
	if L.Get(n) == lua.LNil {
		return nil
	}
	args, err := luavalue.TableToMap(L.CheckTable(n))
	if err != nil {
		L.ArgError(n, err.Error())
	}
	return args
}

// step runs one step through the target, records it and returns its output
// as a table: { dry_run = true } for a step a dry run planned. A failed
// step raises a Lua error at the caller's line.
func (w *worker) step(L *lua.LState, inst Instance, name string, args map[string]any) lua.LValue {
	res, planned, err := w.send(inst, name, args)
	if err != nil {
		w.goErr = err
		L.RaiseError("%s %s: %v", name, inst, err)
	}
	if planned {
		tbl := L.CreateTable(0, 1)
		tbl.RawSetString("dry_run", lua.LTrue)
		return tbl
	}
	// Sized: NewTable reserves room for 32 items and 32 fields, which
	// dominated what an instance allocated.
	out := L.CreateTable(0, len(res.Output)+1)
	for k, v := range res.Output {
		out.RawSetString(k, luavalue.ToLua(L, v))
	}
	if res.Message != "" && out.RawGetString("message") == lua.LNil {
		out.RawSetString("message", lua.LString(res.Message))
	}
	return out
}

// send runs one step through the target and records it. In a dry run, a
// step that does not only read is not sent: it is checked, when the target
// is a [Checker], and recorded as planned (planned is true).
func (w *worker) send(inst Instance, name string, args map[string]any) (res StepResult, planned bool, err error) {
	r := w.r
	rec := StepRecord{Name: name, Phase: w.phase, Args: args, Started: time.Now()}
	log := r.logger.With("instance", inst.String(), "step", name)
	if err := r.ctx.Err(); err != nil {
		rec.Result, rec.Message = ResultSkipped, "not started: "+context.Cause(r.ctx).Error()
		w.record(rec)
		return res, false, fmt.Errorf("not started: %w", context.Cause(r.ctx))
	}
	st := Step{Name: name, Args: args, Build: r.opts.Build}
	info := step.Of(name)
	r.inflight.Add(1)
	defer func() {
		r.lastStep.Store(time.Now().UnixNano())
		r.inflight.Add(-1)
	}()
	if r.opts.DryRun && !info.DryRun {
		if c, ok := r.target.(Checker); ok {
			err = c.Check(r.stepCtx, inst, st)
		}
		if err == nil {
			rec.Result = ResultPlanned
			w.record(rec)
			return res, true, nil
		}
	} else {
		log.Info(name + " started")
		res, err = r.target.Do(r.stepCtx, inst, st)
		if info.Changes && !refused(err) {
			r.changed.Store(true)
		}
	}
	rec.Duration = time.Since(rec.Started)
	if err != nil {
		rec.Result, rec.Message = ResultFailed, err.Error()
		w.record(rec)
		log.Error(name+" failed", "took", rec.Duration.Round(time.Millisecond), "error", err)
		return res, false, err
	}
	rec.Result, rec.Message = ResultOK, res.Message
	if info.DryRun {
		rec.Output = res.Output // a read (status, logs) is what the report is for
	}
	w.record(rec)
	log.Info(name+" ok", "took", rec.Duration.Round(time.Millisecond), "message", res.Message)
	return res, false, nil
}

// PhasePlan is the phase of the status step a dry run sends before an
// instance's each, so that its plan shows what the instance runs now.
const PhasePlan = "plan"

// planStatus sends, in a dry run, the status step of the instance being
// run before its each, recorded in [PhasePlan]. Its output reaches the
// report as every status step's does (StepRecord.Output). A status that
// fails fails the instance, as its first step would in the real run.
func (w *worker) planStatus() error {
	if !w.r.opts.DryRun {
		return nil
	}
	phase := w.phase
	w.phase = PhasePlan
	defer func() { w.phase = phase }()
	inst := w.cur.Instance
	if _, _, err := w.send(inst, step.Status, nil); err != nil {
		w.goErr = err
		return fmt.Errorf("%s %s: %w", step.Status, inst, err)
	}
	return nil
}

// record adds rec to the steps of the instance being run. Outside an
// instance (in targets), a dry run's planned steps are the run's own.
func (w *worker) record(rec StepRecord) {
	switch {
	case w.cur != nil:
		w.cur.Steps = append(w.cur.Steps, rec)
	case rec.Result == ResultPlanned:
		rec.Phase = "targets"
		w.r.mu.Lock()
		w.r.planned = append(w.r.planned, rec)
		w.r.mu.Unlock()
	}
}

// planRequest records a request of the http module that a dry run did not
// send (http.post) as a planned step: "http.post https://chat/hooks/x".
func (w *worker) planRequest(method, url string) {
	w.record(StepRecord{Name: "http." + strings.ToLower(method) + " " + url, Phase: w.phase, Result: ResultPlanned, Started: time.Now()})
}

// logger is the run's logger narrowed to the current instance.
func (w *worker) logger() *slog.Logger {
	if w.cur != nil {
		return w.r.logger.With("instance", w.cur.Instance.String())
	}
	return w.r.logger
}

// logLoader is the log module: log.info(msg, key, value, ...), log.warn,
// log.error. Keys and values become structured attributes.
func (w *worker) logLoader(L *lua.LState) int {
	mod := L.NewTable()
	for name, level := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		mod.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			msg := L.CheckString(1)
			var attrs []any
			for i := 2; i <= L.GetTop(); i += 2 {
				key := L.CheckString(i)
				v, err := luavalue.FromLua(L.Get(i + 1))
				if err != nil {
					v = L.Get(i + 1).String()
				}
				attrs = append(attrs, key, v)
			}
			w.logger().Log(w.r.ctx, level, msg, attrs...)
			return 0
		}))
	}
	L.Push(mod)
	return 1
}

// sleep implements sleep(seconds | "duration"); an interrupt cuts it short
// with an error.
func (w *worker) sleep(L *lua.LState) int {
	d, err := luavalue.Duration(L.CheckAny(1))
	if err != nil {
		L.ArgError(1, err.Error())
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.luaCtx.Done():
		L.RaiseError("sleep interrupted: %v", context.Cause(w.luaCtx))
	}
	return 0
}

// luaFail implements fail(message): fail the instance with message.
func luaFail(L *lua.LState) int {
	L.RaiseError("%s", L.CheckString(1))
	return 0
}

// errNotHealthy marks the failure of an instance a flow judged not healthy.
var errNotHealthy = errors.New("not healthy")

// unhealthy implements unhealthy(message): fail the instance with message
// as a verdict on its health rather than on the flow. A run that changed
// nothing ends with exit 3 all the same: someone must look (the built-in
// status template uses it).
func (w *worker) unhealthy(L *lua.LState) int {
	msg := L.CheckString(1)
	w.goErr = fmt.Errorf("%w: %s", errNotHealthy, msg)
	L.RaiseError("%s", msg)
	return 0
}

func joinArgs(L *lua.LState, from int) string {
	s := ""
	for i := from; i <= L.GetTop(); i++ {
		if i > from {
			s += "\t"
		}
		s += L.ToStringMeta(L.Get(i)).String()
	}
	return s
}

// call runs the template function fn (each, rollback, before or after)
// with args, under w.luaCtx. Errors read "file:line: message".
func (w *worker) call(fn string, args ...lua.LValue) error {
	f, ok := w.decl.RawGetString(fn).(*lua.LFunction)
	if !ok {
		return fmt.Errorf("%s: template has no %s function", w.r.t.File, fn)
	}
	ctx, leave := w.enterLua()
	defer leave()
	w.goErr = nil
	if err := w.L.CallByParam(lua.P{Fn: f, NRet: 0, Protect: true}, args...); err != nil {
		return w.stopped(ctx, fn, err)
	}
	return nil
}

// enterLua sets the context of the Lua calls that follow, until leave: the
// worker's luaCtx, except that the run's context reaches Lua only once no
// step has run for luaGrace (run.luaStop), so that a flow whose last step
// was running when the run was interrupted returns. The memory watchdog
// may stop it too (see memoryWatch).
func (w *worker) enterLua() (ctx context.Context, leave func()) {
	base := w.luaCtx
	if base == w.r.ctx {
		base = w.r.luaStop
	}
	ctx, done := w.r.mem.enter(base)
	w.L.SetContext(ctx)
	return ctx, func() {
		w.L.RemoveContext()
		done()
	}
}

// stopped turns the error of a Lua call of fn under ctx into
// "file:line: message". When ctx was stopped, Lua says where ("file:line:
// context canceled"): the message says why in the user's words.
func (w *worker) stopped(ctx context.Context, fn string, err error) error {
	if ctx.Err() == nil {
		return luaError(err)
	}
	cause := context.Cause(ctx)
	if msg := luaError(err).Error(); strings.HasSuffix(msg, ctx.Err().Error()) {
		return fmt.Errorf("%s%w", strings.TrimSuffix(msg, ctx.Err().Error()), cause)
	}
	if fn == "" {
		return fmt.Errorf("%s: %w", w.r.t.File, cause)
	}
	return fmt.Errorf("%s: %w", fn, cause)
}

// targeted is one instance targets returned, with the fields the flow set
// on it there, as data.
type targeted struct {
	inst  Instance
	notes map[string]any
}

// callTargets runs targets(ctx) for one server, in a fresh environment, and
// returns the instances.
func (w *worker) callTargets(server string) ([]targeted, error) {
	L, t := w.L, w.r.t
	if !t.HasTargets {
		service, _ := w.r.params["service"].(string)
		insts, err := w.r.target.Instances(w.r.stepCtx, server, service)
		if err != nil {
			return nil, fmt.Errorf("instances of %s on %s: %w", orAll(service), server, err)
		}
		out := make([]targeted, len(insts))
		for i, inst := range insts {
			out[i].inst = inst
		}
		return out, nil
	}
	if err := w.fresh(); err != nil {
		return nil, err
	}
	w.ctx.RawSetString("server", lua.LString(server))
	f, ok := w.decl.RawGetString("targets").(*lua.LFunction)
	if !ok {
		return nil, fmt.Errorf("%s: template has no targets function", t.File)
	}
	luaCtx, leave := w.enterLua()
	defer leave()
	w.goErr = nil
	if err := L.CallByParam(lua.P{Fn: f, NRet: 1, Protect: true}, w.ctx); err != nil {
		if w.goErr != nil && refused(w.goErr) {
			return nil, fmt.Errorf("targets on %s: %w", server, w.goErr)
		}
		return nil, w.stopped(luaCtx, "targets", err)
	}
	ret := L.Get(-1)
	L.Pop(1)
	tbl, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("%s:%d: targets must return a list of instances (from ctx:instances), got %s", t.File, t.line("targets"), luavalue.Describe(ret))
	}
	var out []targeted
	for i := 1; i <= tbl.Len(); i++ {
		ud, ok := tbl.RawGetInt(i).(*lua.LUserData)
		var h *handle
		if ok {
			h, ok = ud.Value.(*handle)
		}
		if !ok {
			return nil, fmt.Errorf("%s:%d: targets must return instances from ctx:instances, item %d is %s", t.File, t.line("targets"), i, luavalue.Describe(tbl.RawGetInt(i)))
		}
		notes, err := luavalue.TableToMap(h.vars)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: targets: %s: %w (fields set in targets reach each as data: strings, numbers, bools and tables of them)", t.File, t.line("targets"), h.inst, err)
		}
		out = append(out, targeted{inst: h.inst, notes: notes})
	}
	return out, nil
}
