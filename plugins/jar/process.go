package jar

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

// start is Start for a JVM that does not run yet (proc.Instances leaves a
// running one alone and adopts one whose pid file was lost). It runs java
// [jvm_opts] -jar <dir>/app.jar [port_arg] [args] in dir, in a session of
// its own so that the JVM outlives the plugin and the agent, with stdout
// and stderr appended to logs/app.log (after a line that says what starts)
// and its pid in the pid file, and returns the pid once the JVM has
// survived proc.SettleTime; a JVM that exits before is an error with the
// last lines of app.log. A cancelled start leaves no JVM and no pid file
// behind.
//
// Stop is proc.Process.Stop: SIGTERM to the JVM (Spring Boot and the JVM's
// shutdown hooks stop gracefully), a wait, SIGKILL after stop_timeout.
// Logs reads logs/app.log.
func start(ctx context.Context, c *config) (int, error) {
	if fi, err := os.Stat(c.jar()); errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%s does not exist: install a release first", c.jar())
	} else if err != nil {
		return 0, err
	} else if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", c.jar())
	}
	// The log's directory, for command's line; proc.Start makes the state
	// directory for the pid file.
	if err := os.MkdirAll(filepath.Dir(c.logFile()), 0o755); err != nil {
		return 0, err
	}
	cmd, err := c.command(ctx)
	if err != nil {
		return 0, err
	}
	pid, err := proc.Start(ctx, cmd, c.logFile(), c.pidFile(), proc.SettleTime)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("run %s: %w", c.java, err)
		}
		return 0, err
	}
	sdk.Progress(ctx, fmt.Sprintf("java runs as pid %d", pid))
	return pid, nil
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

// Process is the instance's process as sdk/proc manages it: the one the
// pid file names, else one started by hand or whose pid file was lost.
func (c *config) Process() proc.Process {
	return proc.Process{PIDFile: c.pidFile(), Owns: c.owns, StopTimeout: c.stopTimeout, LogFile: c.logFile()}
}

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
