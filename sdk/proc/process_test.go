package proc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestProcess(t *testing.T) {
	dir := t.TempDir()
	marker := "3600.5" // sleep's argument marks the instance's process
	owns := func(pid int) bool { return HasArg(pid, marker) }
	p := Process{PIDFile: filepath.Join(dir, "app.pid"), Owns: owns}

	if st, err := p.Status(); err != nil || st.Running || st.Message != "not running" {
		t.Fatalf("nothing started: %+v %v", st, err)
	}
	if res, err := p.Stop(context.Background(), time.Second); err != nil || res.Message != "not running" {
		t.Fatalf("stop of nothing: %+v %v", res, err)
	}

	// A stale pid file naming a process that is not the instance's.
	other, _ := start(t, "sleep", "30")
	os.WriteFile(p.PIDFile, []byte(strconv.Itoa(other)+"\n"), 0o644)
	if st, _ := p.Status(); st.Running || !strings.Contains(st.Message, "stale pid file") {
		t.Fatalf("stale: %+v", st)
	}

	// The instance's process without a pid file is found, and stopped.
	pid, _ := start(t, "sleep", marker)
	os.Remove(p.PIDFile)
	if f, err := p.Lookup(); err != nil || f.PID != pid || !f.Orphan {
		t.Fatalf("lookup: %+v %v", f, err)
	}
	WritePID(p.PIDFile, pid)
	if st, _ := p.Status(); !st.Running || st.PID != pid {
		t.Fatalf("status: %+v", st)
	}
	res, err := p.Stop(context.Background(), 5*time.Second)
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
