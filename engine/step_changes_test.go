package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
)

// refuseStop is a fleet of healthy instances whose agents refuse every
// stop as unreachable.
type refuseStop struct{ *enginetest.Fleet }

func (r refuseStop) Do(ctx context.Context, inst engine.Instance, st engine.Step) (engine.StepResult, error) {
	switch st.Name {
	case "stop":
		return engine.StepResult{}, fmt.Errorf("%w: %s: connection refused", engine.ErrUnreachable, inst.Server)
	case "health":
		return engine.StepResult{Message: "healthy"}, nil
	}
	return r.Fleet.Do(ctx, inst, st)
}

// A run counts as having changed something only when a step that changes
// an instance reached an agent: status, logs and health before an agent
// that went away still end the run with exit 4; a start does not.
func TestOnlyChangingStepsCount(t *testing.T) {
	for _, tt := range []struct {
		before string // what each runs before the refused stop
		exit   int
	}{
		{"i:status(); i:logs(); i:health()", engine.ExitUnreachable},
		{"i:start(); i:health()", engine.ExitUnhealthy},
	} {
		t.Run(tt.before, func(t *testing.T) {
			src := fmt.Sprintf(`return {
  name = "probe",
  params = { service = { doc = "s" } },
  each = function(i) %s; i:stop() end,
}`, tt.before)
			f := fleet("web01")
			rep, err := run(context.Background(), registry(t, map[string]string{"probe": src}), "probe", map[string]string{"service": "A"}, engine.Options{
				Servers: []string{"web01"}, Target: refuseStop{f},
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.ExitCode != tt.exit {
				t.Fatalf("exit %d (%s), want %d", rep.ExitCode, rep.Outcome, tt.exit)
			}
		})
	}
}

// unhealthy() is a verdict on an instance's health: a run that changed
// nothing and found one not healthy exits 3 (someone must look), where
// fail() — the flow's own failure — exits 2.
func TestUnhealthyVerdict(t *testing.T) {
	for _, tt := range []struct {
		call string
		exit int
	}{
		{`unhealthy(tostring(i) .. " is not running")`, engine.ExitUnhealthy},
		{`fail(tostring(i) .. " is not running")`, engine.ExitUsage},
	} {
		t.Run(tt.call, func(t *testing.T) {
			src := fmt.Sprintf(`return {
  name = "check",
  params = { service = { doc = "s" } },
  strategy = { batch = "100%%", max_failures = "100%%" },
  each = function(i) if not i:status().running then %s end end,
}`, tt.call)
			f := fleet("web01")
			rep, err := run(context.Background(), registry(t, map[string]string{"check": src}), "check", map[string]string{"service": "A"}, engine.Options{
				Servers: []string{"web01"}, Target: f,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.ExitCode != tt.exit || !strings.Contains(rep.Instances[0].Error, "is not running") {
				t.Fatalf("exit %d (%s), error %q; want %d", rep.ExitCode, rep.Outcome, rep.Instances[0].Error, tt.exit)
			}
		})
	}
}

// The report keeps what a step that only reads returned (status, logs),
// and nothing of the steps that change: baepo status's table and
// --report-json are made of it.
func TestReportKeepsReads(t *testing.T) {
	src := `return {
  name = "look",
  params = { service = { doc = "s" } },
  each = function(i) i:status(); i:logs(); i:start() end,
}`
	f := fleet("web01")
	rep, err := run(context.Background(), registry(t, map[string]string{"look": src}), "look", map[string]string{"service": "A"}, engine.Options{
		Servers: []string{"web01"}, Target: f,
	})
	if err != nil || rep.ExitCode != engine.ExitOK {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	got := map[string]bool{}
	for _, s := range rep.Instances[0].Steps {
		got[s.Name] = s.Output != nil
	}
	if !got["status"] || !got["logs"] || got["start"] {
		t.Fatalf("steps with output: %v, want status and logs only", got)
	}
	if st := rep.Instances[0].Steps[0].Output; st["running"] != false {
		t.Errorf("status output = %v", st)
	}
}
