package proc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/sdk"
)

func TestProcess(t *testing.T) {
	dir := t.TempDir()
	marker := "3600.5" // sleep's argument marks the instance's process
	owns := func(pid int) bool { return HasArg(pid, marker) }
	p := Process{PIDFile: filepath.Join(dir, "app.pid"), Owns: owns, StopTimeout: time.Second}

	if st, err := p.Status(); err != nil || st.Running || st.Message != "not running" {
		t.Fatalf("nothing started: %+v %v", st, err)
	}
	if res, err := p.Stop(context.Background()); err != nil || res.Message != "not running" {
		t.Fatalf("stop of nothing: %+v %v", res, err)
	}

	// A stale pid file naming a process that is not the instance's.
	other, _ := start(t, "sleep", "30")
	os.WriteFile(p.PIDFile, []byte(strconv.Itoa(other)+"\n"), 0o644)
	if st, _ := p.Status(); st.Running || !strings.Contains(st.Message, "stale pid file") {
		t.Fatalf("stale: %+v", st)
	}
	var progress []string
	ctx := sdk.WithProgress(context.Background(), func(msg string) { progress = append(progress, msg) })
	if res, running, err := p.AlreadyRunning(ctx); err != nil || running || res.Message != "" {
		t.Fatalf("already running with a stale pid file: %+v %v %v", res, running, err)
	}
	if _, err := os.Stat(p.PIDFile); !os.IsNotExist(err) || len(progress) != 1 || !strings.Contains(progress[0], "removing stale pid file") {
		t.Fatalf("stale pid file: %v; progress %q", err, progress)
	}

	// The instance's process without a pid file is found, adopted, and
	// stopped.
	pid, _ := start(t, "sleep", marker)
	if f, err := p.Lookup(); err != nil || f.PID != pid || !f.Orphan {
		t.Fatalf("lookup: %+v %v", f, err)
	}
	for _, want := range []string{
		fmt.Sprintf("already running (pid %d, which had no pid file: wrote one)", pid),
		fmt.Sprintf("already running (pid %d)", pid),
	} {
		res, running, err := p.AlreadyRunning(ctx)
		if err != nil || !running || res.Message != want || res.Output["pid"] != strconv.Itoa(pid) {
			t.Fatalf("already running: %+v %v %v; want %q", res, running, err, want)
		}
	}
	if got, err := ReadPID(p.PIDFile); err != nil || got != pid {
		t.Fatalf("adopted pid file: %d %v", got, err)
	}
	if st, _ := p.Status(); !st.Running || st.PID != pid {
		t.Fatalf("status: %+v", st)
	}
	p.StopTimeout = 5 * time.Second
	res, err := p.Stop(context.Background())
	if err != nil || res.Output["pid"] != strconv.Itoa(pid) || res.Output["killed"] != "false" {
		t.Fatalf("stop: %+v %v", res, err)
	}
	if Alive(pid) {
		t.Fatal("process still alive")
	}
	if _, err := os.Stat(p.PIDFile); !os.IsNotExist(err) {
		t.Fatalf("pid file left: %v", err)
	}
	if !Alive(other) {
		t.Fatal("stopped a process that was not the instance's")
	}
}
