package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baepo/baepo/sdk"
)

const (
	// killWait bounds the wait for a process to go after SIGKILL.
	killWait = 10 * time.Second
	// failTail is how many lines of app.log a failed start reports.
	failTail = 20
	// settleTime is how long Start watches a new JVM before it calls the
	// start a success: a JVM that cannot start (a bad option, a corrupt
	// JAR, a port in use) usually dies within it.
	settleTime = time.Second
	// pollInterval is how often the driver looks at a process or a file.
	pollInterval = 20 * time.Millisecond
)

// Start runs java [jvm_opts] -jar <dir>/app.jar [port_arg] [args] in dir, in
// a session of its own so that the JVM outlives the plugin and the agent,
// with stdout and stderr appended to logs/app.log (after a line that says
// what starts) and its pid in the pid file. It returns once the JVM has survived its first second; a JVM that
// exits before is an error with the last lines of app.log. A cancelled
// start leaves no JVM and no pid file behind.
func (d *Driver) Start(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	fail := func(err error) (sdk.Result, error) {
		return sdk.Result{}, fmt.Errorf("start instance %s: %w", instName(inst), err)
	}
	c, err := load(inst)
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	found, err := c.lookup()
	if err != nil {
		return fail(err)
	}
	if found.pid > 0 {
		msg := fmt.Sprintf("already running (pid %d)", found.pid)
		if found.orphan {
			if err := c.writePIDFile(found.pid); err != nil {
				return fail(err)
			}
			msg = fmt.Sprintf("already running (pid %d, which had no pid file: wrote one)", found.pid)
		}
		return sdk.Result{Message: msg, Output: pidOutput(found.pid)}, nil
	}
	if found.stale {
		sdk.Progress(ctx, fmt.Sprintf("removing stale pid file %s (pid %d is not this application)", c.pidFile(), found.filePID))
		if err := c.removePIDFile(); err != nil {
			return fail(err)
		}
	}
	if fi, err := os.Stat(c.jar()); errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("%s does not exist: install a release first", c.jar()))
	} else if err != nil {
		return fail(err)
	} else if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("%s is not a regular file", c.jar()))
	}
	for _, dir := range []string{c.stateDir, filepath.Dir(c.logFile())} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
	}

	cmd, exited, err := c.launch(ctx)
	if err != nil {
		return fail(err)
	}
	pid := cmd.Process.Pid
	if err := c.writePIDFile(pid); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fail(err)
	}
	sdk.Progress(ctx, fmt.Sprintf("pid %d is up; watching it for %s", pid, settleTime))
	settled := time.NewTimer(settleTime)
	defer settled.Stop()
	select {
	case <-settled.C:
	case <-exited:
		err := fmt.Errorf("pid %d exited right after start (%s)%s", pid, cmd.ProcessState, c.logTail())
		if rerr := c.removePIDFile(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fail(err)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		err := fmt.Errorf("pid %d: %w (killed it)", pid, ctx.Err())
		if rerr := c.removePIDFile(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fail(err)
	}
	sdk.Progress(ctx, fmt.Sprintf("java runs as pid %d", pid))
	return sdk.Result{Message: fmt.Sprintf("started (pid %d)", pid), Output: pidOutput(pid)}, nil
}

// launch starts the JVM and returns it with a channel that is closed once
// it has exited and been reaped. While this process lives it is the JVM's
// parent and reaps it; when it goes, init inherits the JVM.
func (c *config) launch(ctx context.Context) (*exec.Cmd, <-chan struct{}, error) {
	log, err := os.OpenFile(c.logFile(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	defer log.Close() // the JVM has its own copy
	argv := c.argv()
	line := c.java + " " + strings.Join(argv, " ")
	fmt.Fprintf(log, "baepo %s: starting %s (in %s)\n", time.Now().Format(time.RFC3339), line, c.dir)

	// Not CommandContext: the JVM must outlive this call.
	cmd := exec.Command(c.java, argv...)
	cmd.Dir = c.dir
	cmd.Env = c.env()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	sdk.Progress(ctx, fmt.Sprintf("running %s in %s; output goes to %s", line, c.dir, c.logFile()))
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", c.java, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return cmd, exited, nil
}

// env is the JVM's environment: the plugin's, without what go-plugin set
// for the plugin itself, plus port_env.
func (c *config) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == sdk.Handshake.MagicCookieKey || strings.HasPrefix(k, "PLUGIN_") || (c.portEnv != "" && k == c.portEnv) {
			continue
		}
		env = append(env, kv)
	}
	if c.portEnv != "" {
		env = append(env, c.portEnv+"="+strconv.Itoa(c.port))
	}
	return env
}

// Stop sends SIGTERM to the JVM (Spring Boot and the JVM's shutdown hooks
// stop gracefully), waits for it to exit, sends SIGKILL after stop_timeout,
// and removes the pid file. A cancelled stop kills the process rather than
// leave it half-stopped.
func (d *Driver) Stop(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	fail := func(err error) (sdk.Result, error) {
		return sdk.Result{}, fmt.Errorf("stop instance %s: %w", instName(inst), err)
	}
	c, err := load(inst)
	if err != nil {
		return fail(err)
	}
	found, err := c.lookup()
	if err != nil {
		return fail(err)
	}
	note := ""
	if found.stale {
		if err := c.removePIDFile(); err != nil {
			return fail(err)
		}
		note = fmt.Sprintf("; removed a stale pid file naming pid %d", found.filePID)
	}
	pid := found.pid
	if pid == 0 {
		return sdk.Result{Message: "not running" + note}, nil
	}
	if found.orphan {
		note = "; it had no pid file" + note
	}

	killed, err := c.terminate(ctx, pid)
	if !alive(pid) || !c.owns(pid) {
		if rerr := c.removePIDFile(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		return fail(err)
	}
	msg := fmt.Sprintf("stopped (pid %d)", pid)
	if killed {
		msg = fmt.Sprintf("killed pid %d: it did not exit within %s of SIGTERM", pid, c.stopTimeout)
	}
	out := pidOutput(pid)
	out["killed"] = strconv.FormatBool(killed)
	return sdk.Result{Message: msg + note, Output: out}, nil
}

// terminate stops pid: SIGTERM, then SIGKILL after stop_timeout or when ctx
// is done. It signals through a pidfd, so a signal never reaches another
// process that reuses the pid.
func (c *config) terminate(ctx context.Context, pid int) (killed bool, err error) {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false, fmt.Errorf("find pid %d: %w", pid, err)
	}
	defer p.Release()
	// Look again now that p holds the process: the pid may have been
	// reused since the pid file was read.
	if !alive(pid) || !c.owns(pid) {
		return false, nil
	}
	sdk.Progress(ctx, fmt.Sprintf("sending SIGTERM to pid %d; waiting up to %s for it to exit", pid, c.stopTimeout))
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return false, fmt.Errorf("signal pid %d: %w", pid, err)
	}
	werr := waitExit(ctx, p, pid, c.stopTimeout)
	if werr == nil {
		return false, nil
	}
	if ctx.Err() != nil {
		sdk.Progress(ctx, fmt.Sprintf("stop cancelled: sending SIGKILL to pid %d", pid))
	} else {
		sdk.Progress(ctx, fmt.Sprintf("pid %d did not exit within %s: sending SIGKILL", pid, c.stopTimeout))
	}
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return false, fmt.Errorf("kill pid %d: %w", pid, err)
	}
	if err := waitExit(context.WithoutCancel(ctx), p, pid, killWait); err != nil {
		return true, fmt.Errorf("wait for pid %d after SIGKILL: %w", pid, err)
	}
	if ctx.Err() != nil {
		return true, fmt.Errorf("wait for pid %d: %w (killed it)", pid, ctx.Err())
	}
	return true, nil
}

// waitExit polls until p has exited, timeout has passed or ctx is done.
func waitExit(ctx context.Context, p *os.Process, pid int, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		// With a pidfd, ErrProcessDone means p is gone for good; a zombie
		// (whose parent has not reaped it yet) counts as gone.
		if err := p.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) || !alive(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("timeout after %s", timeout)
		case <-tick.C:
		}
	}
}

// Status reports whether the pid file names this instance's live JVM.
func (d *Driver) Status(ctx context.Context, inst sdk.Instance) (sdk.Status, error) {
	c, err := load(inst)
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of instance %s: %w", instName(inst), err)
	}
	found, err := c.lookup()
	if err != nil {
		return sdk.Status{}, fmt.Errorf("status of instance %s: %w", instName(inst), err)
	}
	switch {
	case found.pid > 0 && found.orphan:
		return sdk.Status{Running: true, PID: found.pid, Message: fmt.Sprintf("running (pid %d) without a pid file: started outside baepo?", found.pid)}, nil
	case found.pid > 0:
		return sdk.Status{Running: true, PID: found.pid, Message: fmt.Sprintf("running (pid %d)", found.pid)}, nil
	case found.stale:
		return sdk.Status{Message: fmt.Sprintf("not running (stale pid file names pid %d)", found.filePID)}, nil
	}
	return sdk.Status{Message: "not running"}, nil
}

// found is what lookup found of an instance's JVM.
type found struct {
	pid     int  // the instance's live JVM; 0 when none runs
	orphan  bool // pid runs but the pid file does not name it
	stale   bool // the pid file names no live JVM of the instance
	filePID int  // what a stale pid file says; 0 when it holds no pid
}

// lookup finds the instance's JVM: the process the pid file names when it
// runs this instance's app.jar, else such a process among all processes
// (one started by hand, or whose pid file was lost).
func (c *config) lookup() (found, error) {
	var f found
	pid, err := c.pidFromFile()
	switch {
	case err == nil && alive(pid) && c.owns(pid):
		return found{pid: pid}, nil
	case err == nil:
		f.stale, f.filePID = true, pid
	case errors.Is(err, errBadPIDFile):
		f.stale = true
	case !errors.Is(err, fs.ErrNotExist):
		return f, err
	}
	if pids := c.findJVMs(); len(pids) > 0 {
		f.pid, f.orphan = pids[0], true
	}
	return f, nil
}

// findJVMs returns the live processes that run this instance's app.jar,
// lowest pid first.
func (c *config) findJVMs() []int {
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
		if c.owns(pid) && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// owns reports whether pid runs this instance's app.jar: its command line
// has -jar followed by <dir>/app.jar (or its real path).
func (c *config) owns(pid int) bool {
	jars := []string{c.jar()}
	if real, err := filepath.EvalSymlinks(c.dir); err == nil && real != c.dir {
		jars = append(jars, filepath.Join(real, "app.jar"))
	}
	args, err := cmdline(pid)
	if err != nil {
		return false
	}
	for i := 0; i+1 < len(args); i++ {
		if args[i] != "-jar" {
			continue
		}
		for _, j := range jars {
			if filepath.Clean(args[i+1]) == j {
				return true
			}
		}
		return false // the first -jar is the JVM's; later ones are the app's
	}
	return false
}

// cmdline returns the arguments pid runs with.
func cmdline(pid int) ([]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00"), nil
}

var errBadPIDFile = errors.New("pid file does not hold a pid")

func (c *config) pidFromFile() (int, error) {
	data, err := os.ReadFile(c.pidFile())
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: %w", c.pidFile(), errBadPIDFile)
	}
	return pid, nil
}

// writePIDFile records pid in the pid file: temp file, sync, rename, sync
// the directory.
func (c *config) writePIDFile(pid int) error {
	if err := os.MkdirAll(c.stateDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.stateDir, ".app.pid-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	_, err = fmt.Fprintln(tmp, pid)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.pidFile())
	}
	if err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return syncDir(c.stateDir)
}

func (c *config) removePIDFile() error {
	if err := os.Remove(c.pidFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}

// alive reports whether pid is a process that has not exited. A zombie has
// exited: its parent has not yet reaped it.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	// The state is the field after the command name, which is in
	// parentheses and may itself hold spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		switch stat[i+2] {
		case 'Z', 'X', 'x':
			return false
		}
	}
	return true
}

// logTail returns the last lines of app.log for an error message.
func (c *config) logTail() string {
	text, err := tail(c.logFile(), failTail)
	if err != nil || strings.TrimSpace(text) == "" {
		return ""
	}
	return fmt.Sprintf("; last lines of %s:\n%s", c.logFile(), strings.TrimRight(text, "\n"))
}

func pidOutput(pid int) map[string]string { return map[string]string{"pid": strconv.Itoa(pid)} }
