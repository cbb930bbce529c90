package agent

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/baepo/baepo/agent/balancer"
	"github.com/baepo/baepo/sdk"
)

// Config is agent.yaml. Relative paths in it are relative to the file.
type Config struct {
	Listen      string                    `yaml:"listen"`
	TokenFile   string                    `yaml:"token_file"`
	DataDir     string                    `yaml:"data_dir"`
	TLS         *TLSConfig                `yaml:"tls"`
	PluginsDir  string                    `yaml:"plugins_dir"`
	Plugins     map[string]PluginConfig   `yaml:"plugins"`
	Commands    map[string][]string       `yaml:"commands"`
	Services    map[string]*ServiceConfig `yaml:"services"`
	MaxArtifact ByteSize                  `yaml:"max_artifact_size"` // default 2GiB
	StepTimeout Duration                  `yaml:"step_timeout"`      // default 15m: no step runs longer
	HTTP        HTTPConfig                `yaml:"http"`

	file     string
	token    string
	commands map[string]command // parsed from Commands
}

// Token is the bearer token read from token_file.
func (c *Config) Token() string { return c.token }

// TLSConfig turns on HTTPS; ClientCA turns on mutual TLS.
type TLSConfig struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
}

// HTTPConfig bounds what a client may hold of the agent's HTTP server:
// connections, and how long each part of a request may stall. None bounds
// a whole request, which may be a step that streams for step_timeout or an
// upload of max_artifact_size: the read and write timeouts are per read and
// per write, so a request that makes progress runs as long as it needs.
type HTTPConfig struct {
	MaxConnections    int      `yaml:"max_connections"`     // default 512: more wait to be accepted
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"` // default 10s: a request's headers, and a TLS handshake
	IdleTimeout       Duration `yaml:"idle_timeout"`        // default 60s: a keep-alive connection between requests
	ReadTimeout       Duration `yaml:"read_timeout"`        // default 60s: a request body that sends nothing
	WriteTimeout      Duration `yaml:"write_timeout"`       // default 60s: a response the client does not read
}

// PluginConfig pins a driver plugin binary by its digest.
type PluginConfig struct {
	SHA256 string `yaml:"sha256"`
}

// ServiceConfig is one service of the host.
type ServiceConfig struct {
	Driver       string                    `yaml:"driver"`
	Context      string                    `yaml:"context"`
	DeployMode   string                    `yaml:"deploy_mode"` // hot or restart (default): how install and rollback place a release
	KeepReleases int                       `yaml:"keep_releases"`
	Health       HealthConfig              `yaml:"health"`
	Instances    map[string]map[string]any `yaml:"instances"`
	Balancer     *BalancerConfig           `yaml:"balancer"`
	instances    map[string]sdk.Instance   // parsed from Instances
	balancers    map[string]*lbConfig      // by instance, from Balancer and each instance's balancer:; nil without one
}

// BalancerConfig is how the agent takes an instance out of its load
// balancer's rotation (the drain step) and puts it back (undrain): through
// HAProxy's runtime API, or two allow-listed commands of commands:. A
// service's applies to every instance; an instance's balancer: key, of the
// same shape, is merged over it field by field.
type BalancerConfig struct {
	HAProxy        *HAProxyConfig `yaml:"haproxy"`
	DrainCommand   string         `yaml:"drain_command"`
	UndrainCommand string         `yaml:"undrain_command"`
	DrainTimeout   Duration       `yaml:"drain_timeout"`   // default 30s: the longest drain waits for requests in flight
	UndrainTimeout Duration       `yaml:"undrain_timeout"` // default 30s: the longest undrain waits for the balancer to say UP
}

// HAProxyConfig names an instance's server in HAProxy.
type HAProxyConfig struct {
	Socket  string `yaml:"socket"`  // the stats socket, at level admin
	Backend string `yaml:"backend"` // the backend's name
	Server  string `yaml:"server"`  // the server's name in the backend; default: the instance's name
}

// lbConfig is an instance's balancer, ready to call.
type lbConfig struct {
	balancer.Balancer
	drainTimeout, undrainTimeout time.Duration
}

// HealthConfig is how the agent decides an instance serves.
type HealthConfig struct {
	Path         string   `yaml:"path"`          // default: the context path
	ExpectStatus int      `yaml:"expect_status"` // default 200
	ExpectBody   string   `yaml:"expect_body"`   // optional substring of the body
	Timeout      Duration `yaml:"timeout"`       // default 90s
	Interval     Duration `yaml:"interval"`      // default 100ms
}

// Duration is a time.Duration written as "90s" in YAML.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 90s, 5m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size written as 512MiB, 2GiB or plain bytes in YAML.
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("line %d: %q is not a size (use e.g. 512MiB, 2GiB)", n.Line, n.Value)
	}
	if v > math.MaxInt64/mult {
		return fmt.Errorf("line %d: %q is too large a size (at most 8589934591GiB)", n.Line, n.Value)
	}
	*b = ByteSize(v * mult)
	return nil
}

// Deploy modes: the values of a service's deploy_mode and of install's and
// rollback's mode argument.
const (
	ModeRestart = "restart" // the release replaces the old one; the flow restarts the server
	ModeHot     = "hot"     // the release runs beside the old one, no restart (sdk.Release.Hot)
)

// retireStep is the custom step a driver with HotDeploy must declare.
const retireStep = "retire"

// Defaults.
const (
	defaultListen       = "127.0.0.1:7701"
	defaultKeepReleases = 5
	defaultMaxArtifact  = 2 << 30
	defaultStepTimeout  = 15 * time.Minute
	defaultHealthWait   = 90 * time.Second
	defaultHealthPoll   = 100 * time.Millisecond
	defaultDrainWait    = 30 * time.Second
	defaultUndrainWait  = 30 * time.Second

	defaultMaxConnections    = 512
	minMaxConnections        = 16 // a run's parallel steps and uploads, and a status call beside them
	maxMaxConnections        = 1 << 20
	defaultReadHeaderTimeout = 10 * time.Second
	defaultIdleTimeout       = 60 * time.Second
	defaultReadTimeout       = 60 * time.Second
	defaultWriteTimeout      = 60 * time.Second
)

// nameRE is what service, instance, step and command names may look like:
// no "/", no "..", nothing a path could be built from.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// validName reports whether s may name a service, instance or step.
func validName(s string) bool { return nameRE.MatchString(s) && len(s) <= 64 }

// LoadConfig reads and validates agent.yaml. Errors name the key:
// "services.A.instances.a1.port: missing".
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.file = path
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) rel(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.file), p)
}

func (c *Config) validate() error {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port", c.Listen)
	}
	if c.TokenFile == "" {
		return errors.New("token_file: missing (a file holding the bearer token clients must send)")
	}
	c.TokenFile = c.rel(c.TokenFile)
	tok, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return fmt.Errorf("token_file: %w", err)
	}
	if c.token = strings.TrimSpace(string(tok)); len(c.token) < 16 {
		return fmt.Errorf("token_file: %s: the token must be at least 16 characters (e.g. openssl rand -hex 32)", c.TokenFile)
	}
	if c.DataDir == "" {
		return errors.New("data_dir: missing (where artifacts, releases and history live)")
	}
	c.DataDir = c.rel(c.DataDir)
	if c.TLS != nil {
		c.TLS.Cert, c.TLS.Key, c.TLS.ClientCA = c.rel(c.TLS.Cert), c.rel(c.TLS.Key), c.rel(c.TLS.ClientCA)
		for key, p := range map[string]string{"tls.cert": c.TLS.Cert, "tls.key": c.TLS.Key} {
			if p == "" {
				return fmt.Errorf("%s: missing", key)
			}
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	c.PluginsDir = c.rel(c.PluginsDir)
	if c.MaxArtifact == 0 {
		c.MaxArtifact = defaultMaxArtifact
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = Duration(defaultStepTimeout)
	}
	if c.StepTimeout < 0 {
		return fmt.Errorf("step_timeout: %s is negative (give the longest a step may run, e.g. 15m)", time.Duration(c.StepTimeout))
	}
	if err := c.HTTP.validate(); err != nil {
		return err
	}
	c.commands = map[string]command{}
	for _, name := range sortedKeys(c.Commands) {
		if !validName(name) {
			return fmt.Errorf("commands.%s: names are letters, digits, - and _", name)
		}
		cmd, err := parseCommand(name, c.Commands[name])
		if err != nil {
			return fmt.Errorf("commands.%s: %w", name, err)
		}
		c.commands[name] = cmd
	}
	if len(c.Services) == 0 {
		return errors.New("services: none configured")
	}
	for name, s := range c.Services {
		if err := s.validate(name, c.commands); err != nil {
			return err
		}
	}
	return c.checkPorts()
}

func (h *HTTPConfig) validate() error {
	if h.MaxConnections == 0 {
		h.MaxConnections = defaultMaxConnections
	}
	if h.MaxConnections < minMaxConnections || h.MaxConnections > maxMaxConnections {
		return fmt.Errorf("http.max_connections: %d is out of range (%d to %d; default %d)", h.MaxConnections, minMaxConnections, maxMaxConnections, defaultMaxConnections)
	}
	for _, d := range []struct {
		name string
		v    *Duration
		def  time.Duration
	}{
		{"read_header_timeout", &h.ReadHeaderTimeout, defaultReadHeaderTimeout},
		{"idle_timeout", &h.IdleTimeout, defaultIdleTimeout},
		{"read_timeout", &h.ReadTimeout, defaultReadTimeout},
		{"write_timeout", &h.WriteTimeout, defaultWriteTimeout},
	} {
		if *d.v == 0 {
			*d.v = Duration(d.def)
		}
		if *d.v < 0 {
			return fmt.Errorf("http.%s: %s is negative (give a positive duration, e.g. %s)", d.name, time.Duration(*d.v), d.def)
		}
	}
	return nil
}

func (s *ServiceConfig) validate(name string, commands map[string]command) error {
	key := "services." + name
	if !validName(name) {
		return fmt.Errorf("%s: service names are letters, digits, - and _", key)
	}
	if s == nil {
		return fmt.Errorf("%s: empty", key)
	}
	if s.Driver == "" {
		return fmt.Errorf("%s.driver: missing (tomcat, or the name of a plugin)", key)
	}
	if s.Context == "" {
		s.Context = "/"
	}
	if !strings.HasPrefix(s.Context, "/") || strings.Contains(s.Context, "..") || strings.Contains(s.Context, "//") {
		return fmt.Errorf("%s.context: %q must be \"/\" or a path like /app", key, s.Context)
	}
	switch s.DeployMode {
	case "":
		s.DeployMode = ModeRestart
	case ModeHot, ModeRestart:
	default:
		return fmt.Errorf("%s.deploy_mode: %q is not a mode (hot or restart)", key, s.DeployMode)
	}
	if s.KeepReleases == 0 {
		s.KeepReleases = defaultKeepReleases
	}
	if s.KeepReleases < 2 {
		return fmt.Errorf("%s.keep_releases: at least 2 (current and previous)", key)
	}
	h := &s.Health
	if h.Path == "" {
		h.Path = s.Context
	}
	if !strings.HasPrefix(h.Path, "/") {
		return fmt.Errorf("%s.health.path: %q must start with /", key, h.Path)
	}
	if h.ExpectStatus == 0 {
		h.ExpectStatus = 200
	}
	if h.ExpectStatus < 100 || h.ExpectStatus > 599 {
		return fmt.Errorf("%s.health.expect_status: %d is not an HTTP status (100 to 599, e.g. 200)", key, h.ExpectStatus)
	}
	if h.Timeout == 0 {
		h.Timeout = Duration(defaultHealthWait)
	}
	if h.Interval == 0 {
		h.Interval = Duration(defaultHealthPoll)
	}
	for _, d := range []struct {
		name string
		v    Duration
		eg   string
	}{{"timeout", h.Timeout, "90s"}, {"interval", h.Interval, "100ms"}} {
		if d.v < 0 {
			return fmt.Errorf("%s.health.%s: %s is negative (give a positive duration, e.g. %s)", key, d.name, time.Duration(d.v), d.eg)
		}
	}
	if len(s.Instances) == 0 {
		return fmt.Errorf("%s.instances: none configured", key)
	}
	s.instances = map[string]sdk.Instance{}
	s.balancers = map[string]*lbConfig{}
	for _, iname := range sortedKeys(s.Instances) { // the same error, every time
		raw := s.Instances[iname]
		ikey := key + ".instances." + iname
		if !validName(iname) {
			return fmt.Errorf("%s: instance names are letters, digits, - and _", ikey)
		}
		inst := sdk.Instance{Service: name, Name: iname, Context: s.Context, Mode: s.DeployMode, Config: map[string]string{}}
		var lbOver *BalancerConfig
		for k, v := range raw {
			if k == "balancer" {
				var err error
				if lbOver, err = decodeBalancer(v); err != nil {
					return fmt.Errorf("%s.balancer: %w", ikey, err)
				}
				continue
			}
			switch v := v.(type) {
			case int:
				if k == "port" {
					inst.Port = v
					continue
				}
				inst.Config[k] = strconv.Itoa(v)
			case string, bool, float64:
				inst.Config[k] = fmt.Sprint(v)
			default:
				return fmt.Errorf("%s.%s: must be a string or a number", ikey, k)
			}
		}
		if inst.Port <= 0 || inst.Port > 65535 {
			return fmt.Errorf("%s.port: missing or not a port number", ikey)
		}
		s.instances[iname] = inst
		lb, err := resolveBalancer(s.Balancer, lbOver, key+".balancer", ikey+".balancer", inst, commands)
		if err != nil {
			return err
		}
		s.balancers[iname] = lb
	}
	return nil
}

// decodeBalancer reads an instance's balancer: key, which YAML gave as a
// generic value, as strictly as the rest of agent.yaml.
func decodeBalancer(v any) (*BalancerConfig, error) {
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("must be a mapping of the service's balancer: keys, e.g. { haproxy: { server: web1 } }")
	}
	data, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var b BalancerConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&b); err != nil {
		return nil, errors.New(oneLineYAMLError(err))
	}
	return &b, nil
}

// yamlLineRE is what yaml's errors put before each problem; a line number
// in a re-encoded value means nothing to the reader.
var yamlLineRE = regexp.MustCompile(`(yaml: unmarshal errors:\s*)?line \d+: `)

func oneLineYAMLError(err error) string {
	return strings.Join(strings.Fields(yamlLineRE.ReplaceAllString(err.Error(), "")), " ")
}

// merge returns b with the fields over sets replacing b's; either may be
// nil, and the result is nil when both are.
func (b *BalancerConfig) merge(over *BalancerConfig) *BalancerConfig {
	if b == nil && over == nil {
		return nil
	}
	var m BalancerConfig
	if b != nil {
		m = *b
		if b.HAProxy != nil {
			h := *b.HAProxy
			m.HAProxy = &h
		}
	}
	if over == nil {
		return &m
	}
	if o := over.HAProxy; o != nil {
		if m.HAProxy == nil {
			m.HAProxy = &HAProxyConfig{}
		}
		for _, f := range []struct {
			dst *string
			v   string
		}{{&m.HAProxy.Socket, o.Socket}, {&m.HAProxy.Backend, o.Backend}, {&m.HAProxy.Server, o.Server}} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{{&m.DrainCommand, over.DrainCommand}, {&m.UndrainCommand, over.UndrainCommand}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	for _, f := range []struct {
		dst *Duration
		v   Duration
	}{{&m.DrainTimeout, over.DrainTimeout}, {&m.UndrainTimeout, over.UndrainTimeout}} {
		if f.v != 0 {
			*f.dst = f.v
		}
	}
	return &m
}

// resolveBalancer merges the instance's balancer: (over) over its
// service's (svc), checks the result and makes it ready to call; nil when
// neither has one. An error names the key where the value at fault was
// written: svcKey or instKey.
func resolveBalancer(svc, over *BalancerConfig, svcKey, instKey string, inst sdk.Instance, commands map[string]command) (*lbConfig, error) {
	b := svc.merge(over)
	if b == nil {
		return nil, nil
	}
	// keyOf names where a field was set: the instance's block when it sets
	// it, else the service's; a field set nowhere, the service's block if
	// there is one.
	keyOf := func(set func(*BalancerConfig) bool) string {
		if over != nil && (set(over) || svc == nil) {
			return instKey
		}
		return svcKey
	}
	key := keyOf(func(o *BalancerConfig) bool {
		return o.HAProxy != nil || o.DrainCommand != "" || o.UndrainCommand != ""
	})
	hkey := func(get func(*HAProxyConfig) string) string {
		return keyOf(func(o *BalancerConfig) bool { return o.HAProxy != nil && get(o.HAProxy) != "" }) + ".haproxy"
	}
	lb := &lbConfig{drainTimeout: defaultDrainWait, undrainTimeout: defaultUndrainWait}
	for _, d := range []struct {
		name string
		v    Duration
		dst  *time.Duration
		key  string
	}{
		{"drain_timeout", b.DrainTimeout, &lb.drainTimeout, keyOf(func(o *BalancerConfig) bool { return o.DrainTimeout != 0 })},
		{"undrain_timeout", b.UndrainTimeout, &lb.undrainTimeout, keyOf(func(o *BalancerConfig) bool { return o.UndrainTimeout != 0 })},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("%s.%s: %s is negative (give a positive duration, e.g. 30s)", d.key, d.name, time.Duration(d.v))
		}
		if d.v > 0 {
			*d.dst = time.Duration(d.v)
		}
	}
	byCommand := b.DrainCommand != "" || b.UndrainCommand != ""
	switch {
	case b.HAProxy != nil && byCommand:
		return nil, fmt.Errorf("%s: give either haproxy or drain_command and undrain_command, not both", key)
	case b.HAProxy != nil:
		h := *b.HAProxy
		if h.Server == "" {
			h.Server = inst.Name
		}
		skey := hkey(func(h *HAProxyConfig) string { return h.Socket })
		switch {
		case h.Socket == "":
			return nil, fmt.Errorf("%s.socket: missing (the path of HAProxy's stats socket, e.g. /run/haproxy/admin.sock)", skey)
		case !filepath.IsAbs(h.Socket):
			return nil, fmt.Errorf("%s.socket: %q must be an absolute path", skey, h.Socket)
		case len(h.Socket) > balancer.MaxSocketPath:
			return nil, fmt.Errorf("%s.socket: %q is %d bytes long; a Unix socket's path has at most %d", skey, h.Socket, len(h.Socket), balancer.MaxSocketPath)
		}
		for _, f := range []struct{ name, v, doc, key string }{
			{"backend", h.Backend, "the backend's name in HAProxy's config", hkey(func(h *HAProxyConfig) string { return h.Backend })},
			{"server", h.Server, "the server's name in the backend", hkey(func(h *HAProxyConfig) string { return h.Server })},
		} {
			if f.v == "" {
				return nil, fmt.Errorf("%s.%s: missing (%s)", f.key, f.name, f.doc)
			}
			if !balancer.ValidName(f.v) {
				return nil, fmt.Errorf("%s.%s: %q is not a name HAProxy takes (letters, digits, ., :, _ and -)", f.key, f.name, f.v)
			}
		}
		lb.Balancer = &balancer.HAProxy{Socket: h.Socket, Backend: h.Backend, Server: h.Server}
	case byCommand:
		c := &balancer.Command{}
		for _, f := range []struct {
			name, v, key string
			dst          *balancer.Argv
		}{
			{"drain_command", b.DrainCommand, keyOf(func(o *BalancerConfig) bool { return o.DrainCommand != "" }), &c.DrainCmd},
			{"undrain_command", b.UndrainCommand, keyOf(func(o *BalancerConfig) bool { return o.UndrainCommand != "" }), &c.UndrainCmd},
		} {
			if f.v == "" {
				return nil, fmt.Errorf("%s.%s: missing (give both drain_command and undrain_command)", key, f.name)
			}
			cmd, ok := commands[f.v]
			if !ok {
				return nil, fmt.Errorf("%s.%s: %q is not in commands: (allow-listed: %s)", f.key, f.name, f.v, listOrNone(sortedKeys(commands)))
			}
			if len(cmd.Args) > 0 {
				return nil, fmt.Errorf("%s.%s: command %s takes {arg:...} placeholders (%s); a balancer's command may hold only {service}, {instance} and {port}", f.key, f.name, f.v, strings.Join(cmd.Args, ", "))
			}
			*f.dst = balancer.Argv{Name: f.v, Args: cmd.expand(inst, nil)}
		}
		lb.Balancer = c
	default:
		return nil, fmt.Errorf("%s: give haproxy: { socket: ..., backend: ... } or drain_command and undrain_command", key)
	}
	return lb, nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (c *Config) checkPorts() error {
	seen := map[int]string{}
	for _, sname := range sortedKeys(c.Services) {
		s := c.Services[sname]
		for _, iname := range sortedKeys(s.instances) {
			port := s.instances[iname].Port
			if other, ok := seen[port]; ok {
				return fmt.Errorf("services.%s.instances.%s.port: %d is also the port of %s", sname, iname, port, other)
			}
			seen[port] = sname + "/" + iname
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
