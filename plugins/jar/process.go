package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

const (
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
	if found.PID > 0 {
		msg := fmt.Sprintf("already running (pid %d)", found.PID)
		if found.Orphan {
			if err := c.writePIDFile(found.PID); err != nil {
				return fail(err)
			}
			msg = fmt.Sprintf("already running (pid %d, which had no pid file: wrote one)", found.PID)
		}
		return sdk.Result{Message: msg, Output: pidOutput(found.PID)}, nil
	}
	if found.Stale {
		sdk.Progress(ctx, fmt.Sprintf("removing stale pid file %s (pid %d is not this application)", c.pidFile(), found.FilePID))
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

	cmd, err := c.command(ctx)
	if err != nil {
		return fail(err)
	}
	pid, err := proc.Start(ctx, cmd, c.logFile(), c.pidFile(), settleTime)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("run %s: %w", c.java, err)
		}
		return fail(err)
	}
	sdk.Progress(ctx, fmt.Sprintf("java runs as pid %d", pid))
	return sdk.Result{Message: fmt.Sprintf("started (pid %d)", pid), Output: pidOutput(pid)}, nil
}

// command returns the command that runs the JVM, after it appended a line
// that says what starts to the log. proc.Start runs it in a session of its
// own, so that the JVM outlives the plugin, with its output appended to the
// log; while this process lives it is the JVM's parent and reaps it; when
// it goes, init inherits the JVM.
func (c *config) command(ctx context.Context) (*exec.Cmd, error) {
	log, err := os.OpenFile(c.logFile(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	argv := c.argv()
	line := c.java + " " + strings.Join(argv, " ")
	_, err = fmt.Fprintf(log, "baepo %s: starting %s (in %s)\n", time.Now().Format(time.RFC3339), line, c.dir)
	if err := errors.Join(err, log.Close()); err != nil {
		return nil, fmt.Errorf("write log: %w", err)
	}
	// Not CommandContext: the JVM must outlive this call.
	cmd := exec.Command(c.java, argv...)
	cmd.Dir = c.dir
	cmd.Env = c.env()
	sdk.Progress(ctx, fmt.Sprintf("running %s in %s; output goes to %s", line, c.dir, c.logFile()))
	return cmd, nil
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
	c, err := load(inst)
	if err == nil {
		var res sdk.Result
		if res, err = c.process().Stop(ctx, c.stopTimeout); err == nil {
			return res, nil
		}
	}
	return sdk.Result{}, fmt.Errorf("stop instance %s: %w", instName(inst), err)
}

// Status reports whether the pid file names this instance's live JVM.
func (d *Driver) Status(ctx context.Context, inst sdk.Instance) (sdk.Status, error) {
	c, err := load(inst)
	if err == nil {
		var st sdk.Status
		if st, err = c.process().Status(); err == nil {
			return st, nil
		}
	}
	return sdk.Status{}, fmt.Errorf("status of instance %s: %w", instName(inst), err)
}

// process is the instance's process as sdk/proc manages it.
func (c *config) process() proc.Process { return proc.Process{PIDFile: c.pidFile(), Owns: c.owns} }

// lookup finds the instance's process: the one the pid file names, else one
// started by hand or whose pid file was lost.
func (c *config) lookup() (proc.Found, error) { return c.process().Lookup() }

// owns reports whether pid runs this instance's app.jar: its command line
// has -jar followed by <dir>/app.jar (or its real path).
func (c *config) owns(pid int) bool {
	jars := []string{c.jar()}
	if real, err := filepath.EvalSymlinks(c.dir); err == nil && real != c.dir {
		jars = append(jars, filepath.Join(real, "app.jar"))
	}
	args, err := proc.Cmdline(pid)
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

func (c *config) writePIDFile(pid int) error { return proc.WritePID(c.pidFile(), pid) }

func (c *config) removePIDFile() error { return proc.RemovePID(c.pidFile()) }

func pidOutput(pid int) map[string]string { return map[string]string{"pid": strconv.Itoa(pid)} }
