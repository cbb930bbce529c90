package tomcat

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// Version is the driver's own version, reported by Describe.
const Version = "1.0.0"

// Instance config keys, as agent.yaml spells them.
const (
	keyBase        = "catalina_base"
	keyHome        = "catalina_home"
	keyJavaHome    = "java_home"
	keyStopTimeout = "stop_timeout"
	keyJavaOpts    = "java_opts"

	keyManagerUser         = "manager_user"
	keyManagerPasswordFile = "manager_password_file"
	keyDrainTime           = "drain_time"
)

const (
	defaultHome        = "/usr/share/tomcat10"
	defaultStopTimeout = 30 * time.Second
	defaultManagerUser = "baepo"
	defaultDrainTime   = 60 * time.Second
)

// stepRetire is the custom step that undeploys what hot installs left running.
const stepRetire = "retire"

var configFields = []sdk.ConfigField{
	{Name: keyBase, Required: true, Doc: "the instance's CATALINA_BASE: an absolute path to a directory made by tomcat10-instance-create, with conf/server.xml and webapps/"},
	{Name: keyHome, Doc: "CATALINA_HOME, the Tomcat installation whose bin/catalina.sh runs the instance (default " + defaultHome + ")"},
	{Name: keyJavaHome, Doc: "JAVA_HOME for the instance (default: what Debian's setenv.sh finds)"},
	{Name: keyStopTimeout, Doc: "how long stop waits after SIGTERM before it sends SIGKILL, a Go duration (default 30s)"},
	{Name: keyJavaOpts, Doc: "JVM options for the server, passed as CATALINA_OPTS, e.g. \"-Xmx512m -Dfoo=bar\"; the shell splits them into words"},
	{Name: keyManagerUser, Doc: "deploy_mode hot: the user of Tomcat's manager the agent deploys as, with role manager-script in conf/tomcat-users.xml (default " + defaultManagerUser + ")"},
	{Name: keyManagerPasswordFile, Doc: "deploy_mode hot: an absolute path to a file holding manager_user's password, not readable by others (chmod 600)"},
	{Name: keyDrainTime, Doc: "deploy_mode hot: how long retire waits for an old version's sessions to end before it undeploys it anyway, a Go duration (default 60s)"},
}

var steps = []sdk.StepInfo{
	{Name: stepRetire, Doc: "after a hot install: undeploy each version older than the newest running one once its sessions end, or after drain_time (arg drain_time overrides the key); says what it retired and how many sessions it dropped"},
}

// Driver runs Tomcat instances. It keeps no state between calls: everything
// it knows of an instance is on disk (the pid file, CATALINA_BASE, the
// processes in /proc), so it is safe for concurrent use and survives agent
// restarts. Start, Stop, Install, Status and Logs are proc.Instances' over
// start, install and the config; its one custom step is retire.
type Driver struct {
	proc.Instances[*config]
}

var _ sdk.Driver = (*Driver)(nil)

// New returns the Tomcat driver.
func New() *Driver {
	return &Driver{Instances: proc.Instances[*config]{Parse: load, ParseLogs: parseConfig, Launch: start, Place: install}}
}

// Describe names the driver and the instance keys it reads.
func (d *Driver) Describe(ctx context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:      "tomcat",
		Version:   Version,
		Config:    slices.Clone(configFields),
		Steps:     slices.Clone(steps),
		HotDeploy: true,
	}, nil
}

// Step runs the custom step retire.
func (d *Driver) Step(ctx context.Context, inst sdk.Instance, name string, args map[string]string) (sdk.Result, error) {
	if name != stepRetire {
		return sdk.Result{}, fmt.Errorf("step %q on instance %s: %w (the tomcat driver has %s)", name, instName(inst), sdk.ErrUnknownStep, stepRetire)
	}
	fail := func(err error) (sdk.Result, error) {
		return sdk.Result{}, fmt.Errorf("retire on instance %s: %w", instName(inst), err)
	}
	c, err := load(inst)
	if err != nil {
		return fail(err)
	}
	drain := c.drainTime
	if v, ok := args[keyDrainTime]; ok {
		if drain, err = time.ParseDuration(v); err != nil || drain < 0 {
			return fail(fmt.Errorf("drain_time: %q is not a duration (e.g. 60s)", v))
		}
	}
	for k := range args {
		if k != keyDrainTime {
			return fail(fmt.Errorf("%s: unknown argument (retire takes drain_time)", k))
		}
	}
	found, err := c.Process().Lookup()
	if err != nil {
		return fail(err)
	}
	res, err := retire(ctx, c, drain, found)
	if err != nil {
		return fail(err)
	}
	return res, nil
}

// Validate checks one instance's config: that catalina_base is a
// CATALINA_BASE and catalina_home a CATALINA_HOME, and that the HTTP
// connector of conf/server.xml uses the instance's port. (The agent has
// already refused keys that Describe does not list.)
func (d *Driver) Validate(ctx context.Context, inst sdk.Instance) error {
	c, err := parseConfig(inst)
	if err != nil {
		return err
	}
	if err := c.checkPort(inst.Port); err != nil {
		return err
	}
	if inst.Mode == "hot" {
		return c.checkHot()
	}
	return nil
}

// config is one instance's parsed and checked config.
type config struct {
	base        string // CATALINA_BASE, absolute and clean
	home        string // CATALINA_HOME
	javaHome    string // "" for Debian's choice
	javaOpts    string
	stopTimeout time.Duration
	stateDir    string
	contextPath string // the instance's context path, "/" or "/app"
	port        int    // the instance's HTTP port

	managerUser  string        // the manager's user for hot deploys
	passwordFile string        // its password's file, "" when not set
	drainTime    time.Duration // how long retire waits for sessions
}

// parseConfig reads and checks inst.Config. Its errors begin with the key.
func parseConfig(inst sdk.Instance) (*config, error) {
	c := &config{
		home:        defaultHome,
		javaOpts:    inst.Config[keyJavaOpts],
		stateDir:    inst.StateDir,
		contextPath: inst.Context,
		port:        inst.Port,
		managerUser: inst.Config[keyManagerUser],
	}
	if c.managerUser == "" {
		c.managerUser = defaultManagerUser
	}
	if p := inst.Config[keyManagerPasswordFile]; p != "" {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("%s: %s: not an absolute path", keyManagerPasswordFile, p)
		}
		c.passwordFile = filepath.Clean(p)
	}

	var err error
	if c.base, err = proc.Dir(inst, keyBase, true); err != nil {
		return nil, err
	}
	for _, want := range []struct {
		rel string
		dir bool
	}{{"conf/server.xml", false}, {"webapps", true}} {
		fi, err := os.Stat(filepath.Join(c.base, want.rel))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s: %s: %s is missing (make a CATALINA_BASE with tomcat10-instance-create)", keyBase, c.base, want.rel)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", keyBase, err)
		case fi.IsDir() != want.dir:
			return nil, fmt.Errorf("%s: %s: %s is not a %s", keyBase, c.base, want.rel, map[bool]string{true: "directory", false: "file"}[want.dir])
		}
	}

	if home, err := proc.Dir(inst, keyHome, false); err != nil {
		return nil, err
	} else if home != "" {
		c.home = home
	}
	if err := executable(filepath.Join(c.home, "bin", "catalina.sh")); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", keyHome, c.home, err)
	}

	if c.javaHome, err = proc.Dir(inst, keyJavaHome, false); err != nil {
		return nil, err
	}
	if c.javaHome != "" {
		if err := executable(filepath.Join(c.javaHome, "bin", "java")); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", keyJavaHome, c.javaHome, err)
		}
	}

	if c.stopTimeout, err = proc.Duration(inst, keyStopTimeout, defaultStopTimeout); err != nil {
		return nil, err
	}
	if c.drainTime, err = proc.Duration(inst, keyDrainTime, defaultDrainTime); err != nil {
		return nil, err
	}
	return c, nil
}

// executable checks that p is an executable regular file.
func executable(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is missing", p)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// checkPort makes sure conf/server.xml has an HTTP connector on port, when it
// names its connectors' ports literally: a mismatch would otherwise show up
// only as a failing health check. Ports given as ${properties} are not
// checked.
func (c *config) checkPort(port int) error {
	if port <= 0 {
		return nil
	}
	conns, err := httpConnectors(filepath.Join(c.base, "conf", "server.xml"))
	if err != nil {
		return fmt.Errorf("%s: %s: %w", keyBase, c.base, err)
	}
	ports := make([]int, len(conns))
	for i, conn := range conns {
		ports[i] = conn.port
	}
	if len(ports) == 0 || slices.Contains(ports, port) {
		return nil
	}
	return fmt.Errorf("port: %d: conf/server.xml of %s has its HTTP connector on port %s", port, c.base, joinInts(ports))
}

// httpConnector is a plain HTTP connector of a server.xml with a literal
// port; address is its address attribute as written, "" when none.
type httpConnector struct {
	port    int
	address string
}

// httpConnectors returns the plain HTTP connectors of a server.xml whose
// ports are literal.
func httpConnectors(serverXML string) ([]httpConnector, error) {
	f, err := os.Open(serverXML)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var conns []httpConnector
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return conns, nil
		}
		if err != nil {
			return nil, fmt.Errorf("conf/server.xml: %w", err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok || el.Name.Local != "Connector" {
			continue
		}
		attr := func(name string) string {
			for _, a := range el.Attr {
				if a.Name.Local == name {
					return a.Value
				}
			}
			return ""
		}
		proto := attr("protocol")
		if strings.EqualFold(attr("SSLEnabled"), "true") || (proto != "" && !strings.HasPrefix(proto, "HTTP/") && !strings.Contains(proto, "Http11")) {
			continue
		}
		if p, err := strconv.Atoi(attr("port")); err == nil {
			conns = append(conns, httpConnector{port: p, address: attr("address")})
		}
	}
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// pidFile is where catalina.sh writes the instance's pid.
func (c *config) pidFile() string { return filepath.Join(c.stateDir, "catalina.pid") }

// catalinaOut is the instance's console log.
func (c *config) catalinaOut() string { return filepath.Join(c.base, "logs", "catalina.out") }

func instName(inst sdk.Instance) string { return inst.Service + "/" + inst.Name }
