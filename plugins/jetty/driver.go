package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baepo/baepo/sdk"
)

const (
	settleTime   = time.Second // how long Start watches a new JVM for an early crash
	killWait     = 10 * time.Second
	pollInterval = 50 * time.Millisecond
	failTail     = 20 // lines of jetty.out that a failed start reports
)

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
// restarts of the plugin.
type Driver struct{}

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

// config is an instance's checked config.
type config struct {
	base, home, java, host string
	javaOpts               []string
	stopTimeout            time.Duration
	port                   int
	war                    string // what Install writes
	pidFile                string
}

// parse reads an instance's config without looking at the file system, so
// that Stop, Status and Logs work whatever happened to it since Validate.
func parse(inst sdk.Instance) (*config, error) {
	for k := range inst.Config {
		if !slices.ContainsFunc(fields, func(f sdk.ConfigField) bool { return f.Name == k }) {
			return nil, fmt.Errorf("%s: unknown key", k)
		}
	}
	get := func(key, def string) string {
		if v := inst.Config[key]; v != "" {
			return v
		}
		return def
	}
	if !filepath.IsAbs(inst.Config["jetty_base"]) {
		return nil, fmt.Errorf("jetty_base: %q: want the absolute path of the instance's JETTY_BASE", inst.Config["jetty_base"])
	}
	c := &config{
		base:     filepath.Clean(inst.Config["jetty_base"]),
		home:     filepath.Clean(get("jetty_home", "/usr/share/jetty9")),
		java:     get("java", "java"),
		host:     get("host", "127.0.0.1"),
		javaOpts: strings.Fields(inst.Config["java_opts"]),
		port:     inst.Port,
		pidFile:  filepath.Join(inst.StateDir, "jetty.pid"),
	}
	var err error
	if c.stopTimeout, err = time.ParseDuration(get("stop_timeout", "30s")); err != nil || c.stopTimeout <= 0 {
		return nil, fmt.Errorf("stop_timeout: %q: want a positive duration like 30s", get("stop_timeout", ""))
	}
	if c.port <= 0 {
		return nil, fmt.Errorf("port: %d: want the instance's HTTP port", c.port)
	}
	name, err := warName(inst.Context)
	if err != nil {
		return nil, fmt.Errorf("context: %q: %w", inst.Context, err)
	}
	c.war = filepath.Join(c.base, "webapps", name)
	return c, nil
}

// dirWith checks that dir is a directory holding entry.
func dirWith(dir, entry string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s: directory does not exist", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, entry)); err != nil {
		return fmt.Errorf("%s: no %s in it", dir, entry)
	}
	return nil
}

// warName is the file in webapps/ that Jetty 9 serves at context (see the
// package comment).
func warName(context string) (string, error) {
	if context == "" || context == "/" {
		return "root.war", nil
	}
	name := strings.TrimSuffix(strings.TrimPrefix(context, "/"), "/")
	lower := strings.ToLower(name)
	switch {
	case name == context || name == "" || strings.Contains(name, ".."):
		return "", errors.New(`want "/" or a path like /app`)
	case strings.ContainsAny(name, "/\\\x00"):
		return "", errors.New("Jetty 9 serves a WAR at a one-segment context only, like /app")
	case lower == "root" || strings.HasPrefix(lower, "root-") || strings.HasPrefix(name, "."):
		return "", errors.New("Jetty 9 gives WARs named root, root-<host> or .<name> another meaning")
	}
	return name + ".war", nil
}

func (c *config) logFile() string { return filepath.Join(c.base, "logs", "jetty.out") }

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
	if err := errors.Join(os.MkdirAll(filepath.Dir(c.logFile()), 0o755), os.MkdirAll(filepath.Dir(c.pidFile), 0o755)); err != nil {
		return sdk.Result{}, err
	}
	out, err := os.OpenFile(c.logFile(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return sdk.Result{}, err
	}
	defer out.Close() // Jetty has its own copy
	args := append(slices.Clone(c.javaOpts), "-Djetty.home="+c.home, "-Djetty.base="+c.base,
		"-jar", filepath.Join(c.home, "start.jar"), "jetty.http.port="+strconv.Itoa(c.port), "jetty.http.host="+c.host)
	cmd := exec.Command(c.java, args...) // not CommandContext: Jetty outlives the step
	cmd.Dir, cmd.Stdout, cmd.Stderr = c.base, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	sdk.Progress(ctx, "running "+cmd.String())
	if err := cmd.Start(); err != nil {
		return sdk.Result{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps Jetty if it exits while the plugin runs
	pid := cmd.Process.Pid
	if err := writeFile(c.pidFile, strings.NewReader(strconv.Itoa(pid)+"\n")); err != nil {
		return sdk.Result{}, errors.Join(fmt.Errorf("write pid file: %w", err), cmd.Process.Kill())
	}
	sdk.Progress(ctx, fmt.Sprintf("pid %d is up; watching it for %s", pid, settleTime))
	select {
	case <-time.After(settleTime):
		return sdk.Result{Message: fmt.Sprintf("started (pid %d)", pid), Output: pidOutput(pid)}, nil
	case err = <-exited:
		lines, _ := tail(c.logFile(), failTail)
		err = fmt.Errorf("pid %d exited right after start (%v); last lines of %s:\n%s", pid, err, c.logFile(), lines)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		err = fmt.Errorf("%w (killed pid %d: %v)", ctx.Err(), pid, <-exited)
	}
	_ = os.Remove(c.pidFile)
	return sdk.Result{}, err
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
	p, err := os.FindProcess(pid) // a pidfd: its signals cannot reach a process that reuses pid
	if err != nil {
		return sdk.Result{}, err
	}
	defer p.Release()
	sdk.Progress(ctx, fmt.Sprintf("sending SIGTERM to pid %d; waiting up to %s for it to exit", pid, c.stopTimeout))
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return sdk.Result{}, fmt.Errorf("signal pid %d: %w", pid, err)
	}
	msg := fmt.Sprintf("stopped (pid %d)", pid)
	if !waitExit(ctx, pid, c.stopTimeout) {
		sdk.Progress(ctx, fmt.Sprintf("pid %d has not exited: sending SIGKILL", pid))
		_ = p.Kill()
		if !waitExit(context.Background(), pid, killWait) {
			return sdk.Result{}, fmt.Errorf("pid %d still runs %s after SIGKILL", pid, killWait)
		}
		msg = fmt.Sprintf("killed pid %d: it still ran after SIGTERM (stop_timeout %s)", pid, c.stopTimeout)
	}
	_ = os.Remove(c.pidFile)
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, fmt.Errorf("%w (%s)", err, msg)
	}
	return sdk.Result{Message: msg, Output: pidOutput(pid)}, nil
}

// waitExit polls until pid has exited, and reports whether it did before
// timeout or ctx is done. A zombie has exited and closed its files (its
// parent, init or this plugin, reaps it).
func waitExit(ctx context.Context, pid int, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		i := bytes.LastIndexByte(stat, ')') // the state follows the command name, in parentheses
		if errors.Is(err, fs.ErrNotExist) || (i > 0 && i+2 < len(stat) && strings.IndexByte("ZXx", stat[i+2]) >= 0) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pollInterval):
		}
	}
}

// running returns the pid of the instance's Jetty, or 0 when the pid file
// names none.
func (c *config) running() int {
	data, err := os.ReadFile(c.pidFile)
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && c.isJetty(pid) {
		return pid
	}
	return 0
}

// isJetty reports whether pid is a process with this instance's
// -Djetty.base on its command line, which a reused pid lacks, and so does
// an exiting one: the kernel empties the cmdline of a process that exits.
func (c *config) isJetty(pid int) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return pid > 0 && err == nil && slices.Contains(strings.Split(string(cmdline), "\x00"), "-Djetty.base="+c.base)
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
	if err := writeFile(c.war, src); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Message: "installed " + rel.Artifact + " as " + c.war, Output: map[string]string{"war": c.war}}, nil
}

// writeFile replaces path with r's bytes: it writes a dot-file in path's
// directory, which Jetty's deployer ignores, syncs it, renames it over
// path and syncs the directory.
func writeFile(path string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".baepo-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = io.Copy(tmp, r)
	if err := errors.Join(err, tmp.Chmod(0o644), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
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
	text, err := tail(c.logFile(), lines)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // never started
	}
	return text, err
}

// tail returns the last n lines of the file at path. It reads blocks
// backwards from the end until it has them, or 16 MiB.
func tail(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	off, err := f.Seek(0, io.SeekEnd)
	var buf []byte
	for err == nil && off > 0 && bytes.Count(buf, []byte("\n")) <= n && len(buf) < 16<<20 {
		block := make([]byte, min(off, 64<<10))
		off -= int64(len(block))
		_, err = f.ReadAt(block, off)
		buf = append(block, buf...)
	}
	lines := strings.SplitAfter(string(buf), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines[max(0, len(lines)-n):], ""), err
}

// Step refuses every name: Jetty has no custom steps.
func (d *Driver) Step(ctx context.Context, inst sdk.Instance, name string, args map[string]string) (sdk.Result, error) {
	return sdk.Result{}, fmt.Errorf("step %q on instance %s/%s: %w (jetty has no custom steps)",
		name, inst.Service, inst.Name, sdk.ErrUnknownStep)
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
