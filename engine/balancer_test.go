package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
)

// balancedFlow drains the instances that have a balancer around their
// restart, as the built-in flows do.
const balancedFlow = `return {
  name = "flow", params = { service = { doc = "s" } },
  each = function(i, ctx)
    assert((i.name == "a1") == (i.balancer == "haproxy"), "i.balancer of " .. i.name .. ": " .. tostring(i.balancer))
    if i.balancer then i:drain() end
    i:stop()
    i:start()
    if i.balancer then i:undrain() end
  end,
}`

func balancedFleet() *enginetest.Fleet {
	f := fleet("web01")
	f.Balancers = map[string]string{"web01/A/a1": "haproxy"}
	return f
}

func runBalanced(t *testing.T, f *enginetest.Fleet, code string, dryRun bool) *engine.Report {
	t.Helper()
	rep, err := run(context.Background(), registry(t, map[string]string{"flow": code}), "flow", map[string]string{"service": "A"},
		engine.Options{Servers: []string{"web01"}, Target: f, DryRun: dryRun})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestBalancerSteps(t *testing.T) {
	f := balancedFleet()
	rep := runBalanced(t, f, balancedFlow, false)
	if rep.ExitCode != 0 {
		t.Fatalf("%s: %s", rep.Error, results(rep))
	}
	want := "web01/A/a1:drain web01/A/a1:stop web01/A/a1:start web01/A/a1:undrain web01/A/a2:stop web01/A/a2:start"
	if got := strings.Join(steps(f), " "); got != want {
		t.Fatalf("steps %s\nwant  %s", got, want)
	}
	if rep.Instances[0].Balancer != "haproxy" || rep.Instances[1].Balancer != "" {
		t.Fatalf("report instances: %+v", rep.Instances)
	}
}

func TestBalancerDryRun(t *testing.T) {
	f := balancedFleet()
	rep := runBalanced(t, f, balancedFlow, true)
	if rep.ExitCode != 0 {
		t.Fatalf("%s: %s", rep.Error, results(rep))
	}
	sentReads(t, f)
	var got []string
	for _, s := range rep.Instances[0].Steps {
		got = append(got, s.Name+"="+s.Result)
	}
	if strings.Join(got, " ") != "status=ok drain=planned stop=planned start=planned undrain=planned" {
		t.Fatalf("a1's plan: %v", got)
	}

	// A drain of an instance without a balancer fails the dry run as it
	// would the real one, before anything changed: exit 2.
	f = balancedFleet()
	rep = runBalanced(t, f, strings.Replace(balancedFlow, "if i.balancer then i:drain() end", "i:drain()", 1), true)
	if rep.ExitCode != engine.ExitUsage || !strings.Contains(rep.Instances[1].Error, "drain: instance A/a2 has no balancer") {
		t.Fatalf("exit %d, %s: %+v", rep.ExitCode, results(rep), rep.Instances[1])
	}
}

func TestBalancerReadOnly(t *testing.T) {
	rep := runBalanced(t, balancedFleet(), `return {
  name = "flow", params = { service = { doc = "s" } },
  each = function(i, ctx) i.balancer = "command" end,
}`, false)
	if ir := rep.Instances[0]; !strings.Contains(ir.Error, `instance field "balancer" is read-only`) {
		t.Fatalf("%+v", ir)
	}
}
