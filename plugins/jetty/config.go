package jetty

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

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
	if c.stopTimeout, err = proc.Duration(inst, "stop_timeout", 30*time.Second); err != nil {
		return nil, err
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

// Process is the instance's Jetty as sdk/proc manages it: the process
// with this instance's -Djetty.base on its command line (which a reused
// pid lacks).
func (c *config) Process() proc.Process {
	return proc.Process{
		PIDFile:     c.pidFile,
		Owns:        func(pid int) bool { return proc.HasArg(pid, "-Djetty.base="+c.base) },
		StopTimeout: c.stopTimeout,
		LogFile:     c.logFile(),
	}
}
