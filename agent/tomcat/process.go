package tomcat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// launchTimeout bounds catalina.sh start, which only forks the JVM, and the
// wait for its pid file.
const launchTimeout = 30 * time.Second

// start is Start for a Tomcat that does not run yet (proc.Instances leaves
// a running one alone, adopts one whose pid file was lost and removes a
// stale pid file first, since catalina.sh refuses to start while the pid
// file names a live process, and Debian's set -e makes it exit on a dead
// one). It runs catalina.sh start and returns the pid once the pid file
// names a live JVM that has survived proc.SettleTime (a JVM that cannot
// start dies within it, and its catalina.out tells why). A cancelled start
// leaves no JVM and no pid file behind. A taken HTTP port fails it before
// catalina.sh runs: Tomcat would log the bind error and run on, deaf.
//
// Stop is proc.Process.Stop: SIGTERM to the pid the pid file names
// (Tomcat's shutdown hook stops it gracefully), a wait, SIGKILL after
// stop_timeout. It does not use catalina.sh stop: Debian's setenv.sh makes
// that exit 1 and leave a stale pid file. Logs reads logs/catalina.out.
func start(ctx context.Context, c *config) (int, error) {
	if err := c.checkPortFree(c.port); err != nil {
		return 0, err
	}
	for _, dir := range []string{c.stateDir, filepath.Dir(c.catalinaOut())} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
	}
	sdk.Progress(ctx, fmt.Sprintf("running %s start (CATALINA_BASE=%s)", c.catalinaSh(), c.base))
	var pid int
	group, err := c.launch(ctx)
	if err == nil {
		pid, err = c.waitStarted(ctx)
	}
	if err != nil {
		// Leave nothing half-started: the JVM is in catalina.sh's process
		// group whether or not its pid reached the pid file.
		if aerr := c.abort(group); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return 0, err
	}
	sdk.Progress(ctx, fmt.Sprintf("tomcat runs as pid %d", pid))
	return pid, nil
}

// launch runs catalina.sh start in a session of its own, so that the JVM
// it forks outlives the agent and ignores the agent's terminal, and returns
// the id of that session's process group.
func (c *config) launch(ctx context.Context) (group int, err error) {
	ctx, cancel := context.WithTimeout(ctx, launchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.catalinaSh(), "start")
	cmd.Dir = c.base
	cmd.Env = c.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run %s start: %w", c.catalinaSh(), err)
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		return cmd.Process.Pid, fmt.Errorf("run %s start: %w", c.catalinaSh(), context.Cause(ctx))
	}
	if err != nil {
		return cmd.Process.Pid, fmt.Errorf("run %s start: %w: %s", c.catalinaSh(), err, bytes.TrimSpace(out.Bytes()))
	}
	return cmd.Process.Pid, nil
}

// waitStarted waits for the pid file to name a live process, then watches
// that process for proc.SettleTime.
func (c *config) waitStarted(ctx context.Context) (int, error) {
	tick := time.NewTicker(proc.PollInterval)
	defer tick.Stop()
	deadline := time.NewTimer(launchTimeout)
	defer deadline.Stop()
	pid := 0
	for pid == 0 {
		if p, err := c.pidFromFile(); err == nil && proc.Alive(p) {
			pid = p
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, proc.WithLogTail(fmt.Errorf("wait for pid file %s: timeout after %s", c.pidFile(), launchTimeout), c.catalinaOut())
		case <-tick.C:
		}
	}
	sdk.Progress(ctx, fmt.Sprintf("pid %d is up; watching it for %s", pid, proc.SettleTime))
	settled := time.NewTimer(proc.SettleTime)
	defer settled.Stop()
	for {
		if !proc.Alive(pid) {
			return 0, proc.WithLogTail(fmt.Errorf("pid %d exited right after start", pid), c.catalinaOut())
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-settled.C:
			return pid, nil
		case <-tick.C:
		}
	}
}

// abort kills what a failed start left: catalina.sh's process group and the
// process the pid file names, then removes the pid file.
func (c *config) abort(group int) error {
	if group > 0 {
		_ = syscall.Kill(-group, syscall.SIGKILL)
	}
	pid, err := c.pidFromFile()
	if err == nil && proc.Alive(pid) && c.owns(pid) {
		if err := proc.Kill(pid); err != nil {
			return err
		}
	}
	return proc.RemovePID(c.pidFile())
}

// load parses inst's config for a step that keeps its pid file in the
// state directory.
func load(inst sdk.Instance) (*config, error) {
	c, err := parseConfig(inst)
	if err == nil {
		c.stateDir, err = proc.StateDir(inst)
	}
	return c, err
}

// Process is the instance's process as sdk/proc manages it: the one the
// pid file names, else one started by hand or whose pid file was lost.
func (c *config) Process() proc.Process {
	return proc.Process{PIDFile: c.pidFile(), Owns: c.owns, StopTimeout: c.stopTimeout, LogFile: c.catalinaOut()}
}

func (c *config) pidFromFile() (int, error) { return proc.ReadPID(c.pidFile()) }

// owns reports whether pid is this instance's Tomcat: a JVM started with
// -Dcatalina.base=<catalina_base>, or (between fork and exec) a process
// with CATALINA_BASE=<catalina_base> in its environment.
func (c *config) owns(pid int) bool {
	bases := []string{c.base}
	if real, err := filepath.EvalSymlinks(c.base); err == nil && real != c.base {
		bases = append(bases, real)
	}
	match := func(file, prefix string) bool {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
		if err != nil {
			return false
		}
		for _, field := range bytes.Split(data, []byte{0}) {
			if v, ok := strings.CutPrefix(string(field), prefix); ok {
				for _, b := range bases {
					if filepath.Clean(v) == b {
						return true
					}
				}
			}
		}
		return false
	}
	return match("cmdline", "-Dcatalina.base=") || match("environ", "CATALINA_BASE=")
}

// env is catalina.sh's environment: the agent's, without its CATALINA_*
// variables, plus the instance's.
func (c *config) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CATALINA_") || (c.javaHome != "" && (k == "JAVA_HOME" || k == "JRE_HOME")) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"CATALINA_BASE="+c.base,
		"CATALINA_HOME="+c.home,
		"CATALINA_PID="+c.pidFile(),
		"CATALINA_OUT="+c.catalinaOut(),
	)
	if c.javaHome != "" {
		env = append(env, "JAVA_HOME="+c.javaHome)
	}
	if c.javaOpts != "" {
		env = append(env, "CATALINA_OPTS="+c.javaOpts)
	}
	return env
}

func (c *config) catalinaSh() string { return filepath.Join(c.home, "bin", "catalina.sh") }
