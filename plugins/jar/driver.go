package jar

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// Version is the driver's own version, reported by Describe.
const Version = "0.1.0"

// Instance config keys, as agent.yaml spells them.
const (
	keyDir         = "dir"
	keyJava        = "java"
	keyJVMOpts     = "jvm_opts"
	keyPortArg     = "port_arg"
	keyPortEnv     = "port_env"
	keyArgs        = "args"
	keyStopTimeout = "stop_timeout"
)

const (
	defaultJava        = "java"
	defaultPortArg     = "--server.port={port}"
	defaultStopTimeout = 30 * time.Second
	// portPlaceholder in port_arg is replaced by the instance's port.
	portPlaceholder = "{port}"
)

var configFields = []sdk.ConfigField{
	{Name: keyDir, Required: true, Doc: "the application's directory, an absolute path that exists: the driver keeps the current release as app.jar and the JVM's stdout and stderr in logs/app.log there, and runs the JVM in it"},
	{Name: keyJava, Doc: "the java command: a name looked up on the agent's PATH or an absolute path (default " + defaultJava + ")"},
	{Name: keyJVMOpts, Doc: "JVM options before -jar, separated by spaces (no shell quoting), e.g. \"-Xmx512m -Dspring.profiles.active=prod\""},
	{Name: keyPortArg, Doc: "how the port reaches the application: arguments after the JAR, separated by spaces, where " + portPlaceholder + " stands for the instance's port (default \"" + defaultPortArg + "\", Spring Boot's); empty passes no port argument"},
	{Name: keyPortEnv, Doc: "the name of an environment variable set to the instance's port, e.g. PORT (default: none)"},
	{Name: keyArgs, Doc: "more application arguments after the port argument, separated by spaces (no shell quoting)"},
	{Name: keyStopTimeout, Doc: "how long stop waits after SIGTERM before it sends SIGKILL, a Go duration (default 30s)"},
}

// stepThreadDump is the driver's one custom step.
const stepThreadDump = "thread-dump"

var steps = []sdk.StepInfo{
	{Name: stepThreadDump, Doc: "send SIGQUIT to the running JVM and return the thread dump it prints to logs/app.log: output dump (the text), threads (how many Java threads) and deadlocks (how many the JVM found); args: timeout, a Go duration to wait for the dump (default 10s)"},
}

// Driver runs java -jar applications. It keeps no state between calls:
// everything it knows of an instance is on disk (the pid file, app.jar,
// app.log, the processes in /proc), so it is safe for concurrent use and
// survives restarts of the plugin and the agent. Start, Stop, Install,
// Status and Logs are proc.Instances' over start, install and the config.
type Driver struct {
	proc.Instances[*config]
}

var _ sdk.Driver = (*Driver)(nil)

// New returns the jar driver.
func New() *Driver {
	return &Driver{Instances: proc.Instances[*config]{Parse: load, ParseLogs: parseConfig, Launch: start, Place: install}}
}

// Describe names the driver, the instance keys it reads and its steps.
func (d *Driver) Describe(ctx context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:    "jar",
		Version: Version,
		Config:  slices.Clone(configFields),
		Steps:   slices.Clone(steps),
	}, nil
}

// Validate checks one instance's config: that dir is a directory, that java
// runs, and that the instance has a port when port_arg or port_env needs
// one. (The agent has already refused keys that Describe does not list.)
func (d *Driver) Validate(ctx context.Context, inst sdk.Instance) error {
	_, err := parseConfig(inst)
	return err
}

// Step runs thread-dump; any other name is an error wrapping
// sdk.ErrUnknownStep that lists the driver's steps.
func (d *Driver) Step(ctx context.Context, inst sdk.Instance, name string, args map[string]string) (sdk.Result, error) {
	switch name {
	case stepThreadDump:
		return d.threadDump(ctx, inst, args)
	}
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name
	}
	return sdk.Result{}, fmt.Errorf("step %q on instance %s: %w (jar has %s)", name, instName(inst), sdk.ErrUnknownStep, strings.Join(names, ", "))
}

// config is one instance's parsed and checked config.
type config struct {
	dir         string // absolute and clean
	java        string // the java command as configured
	jvmOpts     []string
	portArgs    []string // port_arg's words with the port filled in
	portEnv     string   // "" for none
	port        int
	args        []string
	stopTimeout time.Duration
	stateDir    string
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseConfig reads and checks inst.Config. Its errors begin with the key.
func parseConfig(inst sdk.Instance) (*config, error) {
	c := &config{
		java:     defaultJava,
		jvmOpts:  strings.Fields(inst.Config[keyJVMOpts]),
		args:     strings.Fields(inst.Config[keyArgs]),
		portEnv:  inst.Config[keyPortEnv],
		port:     inst.Port,
		stateDir: inst.StateDir,
	}

	var err error
	if c.dir, err = proc.Dir(inst, keyDir, true); err != nil {
		return nil, err
	}

	if j, ok := inst.Config[keyJava]; ok {
		if strings.TrimSpace(j) == "" {
			return nil, fmt.Errorf("%s: empty (leave it out for %q on PATH)", keyJava, defaultJava)
		}
		c.java = j
	}
	if _, err := exec.LookPath(c.java); err != nil {
		return nil, fmt.Errorf("%s: %w", keyJava, err)
	}

	portArg, ok := inst.Config[keyPortArg]
	if !ok {
		portArg = defaultPortArg
	}
	for _, w := range strings.Fields(portArg) {
		if strings.Contains(w, portPlaceholder) {
			if inst.Port <= 0 {
				return nil, fmt.Errorf("port: the instance has none, and %s %q needs it", keyPortArg, portArg)
			}
			w = strings.ReplaceAll(w, portPlaceholder, strconv.Itoa(inst.Port))
		}
		c.portArgs = append(c.portArgs, w)
	}

	if c.portEnv != "" {
		if !envName.MatchString(c.portEnv) {
			return nil, fmt.Errorf("%s: %q is not an environment variable name", keyPortEnv, c.portEnv)
		}
		if inst.Port <= 0 {
			return nil, fmt.Errorf("port: the instance has none, and %s %s needs it", keyPortEnv, c.portEnv)
		}
	}

	if c.stopTimeout, err = proc.Duration(inst, keyStopTimeout, defaultStopTimeout); err != nil {
		return nil, err
	}
	return c, nil
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

// jar is the installed application.
func (c *config) jar() string { return filepath.Join(c.dir, "app.jar") }

// logFile is where the JVM's stdout and stderr go.
func (c *config) logFile() string { return filepath.Join(c.dir, "logs", "app.log") }

// pidFile is where Start records the JVM's pid.
func (c *config) pidFile() string { return filepath.Join(c.stateDir, "app.pid") }

// argv is the JVM's command line after the java command.
func (c *config) argv() []string {
	argv := slices.Clone(c.jvmOpts)
	argv = append(argv, "-jar", c.jar())
	argv = append(argv, c.portArgs...)
	return append(argv, c.args...)
}

func instName(inst sdk.Instance) string { return inst.Service + "/" + inst.Name }
