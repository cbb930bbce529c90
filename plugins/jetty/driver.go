package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

const settleTime = time.Second // how long Start watches a new JVM for an early crash

var fields = []sdk.ConfigField{
	{Name: "jetty_base", Required: true, Doc: "the instance's JETTY_BASE: an absolute path to a directory with webapps/ " +
		"and the http and deploy modules (start.jar --add-to-start=http,deploy)"},
	{Name: "jetty_home", Doc: "the Jetty installation whose start.jar runs the instance (default /usr/share/jetty9)"},
	{Name: "java", Doc: `the java command (default "java", looked up on PATH)`},
	{Name: "java_opts", Doc: `JVM options, split at white space, e.g. "-Xmx512m -Dfoo=bar"`},
	{Name: "stop_timeout", Doc: "how long Stop waits after SIGTERM before it sends SIGKILL, a Go duration (default 30s)"},
	{Name: "host", Doc: "the address Jetty's HTTP connector binds to (default 127.0.0.1)"},
}

// Driver runs Jetty 9 instances. It keeps no state: what it knows of an
// instance is on disk, so it is safe for concurrent use and survives
// restarts of the plugin. It has no custom steps.
type Driver struct{ sdk.NoSteps }

// New returns the Jetty driver.
func New() *Driver { return &Driver{} }

// Describe names the driver and the instance keys it reads.
func (d *Driver) Describe(ctx context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "jetty", Version: "1.0.0", Config: slices.Clone(fields)}, nil
}

// Validate checks an instance's config and that the files it names exist.
// Its errors begin with the key: "jetty_base: /x: directory does not exist".
func (d *Driver) Validate(ctx context.Context, inst sdk.Instance) error {
	c, err := parse(inst)
	if err != nil {
		return err
	}
	if err := dirWith(c.base, "webapps"); err != nil {
		return fmt.Errorf("jetty_base: %w", err)
	}
	if err := dirWith(c.home, "start.jar"); err != nil {
		return fmt.Errorf("jetty_home: %w", err)
	}
	if _, err := exec.LookPath(c.java); err != nil {
		return fmt.Errorf("java: %w", err)
	}
	return nil
}

// Start launches Jetty in a session of its own and watches it for
// settleTime, so that a JVM that cannot start fails the step with the end
// of its log.
func (d *Driver) Start(ctx context.Context, inst sdk.Instance) (_ sdk.Result, err error) {
	defer annotate(&err, "start", inst)
	c, err := parse(inst)
	if err != nil {
		return sdk.Result{}, err
	}
	if pid := c.running(); pid > 0 {
		return sdk.Result{Message: fmt.Sprintf("already running (pid %d)", pid), Output: pidOutput(pid)}, nil
	}
	// Jetty finds a busy port only after deploying its webapps: look first.
	l, err := net.Listen("tcp", net.JoinHostPort(c.host, strconv.Itoa(c.port)))
	if err != nil {
		return sdk.Result{}, err
	}
	l.Close()
	args := append(slices.Clone(c.javaOpts), "-Djetty.home="+c.home, "-Djetty.base="+c.base,
		"-jar", filepath.Join(c.home, "start.jar"), "jetty.http.port="+strconv.Itoa(c.port), "jetty.http.host="+c.host)
	cmd := exec.Command(c.java, args...) // not CommandContext: Jetty outlives the step
	cmd.Dir = c.base
	sdk.Progress(ctx, "running "+cmd.String())
	pid, err := proc.Start(ctx, cmd, c.logFile(), c.pidFile, settleTime)
	if err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Message: fmt.Sprintf("started (pid %d)", pid), Output: pidOutput(pid)}, nil
}

// Stop sends SIGTERM, on which Jetty shuts down gracefully, and SIGKILL
// when Jetty has not exited after stop_timeout or ctx is done.
func (d *Driver) Stop(ctx context.Context, inst sdk.Instance) (_ sdk.Result, err error) {
	defer annotate(&err, "stop", inst)
	c, err := parse(inst)
	if err != nil {
		return sdk.Result{}, err
	}
	// A stale pid file is harmless (running checks the process it names),
	// so failing to remove one is no error.
	pid := c.running()
	if pid == 0 {
		_ = os.Remove(c.pidFile)
		return sdk.Result{Message: "not running"}, nil
	}
	killed, err := proc.Terminate(ctx, pid, c.stopTimeout, &proc.TerminateOptions{
		Owns: c.isJetty, Progress: func(msg string) { sdk.Progress(ctx, msg) }})
	if !c.isJetty(pid) {
		_ = os.Remove(c.pidFile)
	}
	if err != nil {
		return sdk.Result{}, err // a cancelled Stop kills Jetty and says so
	}
	if killed {
		return sdk.Result{Message: fmt.Sprintf("killed pid %d: it still ran after SIGTERM (stop_timeout %s)", pid, c.stopTimeout), Output: pidOutput(pid)}, nil
	}
	return sdk.Result{Message: fmt.Sprintf("stopped (pid %d)", pid), Output: pidOutput(pid)}, nil
}

// running returns the pid of the instance's Jetty, or 0 when the pid file
// names none.
func (c *config) running() int {
	if pid, err := proc.ReadPID(c.pidFile); err == nil && c.isJetty(pid) {
		return pid
	}
	return 0
}

// isJetty reports whether pid is a live process with this instance's
// -Djetty.base on its command line (which a reused pid lacks).
func (c *config) isJetty(pid int) bool {
	return proc.Alive(pid) && proc.HasArg(pid, "-Djetty.base="+c.base)
}

// Install copies the release's WAR over webapps/<name>.war atomically. A
// running Jetty redeploys it.
func (d *Driver) Install(ctx context.Context, inst sdk.Instance, rel sdk.Release) (_ sdk.Result, err error) {
	defer annotate(&err, "install release "+rel.ID+" on", inst)
	c, err := parse(inst)
	if err != nil {
		return sdk.Result{}, err
	}
	src, err := os.Open(rel.Artifact)
	if err != nil {
		return sdk.Result{}, err
	}
	defer src.Close()
	sdk.Progress(ctx, fmt.Sprintf("copying %s to %s", rel.Artifact, c.war))
	if err := proc.WriteFileAtomic(c.war, src, 0o644); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Message: "installed " + rel.Artifact + " as " + c.war, Output: map[string]string{"war": c.war}}, nil
}

// Status reports whether the pid file names the instance's live Jetty.
func (d *Driver) Status(ctx context.Context, inst sdk.Instance) (_ sdk.Status, err error) {
	defer annotate(&err, "status of", inst)
	c, err := parse(inst)
	if err != nil {
		return sdk.Status{}, err
	}
	if pid := c.running(); pid > 0 {
		return sdk.Status{Running: true, PID: pid, Message: fmt.Sprintf("running (pid %d)", pid)}, nil
	}
	return sdk.Status{Message: "not running"}, nil
}

// Logs returns the last lines of logs/jetty.out (100 when lines <= 0).
func (d *Driver) Logs(ctx context.Context, inst sdk.Instance, lines int) (_ string, err error) {
	defer annotate(&err, "logs of", inst)
	c, err := parse(inst)
	if err != nil {
		return "", err
	}
	if lines <= 0 {
		lines = 100
	}
	text, err := proc.Tail(c.logFile(), lines)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // never started
	}
	return text, err
}

// annotate prefixes *err, when there is one, with what failed on which
// instance: "stop instance shop/a1: …".
func annotate(err *error, what string, inst sdk.Instance) {
	if *err != nil {
		*err = fmt.Errorf("%s instance %s/%s: %w", what, inst.Service, inst.Name, *err)
	}
}

func pidOutput(pid int) map[string]string { return map[string]string{"pid": strconv.Itoa(pid)} }

var _ sdk.Driver = (*Driver)(nil)
