package step_test

import (
	"testing"

	"github.com/baepo/baepo/engine/step"
)

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		changes, journaled, dryRun bool
	}{
		{step.Stop, true, true, false},
		{step.Install, true, true, false},
		{step.Health, false, true, false},
		{step.Status, false, false, true},
		{step.Logs, false, false, true},
		{step.Run, true, true, false},
		{step.Drain, true, true, false},
		{step.Undrain, true, true, false},
		{"threaddump", true, true, false}, // a driver's own step
	} {
		got := step.Of(tc.name)
		// Drain and undrain change the balancer, not what runs: the
		// instance keeps its health.
		resets := tc.changes && tc.name != step.Run && tc.name != step.Drain && tc.name != step.Undrain && tc.name != "threaddump"
		if got.Resets != resets {
			t.Errorf("Of(%q).Resets = %v", tc.name, got.Resets)
		}
		if got.Name != tc.name || got.Changes != tc.changes || got.Journaled != tc.journaled || got.DryRun != tc.dryRun {
			t.Errorf("Of(%q) = %+v, want changes=%v journaled=%v dry_run=%v", tc.name, got, tc.changes, tc.journaled, tc.dryRun)
		}
	}
}

func TestCore(t *testing.T) {
	core := step.Core()
	if len(core) != 11 || core[0] != step.Stop || core[len(core)-1] != step.Run {
		t.Errorf("Core() = %v", core)
	}
	for _, n := range core {
		if !step.IsCore(n) {
			t.Errorf("IsCore(%q) = false", n)
		}
	}
	if step.IsCore("threaddump") {
		t.Error("IsCore(threaddump) = true")
	}
}
