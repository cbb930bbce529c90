package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/sdk"
)

// PluginPrefix starts the file name of every driver plugin in plugins_dir:
// the plugin for driver "jetty" is baepo-plugin-jetty.
const PluginPrefix = "baepo-plugin-"

// Plugins is the agent's DriverSource: the built-in drivers, and driver
// plugins from plugins_dir, each started once on first use over gRPC with
// AutoMTLS, only when its sha256 matches the pin in agent.yaml. A plugin that
// exits is started again on the next call.
type Plugins struct {
	builtin Builtin
	dir     string
	pins    map[string]PluginConfig
	log     *slog.Logger

	mu      sync.Mutex
	running map[string]*pluginProc
}

type pluginProc struct {
	client *plugin.Client
	driver sdk.Driver
}

// NewPlugins returns the driver source for a config.
func NewPlugins(builtin Builtin, dir string, pins map[string]PluginConfig, logger *slog.Logger) *Plugins {
	return &Plugins{builtin: builtin, dir: dir, pins: pins, log: logger, running: map[string]*pluginProc{}}
}

// Names implements DriverSource: built-in drivers and pinned plugins.
func (p *Plugins) Names() []string {
	names := append(p.builtin.Names(), slices.Collect(maps.Keys(p.pins))...)
	slices.Sort(names)
	return slices.Compact(names)
}

// Driver implements DriverSource.
func (p *Plugins) Driver(ctx context.Context, name string) (sdk.Driver, error) {
	if d, ok := p.builtin[name]; ok {
		return d, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if proc, ok := p.running[name]; ok {
		if !proc.client.Exited() {
			return proc.driver, nil
		}
		p.log.Warn("plugin exited; starting it again", "plugin", name)
		delete(p.running, name)
	}
	proc, err := p.start(name)
	if err != nil {
		return nil, err
	}
	p.running[name] = proc
	return proc.driver, nil
}

func (p *Plugins) start(name string) (*pluginProc, error) {
	pin, ok := p.pins[name]
	if !ok {
		return nil, fmt.Errorf("unknown driver %q: not built in (%s) and not pinned under plugins: in agent.yaml (add plugins: {%s: {sha256: \"<sha256sum of %s%s>\"}})",
			name, strings.Join(p.builtin.Names(), ", "), name, PluginPrefix, name)
	}
	if p.dir == "" {
		return nil, fmt.Errorf("plugin %s: plugins_dir is not set in agent.yaml", name)
	}
	path := filepath.Join(p.dir, PluginPrefix+name)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	sum, err := hex.DecodeString(pin.SHA256)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("plugin %s: sha256 %q is not 64 hex characters", name, pin.SHA256)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginMap,
		Cmd:              exec.Command(path),
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "plugin." + name,
			Output:     &slogWriter{log: p.log.With("plugin", name)},
			JSONFormat: true,
			Level:      hclog.Debug,
		}),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			have, _ := fileSHA256(path)
			return nil, fmt.Errorf("plugin %s: %s has sha256 %s, agent.yaml pins %s: refusing to load it (rebuild the plugin or update the pin)", name, path, have, pin.SHA256)
		}
		return nil, fmt.Errorf("plugin %s: start %s: %w", name, path, err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	d, ok := raw.(sdk.Driver)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("plugin %s: does not serve an sdk.Driver", name)
	}
	p.log.Info("plugin started", "plugin", name, "path", path)
	return &pluginProc{client: client, driver: d}, nil
}

// Plugins implements DriverSource: every pinned plugin, where the agent
// looks for it, and whether it runs.
func (p *Plugins) Plugins() []api.Plugin {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []api.Plugin{}
	for _, name := range slices.Sorted(maps.Keys(p.pins)) {
		proc, ok := p.running[name]
		out = append(out, api.Plugin{Name: name, Path: filepath.Join(p.dir, PluginPrefix+name), Running: ok && !proc.client.Exited()})
	}
	return out
}

// Explain implements DriverSource: the error of a call to a plugin that
// died says so; the next call starts the plugin again.
func (p *Plugins) Explain(name string, err error) error {
	if err == nil {
		return nil
	}
	p.mu.Lock()
	proc, ok := p.running[name]
	p.mu.Unlock()
	if !ok {
		return err
	}
	// The call can fail a moment before go-plugin notices the process is
	// gone: when the connection broke, give it that moment.
	if s, isStatus := status.FromError(err); isStatus && s.Code() == codes.Unavailable {
		for range 50 {
			if proc.client.Exited() {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if proc.client.Exited() {
		return fmt.Errorf("plugin %s exited: %w (the next step starts it again)", name, err)
	}
	return err
}

// Close implements DriverSource: it kills every plugin the agent started.
func (p *Plugins) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, proc := range p.running {
		proc.client.Kill()
		delete(p.running, name)
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// slogWriter routes go-plugin's JSON log lines — the host's own and the
// plugin's stderr — into the agent's slog logger.
type slogWriter struct {
	log *slog.Logger
}

func (w *slogWriter) Write(b []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			w.log.Info(line)
			continue
		}
		msg, _ := m["@message"].(string)
		level := slog.LevelInfo
		switch m["@level"] {
		case "trace", "debug":
			level = slog.LevelDebug
		case "warn":
			level = slog.LevelWarn
		case "error":
			level = slog.LevelError
		}
		var attrs []any
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !strings.HasPrefix(k, "@") {
				attrs = append(attrs, k, m[k])
			}
		}
		w.log.Log(context.Background(), level, msg, attrs...)
	}
	return len(b), nil
}

var (
	_ DriverSource = (*Plugins)(nil)
	_ DriverSource = Builtin(nil)
)
