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

func TestInstances(t *testing.T) {
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
	var found Found
	d := Instances[sleeper]{Parse: parse, Launch: start, Place: func(ctx context.Context, s sleeper, rel sdk.Release, f Found) (sdk.Result, error) {
		found = f
		return Install(ctx, rel, filepath.Join(s.dir, "installed.jar"), nil)
	}}
	var _ interface {
		Start(context.Context, sdk.Instance) (sdk.Result, error)
		Stop(context.Context, sdk.Instance) (sdk.Result, error)
		Install(context.Context, sdk.Instance, sdk.Release) (sdk.Result, error)
		Status(context.Context, sdk.Instance) (sdk.Status, error)
		Logs(context.Context, sdk.Instance, int) (string, error)
	} = d
	t.Cleanup(func() { _, _ = d.Stop(context.Background(), inst) })

	res, err := d.Start(ctx, inst)
	pid, _ := strconv.Atoi(res.Output["pid"])
	if err != nil || pid <= 0 || res.Message != "started (pid "+res.Output["pid"]+")" {
		t.Fatalf("start: %+v %v", res, err)
	}
	if res, err := d.Start(ctx, inst); err != nil || res.Message != "already running (pid "+strconv.Itoa(pid)+")" {
		t.Fatalf("second start: %+v %v", res, err)
	}
	if st, err := d.Status(ctx, inst); err != nil || !st.Running || st.PID != pid {
		t.Fatalf("status: %+v %v", st, err)
	}
	if text, err := d.Logs(ctx, inst, 5); err != nil || text != "sleeping\n" {
		t.Fatalf("logs: %q %v", text, err)
	}
	artifact := filepath.Join(dir, "app.jar")
	os.WriteFile(artifact, []byte("v1"), 0o644)
	rel := sdk.Release{ID: "r1", Artifact: artifact}
	res, err = d.Install(ctx, inst, rel)
	if err != nil || !strings.HasPrefix(res.Message, "installed release r1 as ") {
		t.Fatalf("install: %+v %v", res, err)
	}
	if found.PID != pid {
		t.Errorf("install: found %+v, want pid %d", found, pid)
	}
	if res, err := d.Stop(ctx, inst); err != nil || res.Message != "stopped (pid "+strconv.Itoa(pid)+")" {
		t.Fatalf("stop: %+v %v", res, err)
	}
	if st, err := d.Status(ctx, inst); err != nil || st.Running {
		t.Fatalf("status after stop: %+v %v", st, err)
	}

	bad := sdk.Instance{Service: "S", Name: "s2"}
	for what, err := range map[string]error{
		"start instance S/s2: ":                 func() error { _, err := d.Start(ctx, bad); return err }(),
		"stop instance S/s2: ":                  func() error { _, err := d.Stop(ctx, bad); return err }(),
		"status of instance S/s2: ":             func() error { _, err := d.Status(ctx, bad); return err }(),
		"logs of instance S/s2: ":               func() error { _, err := d.Logs(ctx, bad, 5); return err }(),
		"install release r1 on instance S/s2: ": func() error { _, err := d.Install(ctx, bad, rel); return err }(),
	} {
		if err == nil || err.Error() != what+"marker: missing" {
			t.Errorf("%s: %v", what, err)
		}
	}
}
