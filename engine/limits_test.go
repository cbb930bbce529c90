package engine_test

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
)

// eachFlow is a test template whose each is body, at line 4 of test/flow.lua.
func eachFlow(body string) string {
	return "return {\n  name = \"flow\", params = { service = { doc = \"s\" } },\n  each = function(i, ctx)\n    " + body + "\n  end,\n}\n"
}

// A flow that allocates more than the flow memory limit fails at its line
// with a flow error, whether one primitive would allocate it at once or a
// loop grows it, and the run ends as a failed flow does: exit 2 when
// nothing changed, 3 when a step had. These tests measure the process's
// heap: they do not run in parallel.
func TestFlowMemory(t *testing.T) {
	const limit = 64 << 20
	const msg = "flow memory limit exceeded (64 MiB); BAEPO_FLOW_MEMORY raises it"
	tests := []struct {
		name, each string
		want       string // in the instance's error, after "test/flow.lua:"
		exit       int
	}{
		{"string.rep", `local s = string.rep("x", 2^31)`, "4: string.rep: " + msg, engine.ExitUsage},
		{"string.rep method", `local s = ("xy"):rep(2^30)`, "4: string.rep: " + msg, engine.ExitUsage},
		{"string.rep overflowing", `local s = ("x"):rep(2^20):rep(2^52)`, "4: string.rep: " + msg, engine.ExitUsage},
		{"string.format width", `local s = string.format("%999999999d", 1)`, "4: string.format: " + msg, engine.ExitUsage},
		{"table.concat", `local t = {} for n = 1, 32 do t[n] = ("x"):rep(2^20) end local s = table.concat(t, ("y"):rep(2^20))`, "4: table.concat: " + msg, engine.ExitUsage},
		{"gsub result", `local s = ("x"):rep(2^20):gsub("x", ("y"):rep(100))`, "4: string.gsub: " + msg, engine.ExitUsage},
		{"doubling concat", `local s = ("x"):rep(2^20) while true do s = s .. s end`, "4: " + msg, engine.ExitUsage},
		{"growing table", `local t = {} local n = 0 while true do n = n + 1 t[n] = { n } end`, "4: " + msg, engine.ExitUsage},
		{"after a step", `i:stop() local s = ("x"):rep(2^20) while true do s = s .. s end`, "4: " + msg, engine.ExitUnhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, _ := flow(t, eachFlow(tt.each), engine.Options{FlowMemory: limit})
			ir := rep.Instances[0]
			if ir.Result != engine.ResultFailed || !strings.Contains(ir.Error, "test/flow.lua:"+tt.want) {
				t.Fatalf("result %s, error %q; want test/flow.lua:%s", ir.Result, ir.Error, tt.want)
			}
			if rep.ExitCode != tt.exit {
				t.Fatalf("exit %d (%s), want %d", rep.ExitCode, rep.Outcome, tt.exit)
			}
		})
	}
}

// Pattern functions stop at the run's timeout, however long the pattern
// would backtrack.
func TestPatternsStopAtTimeout(t *testing.T) {
	const pathological = `("a"):rep(40), ("(a*)"):rep(40) .. "b"`
	for _, call := range []string{
		"string.find(" + pathological + ")",
		"string.match(" + pathological + ")",
		"for x in string.gmatch(" + pathological + ") do end",
		"string.gsub(" + pathological + ", 'x')",
	} {
		t.Run(call[:strings.IndexByte(call, '(')], func(t *testing.T) {
			rep, _ := flow(t, eachFlow(call), engine.Options{Timeout: 200 * time.Millisecond})
			ir := rep.Instances[0]
			if ir.Result != engine.ResultInterrupted || !strings.Contains(ir.Error, "test/flow.lua:4: ") || !strings.Contains(ir.Error, ": timeout after 200ms (raise it with --timeout)") {
				t.Fatalf("result %s, error %q", ir.Result, ir.Error)
			}
			if rep.ExitCode != engine.ExitUsage || rep.Instances[1].Result != engine.ResultSkipped {
				t.Fatalf("exit %d, %s", rep.ExitCode, results(rep))
			}
		})
	}
}

// A pattern function stops at an interrupt too, with the interrupt's cause.
func TestPatternsStopAtInterrupt(t *testing.T) {
	f := fleet("web01")
	reg := registry(t, map[string]string{"flow": eachFlow(`string.find(("a"):rep(40), ("(a*)"):rep(40) .. "b")`)})
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(100*time.Millisecond, func() { cancel(exitCause{}) })
	rep, err := run(ctx, reg, "flow", map[string]string{"service": "A"}, engine.Options{
		Servers: []string{"web01"}, Target: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	ir := rep.Instances[0]
	if ir.Result != engine.ResultInterrupted || ir.Error != "test/flow.lua:4: string.find: terminated (SIGTERM)" || rep.ExitCode != 143 {
		t.Fatalf("exit %d, %s: %q", rep.ExitCode, ir.Result, ir.Error)
	}
}

// A panic in a Go function a flow calls is a flow error at its line.
func TestPanicInPrimitive(t *testing.T) {
	for _, tt := range []struct {
		name, each string
		exit       int
	}{
		{"before any step", "math.random(0)", engine.ExitUsage},
		{"after a step", "i:stop() math.random(0)", engine.ExitUnhealthy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, _ := flow(t, eachFlow(tt.each), engine.Options{})
			ir := rep.Instances[0]
			if ir.Result != engine.ResultFailed || !strings.HasPrefix(ir.Error, "test/flow.lua:4: math.random: internal error: invalid argument to Intn") {
				t.Fatalf("result %s, error %q", ir.Result, ir.Error)
			}
			if rep.ExitCode != tt.exit {
				t.Fatalf("exit %d, want %d", rep.ExitCode, tt.exit)
			}
		})
	}
}

// An instance whose last step was running when the run was interrupted,
// and that finished it, is ok: its flow returns. Its next step would not
// have started.
func TestInterruptAfterLastStep(t *testing.T) {
	for _, tt := range []struct {
		name, each, result string
	}{
		{"last step", "i:restart()\n    log.info('restarted')", "web01/A/a1=ok web01/A/a2=skipped"},
		{"a step follows", "i:restart()\n    i:health()", "web01/A/a1=interrupted web01/A/a2=skipped"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01")
			f.Delay = 300 * time.Millisecond
			ctx, cancel := context.WithCancelCause(context.Background())
			rep, err := run(ctx, registry(t, map[string]string{"flow": eachFlow(tt.each)}), "flow", map[string]string{"service": "A"}, engine.Options{
				Servers: []string{"web01"}, Target: &interruptInStep{Fleet: f, cancel: cancel},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := results(rep); got != tt.result || rep.ExitCode != 143 {
				t.Fatalf("exit %d, %s; want %s", rep.ExitCode, got, tt.result)
			}
			if steps := len(f.Calls()); steps != 1 {
				t.Fatalf("%d steps sent", steps)
			}
		})
	}
}

// interruptInStep interrupts the run 50ms into its first step, with
// cause (exitCause when nil): what a signal does, whatever the time the run
// took to start.
type interruptInStep struct {
	*enginetest.Fleet
	cancel context.CancelCauseFunc
	cause  error
	once   sync.Once
}

func (t *interruptInStep) Do(ctx context.Context, inst engine.Instance, st engine.Step) (engine.StepResult, error) {
	t.once.Do(func() {
		time.AfterFunc(50*time.Millisecond, func() { t.cancel(cmp.Or(t.cause, error(exitCause{}))) })
	})
	return t.Fleet.Do(ctx, inst, st)
}

// A run interrupted through a context whose cause names no exit code exits
// 2 when nothing changed, 3 when something did.
func TestInterruptWithoutExitCode(t *testing.T) {
	for _, tt := range []struct {
		name, each string
		exit       int
	}{
		{"nothing changed", "sleep(60)", engine.ExitUsage},
		{"a step changed something", "i:stop() sleep(60)", engine.ExitUnhealthy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			stopped := errors.New("stopped")
			var target engine.Target = &interruptInStep{Fleet: fleet("web01"), cancel: cancel, cause: stopped}
			if tt.name == "nothing changed" {
				time.AfterFunc(100*time.Millisecond, func() { cancel(stopped) })
				target = fleet("web01")
			}
			rep, err := run(ctx, registry(t, map[string]string{"flow": eachFlow(tt.each)}), "flow", map[string]string{"service": "A"}, engine.Options{
				Servers: []string{"web01"}, Target: target,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Outcome != engine.OutcomeInterrupted || rep.ExitCode != tt.exit {
				t.Fatalf("%s exit %d, want %d", rep.Outcome, rep.ExitCode, tt.exit)
			}
		})
	}
}
