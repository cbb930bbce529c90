package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
)

// staged is the built-in deploy with the strategy given, so that a test
// can declare canaries the way a template does.
func staged(strategy string) string {
	return `local deploy = flows.builtin("deploy")
return {
  name = "staged",
  params = deploy.params,
  strategy = ` + strategy + `,
  each = deploy.each,
  rollback = deploy.rollback,
}`
}

// batchesOf lists each instance's batch number, in order.
func batchesOf(rep *engine.Report) string {
	var out []string
	for _, ir := range rep.Instances {
		out = append(out, fmt.Sprint(ir.Batch))
	}
	return strings.Join(out, " ")
}

// stepped lists the instances that received a step, sorted.
func stepped(f *enginetest.Fleet) string {
	var out []string
	for _, c := range f.Calls() {
		if !slices.Contains(out, c.Instance.String()) {
			out = append(out, c.Instance.String())
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestCanary runs a template whose strategy declares canaries on web01
// and web02 (a1, a2 each): the canaries run first, in batches of their
// own, and a failed canary ends the run before any other instance starts,
// whatever the failure budget.
func TestCanary(t *testing.T) {
	tests := []struct {
		name     string
		strategy string
		fail     map[string]map[string]string
		exit     int
		outcome  string
		results  string
		batches  string
		stepped  string // the instances that received a step, sorted
	}{
		{
			name: "one canary, then batches of two", strategy: `{ canary = 1, batch = 2 }`,
			exit: engine.ExitOK, outcome: engine.OutcomeSucceeded,
			results: "web01/A/a1=ok web01/A/a2=ok web02/A/a1=ok web02/A/a2=ok",
			batches: "1 2 2 3",
			stepped: "web01/A/a1 web01/A/a2 web02/A/a1 web02/A/a2",
		},
		{
			name: "a percentage of the targets", strategy: `{ canary = "25%", batch = "100%" }`,
			exit: engine.ExitOK, outcome: engine.OutcomeSucceeded,
			results: "web01/A/a1=ok web01/A/a2=ok web02/A/a1=ok web02/A/a2=ok",
			batches: "1 2 2 2",
			stepped: "web01/A/a1 web01/A/a2 web02/A/a1 web02/A/a2",
		},
		{
			name: "canaries in batches of the batch size", strategy: `{ canary = 3, batch = 2 }`,
			exit: engine.ExitOK, outcome: engine.OutcomeSucceeded,
			results: "web01/A/a1=ok web01/A/a2=ok web02/A/a1=ok web02/A/a2=ok",
			batches: "1 1 2 3",
			stepped: "web01/A/a1 web01/A/a2 web02/A/a1 web02/A/a2",
		},
		{
			name: "canary rolled back: exit 1, the rest untouched", strategy: `{ canary = 1, batch = 2, max_failures = "100%" }`,
			fail: map[string]map[string]string{"web01/A/a1": {"install": "disk full"}},
			exit: engine.ExitRolledBack, outcome: engine.OutcomeRolledBack,
			results: "web01/A/a1=rolled-back web01/A/a2=skipped web02/A/a1=skipped web02/A/a2=skipped",
			batches: "1 2 2 3",
			stepped: "web01/A/a1",
		},
		{
			name: "canary not rolled back: exit 3, the rest untouched", strategy: `{ canary = 1, batch = 2, max_failures = 3 }`,
			fail: map[string]map[string]string{"web01/A/a1": {"health": "HTTP 503"}},
			exit: engine.ExitUnhealthy, outcome: engine.OutcomeUnhealthy,
			results: "web01/A/a1=failed web01/A/a2=skipped web02/A/a1=skipped web02/A/a2=skipped",
			batches: "1 2 2 3",
			stepped: "web01/A/a1",
		},
		{
			name: "the next canary batch does not start", strategy: `{ canary = 2, batch = 1, max_failures = "100%" }`,
			fail: map[string]map[string]string{"web01/A/a1": {"install": "disk full"}},
			exit: engine.ExitRolledBack, outcome: engine.OutcomeRolledBack,
			results: "web01/A/a1=rolled-back web01/A/a2=skipped web02/A/a1=skipped web02/A/a2=skipped",
			batches: "1 2 3 4",
			stepped: "web01/A/a1",
		},
		{
			name: "a canary batch finishes, then the run stops", strategy: `{ canary = 2, batch = 2, max_failures = "100%" }`,
			fail: map[string]map[string]string{"web01/A/a2": {"install": "disk full"}},
			exit: engine.ExitRolledBack, outcome: engine.OutcomeRolledBack,
			results: "web01/A/a1=ok web01/A/a2=rolled-back web02/A/a1=skipped web02/A/a2=skipped",
			batches: "1 1 2 2",
			stepped: "web01/A/a1 web01/A/a2",
		},
		{
			name: "after the canaries, the failure budget applies", strategy: `{ canary = 1, batch = 1, max_failures = 1 }`,
			fail: map[string]map[string]string{"web01/A/a2": {"install": "disk full"}},
			exit: engine.ExitRolledBack, outcome: engine.OutcomeRolledBack,
			results: "web01/A/a1=ok web01/A/a2=rolled-back web02/A/a1=ok web02/A/a2=ok",
			batches: "1 2 3 4",
			stepped: "web01/A/a1 web01/A/a2 web02/A/a1 web02/A/a2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01", "web02")
			f.Fail = tt.fail
			rep, err := run(context.Background(), registry(t, map[string]string{"staged": staged(tt.strategy)}), "staged", map[string]string{"service": "A", "artifact": artifact(t)}, engine.Options{
				Servers: []string{"web01", "web02"}, Target: f,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.ExitCode != tt.exit || rep.Outcome != tt.outcome || results(rep) != tt.results {
				t.Fatalf("exit %d %s %s, want %d %s %s", rep.ExitCode, rep.Outcome, results(rep), tt.exit, tt.outcome, tt.results)
			}
			if got := batchesOf(rep); got != tt.batches {
				t.Errorf("batches %s, want %s", got, tt.batches)
			}
			if got := stepped(f); got != tt.stepped {
				t.Errorf("steps went to %s, want %s", got, tt.stepped)
			}
		})
	}
}

// TestCanaryOptions: Options.Canary, Batch and MaxFailures (--canary,
// --batch, --max-failures) override the template's strategy, and the
// report names the canaries and why the others did not start.
func TestCanaryOptions(t *testing.T) {
	count := func(parse func(string) (engine.Count, error), s string) engine.Count {
		c, err := parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		template string
		opts     engine.Options
		fail     map[string]map[string]string
		results  string
		batches  string
		canaries string
		skipped  string // the error of a skipped instance
	}{
		{
			name: "canary on a template without one", template: "deploy",
			opts:    engine.Options{Canary: count(engine.ParseCanary, "1"), Batch: count(engine.ParseBatch, "2"), MaxFailures: count(engine.ParseMaxFailures, "100%")},
			fail:    map[string]map[string]string{"web01/A/a1": {"install": "disk full"}},
			results: "web01/A/a1=rolled-back web01/A/a2=skipped web02/A/a1=skipped web02/A/a2=skipped",
			batches: "1 2 2 3", canaries: "web01/A/a1",
			skipped: "not started: canary web01/A/a1 failed",
		},
		{
			name: "--canary 0 switches the template's off", template: "staged",
			opts:    engine.Options{Canary: count(engine.ParseCanary, "0")},
			results: "web01/A/a1=ok web01/A/a2=ok web02/A/a1=ok web02/A/a2=ok",
			batches: "1 1 1 1",
		},
		{
			name: "--batch sizes the canaries' batches too", template: "staged",
			opts:    engine.Options{Canary: count(engine.ParseCanary, "3"), Batch: count(engine.ParseBatch, "1")},
			results: "web01/A/a1=ok web01/A/a2=ok web02/A/a1=ok web02/A/a2=ok",
			batches: "1 2 3 4", canaries: "web01/A/a1 web01/A/a2 web02/A/a1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01", "web02")
			f.Fail = tt.fail
			tt.opts.Servers, tt.opts.Target = []string{"web01", "web02"}, f
			reg := registry(t, map[string]string{"staged": staged(`{ canary = 1, batch = "100%" }`)})
			rep, err := run(context.Background(), reg, tt.template, map[string]string{"service": "A", "artifact": artifact(t)}, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := results(rep); got != tt.results {
				t.Fatalf("results %s, want %s", got, tt.results)
			}
			if got := batchesOf(rep); got != tt.batches {
				t.Errorf("batches %s, want %s", got, tt.batches)
			}
			var canaries []string
			for _, ir := range rep.Instances {
				if ir.Canary {
					canaries = append(canaries, ir.Instance.String())
				}
				if ir.Result == engine.ResultSkipped && ir.Error != tt.skipped {
					t.Errorf("%s: error %q, want %q", ir.Instance, ir.Error, tt.skipped)
				}
			}
			if got := strings.Join(canaries, " "); got != tt.canaries || rep.Canary != len(canaries) {
				t.Errorf("canaries %s (report: %d), want %s", got, rep.Canary, tt.canaries)
			}
		})
	}
}
