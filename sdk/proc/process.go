package proc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/baepo/baepo/sdk"
)

// Process is an instance's process as a driver manages it: a pid file, and
// how to recognise the process (its command line or its environment names
// the instance), so that a stale pid file is never trusted and a process
// whose pid file was lost is still found; how long it gets to stop, and
// where its output goes.
type Process struct {
	// PIDFile is where the instance's pid is kept (WritePID), usually in
	// the instance's StateDir.
	PIDFile string
	// Owns reports whether the live process pid is the instance's, from
	// what /proc says of it (HasArg, say): a pid that was reused, or a
	// process of another instance, fails it.
	Owns func(pid int) bool
	// StopTimeout is how long Stop waits after SIGTERM before it sends
	// SIGKILL.
	StopTimeout time.Duration
	// LogFile is the log the process writes, which Logs reads.
	LogFile string
}

// Found is what Lookup found.
type Found struct {
	PID     int  // the instance's live process; 0 when none runs
	Orphan  bool // PID runs but the pid file does not name it
	Stale   bool // the pid file names no live process of the instance
	FilePID int  // what a stale pid file says; 0 when it holds no pid
}

// Lookup finds the instance's process: the one the pid file names when
// Owns says it is the instance's, else any live process Owns accepts.
func (p Process) Lookup() (Found, error) {
	var f Found
	pid, err := ReadPID(p.PIDFile)
	switch {
	case err == nil && Alive(pid) && p.Owns(pid):
		return Found{PID: pid}, nil
	case err == nil:
		f.Stale, f.FilePID = true, pid
	case errors.Is(err, ErrBadPIDFile):
		f.Stale = true
	case !errors.Is(err, fs.ErrNotExist):
		return f, err
	}
	if pids := p.find(); len(pids) > 0 {
		f.PID, f.Orphan = pids[0], true
	}
	return f, nil
}

// find returns the live processes Owns accepts.
func (p Process) find() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p.Owns(pid) && Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// AlreadyRunning is how Driver.Start begins. When the instance's process
// runs, it returns true and the result Start returns for it ("already
// running (pid 4711)", with the pid in its output), and adopts a process
// whose pid file was lost by writing the pid file. A stale pid file, which
// would stop some servers' start scripts, is removed, and sdk.Progress says
// so.
func (p Process) AlreadyRunning(ctx context.Context) (res sdk.Result, running bool, err error) {
	f, err := p.Lookup()
	if err != nil {
		return sdk.Result{}, false, err
	}
	if f.Stale {
		sdk.Progress(ctx, fmt.Sprintf("removing stale pid file %s (%s)", p.PIDFile, f.stale()))
		if err := RemovePID(p.PIDFile); err != nil {
			return sdk.Result{}, false, err
		}
	}
	if f.PID == 0 {
		return sdk.Result{}, false, nil
	}
	msg := fmt.Sprintf("already running (pid %d)", f.PID)
	if f.Orphan {
		if err := WritePID(p.PIDFile, f.PID); err != nil {
			return sdk.Result{}, false, err
		}
		msg = fmt.Sprintf("already running (pid %d, which had no pid file: wrote one)", f.PID)
	}
	return sdk.Result{Message: msg, Output: PIDOutput(f.PID)}, true, nil
}

// stale says what is wrong with a stale pid file.
func (f Found) stale() string {
	if f.FilePID == 0 {
		return "it holds no pid"
	}
	return fmt.Sprintf("pid %d is not the instance's process", f.FilePID)
}

// PIDOutput is the output of a step that started or found the process
// pid: {"pid": "4711"}.
func PIDOutput(pid int) map[string]string { return map[string]string{"pid": strconv.Itoa(pid)} }

// Logs returns the last lines of LogFile as Driver.Logs does (LogTail).
func (p Process) Logs(lines int) (string, error) { return LogTail(p.LogFile, lines) }

// Status reports whether the instance's process runs, as Driver.Status does.
func (p Process) Status() (sdk.Status, error) {
	f, err := p.Lookup()
	switch {
	case err != nil:
		return sdk.Status{}, err
	case f.PID > 0 && f.Orphan:
		return sdk.Status{Running: true, PID: f.PID, Message: fmt.Sprintf("running (pid %d) without a pid file: started outside baepo?", f.PID)}, nil
	case f.PID > 0:
		return sdk.Status{Running: true, PID: f.PID, Message: fmt.Sprintf("running (pid %d)", f.PID)}, nil
	case f.Stale:
		return sdk.Status{Message: fmt.Sprintf("not running (stale pid file names pid %d)", f.FilePID)}, nil
	}
	return sdk.Status{Message: "not running"}, nil
}

// Stop stops the instance's process as Driver.Stop does: SIGTERM, a wait of
// up to StopTimeout, SIGKILL (at once when ctx ends), and the pid file
// removed once the process is gone. Stopping a stopped instance succeeds
// and says so; a stale pid file is removed on the way. The result's output
// holds "pid" and "killed".
func (p Process) Stop(ctx context.Context) (sdk.Result, error) {
	timeout := p.StopTimeout
	f, err := p.Lookup()
	if err != nil {
		return sdk.Result{}, err
	}
	note := ""
	if f.Stale {
		if err := RemovePID(p.PIDFile); err != nil {
			return sdk.Result{}, err
		}
		note = fmt.Sprintf("; removed a stale pid file naming pid %d", f.FilePID)
	}
	if f.PID == 0 {
		return sdk.Result{Message: "not running" + note}, nil
	}
	if f.Orphan {
		note = "; it had no pid file" + note
	}
	killed, err := Terminate(ctx, f.PID, timeout, &TerminateOptions{
		Owns: p.Owns, Progress: func(msg string) { sdk.Progress(ctx, msg) }})
	if !Alive(f.PID) || !p.Owns(f.PID) {
		if rerr := RemovePID(p.PIDFile); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return sdk.Result{}, err
	}
	msg := fmt.Sprintf("stopped (pid %d)", f.PID)
	if killed {
		msg = fmt.Sprintf("killed pid %d: it did not exit within %s of SIGTERM", f.PID, timeout)
	}
	out := PIDOutput(f.PID)
	out["killed"] = strconv.FormatBool(killed)
	return sdk.Result{Message: msg + note, Output: out}, nil
}
