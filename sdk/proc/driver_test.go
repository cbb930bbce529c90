package proc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/sdk"
)

// sleeper is a driver's parsed config whose instance is a sleep process.
type sleeper struct{ dir, marker string }

func (s sleeper) Process() Process {
	return Process{
		PIDFile:     filepath.Join(s.dir, "state", "sleep.pid"),
		Owns:        func(pid int) bool { return HasArg(pid, s.marker) },
		StopTimeout: 5 * time.Second,
		LogFile:     filepath.Join(s.dir, "logs", "sleep.log"),
	}
}

func TestInstanceSteps(t *testing.T) {
	dir := t.TempDir()
	inst := sdk.Instance{Service: "S", Name: "s1", Config: map[string]string{"marker": "3600.25"}}
	parse := func(inst sdk.Instance) (sleeper, error) {
		if inst.Config["marker"] == "" {
			return sleeper{}, errors.New("marker: missing")
		}
		return sleeper{dir: dir, marker: inst.Config["marker"]}, nil
	}
	start := func(ctx context.Context, s sleeper) (int, error) {
		cmd := exec.Command("sh", "-c", `echo sleeping; exec sleep "$0"`, s.marker)
		return Start(ctx, cmd, s.Process().LogFile, s.Process().PIDFile, 100*time.Millisecond)
	}
	ctx := t.Context()
	t.Cleanup(func() { _, _ = StopInstance(context.Background(), inst, parse) })

	res, err := StartInstance(ctx, inst, parse, start)
	pid, _ := strconv.Atoi(res.Output["pid"])
	if err != nil || pid <= 0 || res.Message != "started (pid "+res.Output["pid"]+")" {
		t.Fatalf("start: %+v %v", res, err)
	}
	if res, err := StartInstance(ctx, inst, parse, start); err != nil || res.Message != "already running (pid "+strconv.Itoa(pid)+")" {
		t.Fatalf("second start: %+v %v", res, err)
	}
	if st, err := InstanceStatus(inst, parse); err != nil || !st.Running || st.PID != pid {
		t.Fatalf("status: %+v %v", st, err)
	}
	if text, err := InstanceLogs(inst, 5, parse); err != nil || text != "sleeping\n" {
		t.Fatalf("logs: %q %v", text, err)
	}
	artifact := filepath.Join(dir, "app.jar")
	os.WriteFile(artifact, []byte("v1"), 0o644)
	rel := sdk.Release{ID: "r1", Artifact: artifact}
	res, err = InstallInstance(ctx, inst, rel, parse, func(ctx context.Context, s sleeper, rel sdk.Release, found Found) (sdk.Result, error) {
		if found.PID != pid {
			t.Errorf("install: found %+v, want pid %d", found, pid)
		}
		return Install(ctx, rel, filepath.Join(s.dir, "installed.jar"), nil)
	})
	if err != nil || !strings.HasPrefix(res.Message, "installed release r1 as ") {
		t.Fatalf("install: %+v %v", res, err)
	}
	if res, err := StopInstance(ctx, inst, parse); err != nil || res.Message != "stopped (pid "+strconv.Itoa(pid)+")" {
		t.Fatalf("stop: %+v %v", res, err)
	}
	if st, err := InstanceStatus(inst, parse); err != nil || st.Running {
		t.Fatalf("status after stop: %+v %v", st, err)
	}

	bad := sdk.Instance{Service: "S", Name: "s2"}
	for what, err := range map[string]error{
		"start instance S/s2: ":                 func() error { _, err := StartInstance(ctx, bad, parse, start); return err }(),
		"stop instance S/s2: ":                  func() error { _, err := StopInstance(ctx, bad, parse); return err }(),
		"status of instance S/s2: ":             func() error { _, err := InstanceStatus(bad, parse); return err }(),
		"logs of instance S/s2: ":               func() error { _, err := InstanceLogs(bad, 5, parse); return err }(),
		"install release r1 on instance S/s2: ": func() error { _, err := InstallInstance(ctx, bad, rel, parse, nil); return err }(),
	} {
		if err == nil || err.Error() != what+"marker: missing" {
			t.Errorf("%s: %v", what, err)
		}
	}
}
