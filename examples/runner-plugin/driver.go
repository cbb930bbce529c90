package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

const (
	defaultCommand     = "java -jar app.jar --server.port={port}"
	defaultStopTimeout = 30 * time.Second
)

var fields = []sdk.ConfigField{
	{Name: "dir", Required: true, Doc: "the instance's directory, an absolute path: the command runs there, Install writes app.jar there, and the command's output goes to logs/out.log"},
	{Name: "command", Doc: "the command line, split at spaces (no shell): a program on PATH or an absolute path, which is the server or execs it; {port} stands for the instance's port (default \"" + defaultCommand + "\")"},
	{Name: "stop_timeout", Doc: "how long Stop waits after SIGTERM before it sends SIGKILL, a Go duration (default 30s)"},
}

var steps = []sdk.StepInfo{
	{Name: "warm-up", Doc: "GET args.path (default: the context path) args.count times (default 10); output: ok, failed"},
}

// Driver runs one command per instance. It keeps nothing in memory: what it
// knows of an instance is on disk and in /proc, so it is safe for
// concurrent use and survives a restart of the plugin.
//
// proc.Instances answers Start, Stop, Install, Status and Logs for an
// instance that is one process, given how to read its config (parse),
// start the process (start) and put a release in place (install): Start
// leaves a running process alone and adopts one whose pid file was lost,
// Stop sends SIGTERM, waits up to stop_timeout, then sends SIGKILL, and
// Logs reads logs/out.log. The driver writes Describe, Validate and Step.
type Driver struct {
	proc.Instances[*config]
}

var _ sdk.Driver = (*Driver)(nil)

// New returns the runner driver.
func New() *Driver {
	return &Driver{Instances: proc.Instances[*config]{Parse: parse, Launch: start, Place: install}}
}

// Describe names the driver, the instance keys it reads and its step.
func (d *Driver) Describe(ctx context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "runner", Version: "0.1.0", Config: fields, Steps: steps}, nil
}

// config is one instance's parsed config.
type config struct {
	dir         string   // absolute and clean
	argv        []string // the command line, {port} filled in
	stopTimeout time.Duration
	pidFile     string
}

// parse reads an instance's config without looking at the disk, so that
// Stop, Status and Logs work whatever has happened to dir since Validate.
// Its errors begin with the key.
func parse(inst sdk.Instance) (*config, error) {
	dir := inst.Config["dir"]
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("dir: %q: want an absolute path", dir)
	}
	c := &config{dir: filepath.Clean(dir), pidFile: filepath.Join(inst.StateDir, "runner.pid")}
	for _, w := range strings.Fields(cmp.Or(inst.Config["command"], defaultCommand)) {
		c.argv = append(c.argv, strings.ReplaceAll(w, "{port}", strconv.Itoa(inst.Port)))
	}
	if len(c.argv) == 0 {
		return nil, errors.New("command: empty")
	}
	var err error
	if c.stopTimeout, err = proc.Duration(inst, "stop_timeout", defaultStopTimeout); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks that dir is a directory and that the command's program
// exists. (The agent has already refused keys that Describe does not
// declare.)
func (d *Driver) Validate(ctx context.Context, inst sdk.Instance) error {
	c, err := parse(inst)
	if err != nil {
		return err
	}
	if _, err := proc.AbsDir(c.dir); err != nil {
		return fmt.Errorf("dir: %w", err)
	}
	if _, err := exec.LookPath(c.argv[0]); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	return nil
}

func (c *config) app() string     { return filepath.Join(c.dir, "app.jar") }
func (c *config) logFile() string { return filepath.Join(c.dir, "logs", "out.log") }

// marker is the environment variable the instance's process runs with, by
// which owns recognises it.
func (c *config) marker() string { return "BAEPO_RUNNER_DIR=" + c.dir }

// Process is the instance's process as sdk/proc manages it.
func (c *config) Process() proc.Process {
	return proc.Process{PIDFile: c.pidFile, Owns: c.owns, StopTimeout: c.stopTimeout, LogFile: c.logFile()}
}

// owns reports whether pid runs with the instance's marker in its
// environment: a process that reuses the pid of a server that died lacks
// it.
func (c *config) owns(pid int) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return err == nil && slices.Contains(strings.Split(string(env), "\x00"), c.marker())
}

// start runs the command in dir, in a session of its own so that it
// outlives the plugin and the agent, with its output appended to
// logs/out.log and its pid in the pid file. It returns once the process
// has survived proc.SettleTime; one that exits before fails the step with
// the log's last lines.
func start(ctx context.Context, c *config) (int, error) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...) // not CommandContext: the server outlives the step
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), c.marker())
	sdk.Progress(ctx, "running "+strings.Join(c.argv, " ")+" in "+c.dir)
	return proc.Start(ctx, cmd, c.logFile(), c.pidFile, proc.SettleTime)
}

// install copies the release's artifact over <dir>/app.jar atomically. A
// running server keeps the file it opened until it restarts.
func install(ctx context.Context, c *config, rel sdk.Release, _ proc.Found) (sdk.Result, error) {
	return proc.Install(ctx, rel, c.app(), nil)
}

// Step runs warm-up; any other name is an error wrapping
// sdk.ErrUnknownStep.
func (d *Driver) Step(ctx context.Context, inst sdk.Instance, name string, args map[string]string) (sdk.Result, error) {
	switch name {
	case "warm-up":
		return warmUp(ctx, inst, args)
	}
	return sdk.Result{}, fmt.Errorf("step %q on instance %s/%s: %w (runner has: warm-up)", name, inst.Service, inst.Name, sdk.ErrUnknownStep)
}
