package jetty

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
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
// restarts of the plugin. Start, Stop, Install, Status and Logs are
// proc.Instances' over start, install and the config: Stop sends SIGTERM,
// on which Jetty shuts down gracefully, and SIGKILL when Jetty has not
// exited after stop_timeout; Logs reads logs/jetty.out. It has no custom
// steps.
type Driver struct {
	sdk.NoSteps
	proc.Instances[*config]
}

// New returns the Jetty driver.
func New() *Driver {
	return &Driver{Instances: proc.Instances[*config]{Parse: parse, Launch: start, Place: install}}
}

// Describe names the driver and the instance keys it reads.
func (d *Driver) Describe(ctx context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "jetty", Version: "1.0.0", Config: slices.Clone(fields)}, nil
}

// Validate checks an instance's config and that the files it names exist.
// Its errors begin with the key: "jetty_base: /x: directory does not exist".
// (The agent has already refused keys that Describe does not list.)
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

// start is Start for a Jetty that does not run (proc.Instances adopts one
// whose pid file was lost, and removes a stale pid file): it launches Jetty
// in a session of its own and watches it for proc.SettleTime, so that a JVM
// that cannot start fails the step with the end of its log.
func start(ctx context.Context, c *config) (int, error) {
	// Jetty finds a busy port only after deploying its webapps: look first.
	if err := proc.CheckPortFree(c.host, c.port); err != nil {
		return 0, fmt.Errorf("HTTP %w: stop that process, or give the instance a free port in agent.yaml", err)
	}
	args := append(slices.Clone(c.javaOpts), "-Djetty.home="+c.home, "-Djetty.base="+c.base,
		"-jar", filepath.Join(c.home, "start.jar"), "jetty.http.port="+strconv.Itoa(c.port), "jetty.http.host="+c.host)
	cmd := exec.Command(c.java, args...) // not CommandContext: Jetty outlives the step
	cmd.Dir = c.base
	sdk.Progress(ctx, "running "+cmd.String())
	return proc.Start(ctx, cmd, c.logFile(), c.pidFile, proc.SettleTime)
}

// install is Install: it copies the release's WAR over
// webapps/<name>.war atomically. A running Jetty redeploys it.
func install(ctx context.Context, c *config, rel sdk.Release, _ proc.Found) (sdk.Result, error) {
	res, err := proc.Install(ctx, rel, c.war, nil)
	res.Output = map[string]string{"war": c.war}
	return res, err
}

var _ sdk.Driver = (*Driver)(nil)
