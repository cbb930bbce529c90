package client_test

// End-to-end tests of driver plugins: the real agent loads real plugin
// binaries — Jetty 9, fat JAR, and one built out of tree against the sdk
// alone — pinned by sha256, and drives real Jetty and Java processes.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
)

var (
	pluginOnce sync.Once
	pluginDir  string
	pluginErr  error
)

// pluginBinaries builds the jetty, jar and out-of-tree hello plugins once.
func pluginBinaries(t testing.TB) string {
	t.Helper()
	pluginOnce.Do(func() {
		pluginDir, pluginErr = stableDir("plugins")
		if pluginErr != nil {
			return
		}
		for _, b := range []struct{ name, dir, pkg string }{
			{"jetty", "", "github.com/baepo/baepo/plugins/jetty/cmd/baepo-plugin-jetty"},
			{"jar", "", "github.com/baepo/baepo/plugins/jar/cmd/baepo-plugin-jar"},
			{"hello", "testdata/hello-plugin", "."},
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "baepo-plugin-"+b.name), b.pkg)
			cmd.Dir = b.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				pluginErr = fmt.Errorf("build plugin %s: %v\n%s", b.name, err, out)
				return
			}
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return pluginDir
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// jettyBase makes a JETTY_BASE with the http and deploy modules.
func jettyBase(t testing.TB, dir string) {
	t.Helper()
	out, err := exec.Command("java", "-Djava.io.tmpdir="+t.TempDir(), "-jar", "/usr/share/jetty9/start.jar", "jetty.home=/usr/share/jetty9", "jetty.base="+dir, "--add-to-start=http,deploy").CombinedOutput()
	if err != nil {
		t.Fatalf("create JETTY_BASE: %v\n%s", err, out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pluginFleet is an agent with service B on two Jetty instances, Z as a fat
// JAR and H on the out-of-tree hello driver.
func newPluginFleet(t *testing.T) (*fleet, map[string]int) {
	f := &fleet{t: t, dir: t.TempDir(), bin: binaries(t), token: "e2e-token-0123456789abcdef", agentLog: &syncBuffer{}}
	plugins := pluginBinaries(t)
	pdir := filepath.Join(f.dir, "plugins")
	os.MkdirAll(pdir, 0o755)
	pins := map[string]string{}
	for _, name := range []string{"jetty", "jar", "hello"} {
		dst := filepath.Join(pdir, "baepo-plugin-"+name)
		data, err := os.ReadFile(filepath.Join(plugins, "baepo-plugin-"+name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(dst, data, 0o755)
		pins[name] = sha256File(t, dst)
	}
	ports := map[string]int{"b1": freePort(t), "b2": freePort(t), "z1": freePort(t), "h1": freePort(t), "agent": freePort(t)}
	for _, b := range []string{"b1", "b2"} {
		os.MkdirAll(filepath.Join(f.dir, b), 0o755)
		jettyBase(t, filepath.Join(f.dir, b))
	}
	os.MkdirAll(filepath.Join(f.dir, "z1"), 0o755)
	f.agentURL = "http://127.0.0.1:" + strconv.Itoa(ports["agent"])
	f.write("token", f.token+"\n")
	f.write("agent.yaml", fmt.Sprintf(`listen: 127.0.0.1:%d
token_file: token
data_dir: data
plugins_dir: plugins
plugins:
  jetty: { sha256: %s }
  jar: { sha256: %s }
  hello: { sha256: %s }
services:
  B:
    driver: jetty
    context: /app
    health: { path: /app/health, timeout: 60s, interval: 50ms }
    instances:
      b1: { jetty_base: %s, port: %d, java_opts: -Djava.io.tmpdir=%s }
      b2: { jetty_base: %s, port: %d, java_opts: -Djava.io.tmpdir=%s }
  Z:
    driver: jar
    health: { path: /health, timeout: 60s, interval: 50ms }
    instances:
      z1: { dir: %s, port: %d, stop_timeout: 10s }
  H:
    driver: hello
    instances:
      h1: { greeting: annyeong, port: %d }
`, ports["agent"], pins["jetty"], pins["jar"], pins["hello"],
		filepath.Join(f.dir, "b1"), ports["b1"], filepath.Join(f.dir, "b1"), filepath.Join(f.dir, "b2"), ports["b2"], filepath.Join(f.dir, "b2"),
		filepath.Join(f.dir, "z1"), ports["z1"], ports["h1"]))
	f.inventory = f.write("inventory.yaml", fmt.Sprintf("servers:\n  local: { agent: %q, token_file: token }\n", f.agentURL))
	f.startAgent()
	t.Cleanup(f.cleanup)
	return f, ports
}

func get(t testing.TB, url string) string {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return ""
	}
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func TestEndToEndPlugins(t *testing.T) {
	f, ports := newPluginFleet(t)
	ctx := context.Background()
	wars := map[string]string{}
	jars := map[string]string{}
	for _, v := range []string{"v1", "v2"} {
		dir := filepath.Join(f.dir, "build", v)
		os.MkdirAll(dir, 0o755)
		var err error
		if wars[v], err = fixture.BuildWAR(ctx, dir, v, fixture.WAROptions{}); err != nil {
			t.Fatal(err)
		}
		if jars[v], err = fixture.BuildJAR(ctx, dir, v); err != nil {
			t.Fatal(err)
		}
	}
	jetty := func() string {
		return get(t, fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", ports["b1"])) + "," + get(t, fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", ports["b2"]))
	}
	app := func() string { return get(t, fmt.Sprintf("http://127.0.0.1:%d/version", ports["z1"])) }

	t.Run("jetty deploy restart rollback", func(t *testing.T) {
		f.t = t
		f.must(0, "run", "deploy", "--server", "local", "--service", "B", "--artifact", wars["v1"])
		if got := jetty(); got != "v1,v1" {
			t.Fatalf("jetty serves %q", got)
		}
		f.must(0, "run", "deploy", "--server", "local", "--service", "B", "--artifact", wars["v2"])
		f.must(0, "run", "restart", "--server", "local", "--service", "B")
		if got := jetty(); got != "v2,v2" {
			t.Fatalf("jetty serves %q", got)
		}
		f.must(0, "run", "rollback", "--server", "local", "--service", "B")
		if got := jetty(); got != "v1,v1" {
			t.Fatalf("after rollback jetty serves %q", got)
		}
	})
	t.Run("fat jar deploy restart rollback", func(t *testing.T) {
		f.t = t
		f.must(0, "run", "deploy", "--server", "local", "--service", "Z", "--artifact", jars["v1"])
		f.must(0, "run", "deploy", "--server", "local", "--service", "Z", "--artifact", jars["v2"])
		f.must(0, "run", "restart", "--server", "local", "--service", "Z")
		if got := app(); got != "v2" {
			t.Fatalf("app serves %q", got)
		}
		f.must(0, "run", "rollback", "--server", "local", "--service", "Z")
		if got := app(); got != "v1" {
			t.Fatalf("after rollback app serves %q", got)
		}
	})
	flows := filepath.Join(f.dir, "flows")
	os.MkdirAll(flows, 0o755)
	os.WriteFile(filepath.Join(flows, "custom.lua"), []byte(`return {
  name = "custom",
  description = "call a driver's own step",
  params = {
    service = { type = "string", required = true, doc = "service" },
    step = { type = "string", required = true, doc = "step name" },
    want = { type = "string", required = true, doc = "text the result must hold" },
    who = { type = "string", doc = "the hello step's who argument" },
  },
  each = function(i, ctx)
    local r = i:step(ctx.params.step, { who = ctx.params.who })
    local text = r.dump or r.greeting or ""
    if not text:find(ctx.params.want, 1, true) then fail("step result lacks " .. ctx.params.want .. ": " .. text) end
    log.info("custom step ok", "message", r.message)
  end,
}
`), 0o644)
	t.Run("custom steps from Lua", func(t *testing.T) {
		f.t = t
		f.must(0, "run", "custom", "--flows", flows, "--server", "local", "--service", "Z", "--step", "thread-dump", "--want", "Full thread dump")
		f.must(0, "run", "custom", "--flows", flows, "--server", "local", "--service", "H", "--step", "hello", "--who", "jenkins", "--want", "annyeong, jenkins, from h1")
		stdout, stderr := f.must(3, "run", "custom", "--flows", flows, "--server", "local", "--service", "Z", "--step", "nope", "--want", "x")
		if out := stdout + stderr; !strings.Contains(out, `unknown step "nope"`) || !strings.Contains(out, "thread-dump") || !strings.Contains(out, "custom.lua:11:") {
			t.Fatalf("unknown step:\n%s", out)
		}
	})
	t.Run("plugin killed mid-step", func(t *testing.T) {
		f.t = t
		logStart := len(f.agentLog.String())
		done := make(chan struct{})
		var code int
		var out string
		go func() {
			defer close(done)
			c, so, se := f.baepo(nil, "run", "restart", "--server", "local", "--service", "B")
			code, out = c, so+se
		}()
		pid := waitPluginStep(t, f, logStart, "jetty", "B/b1")
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
		if code != 3 || !strings.Contains(out, "plugin jetty exited") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if get(t, f.agentURL+"/healthz") != "ok" {
			t.Fatal("the agent died with its plugin")
		}
		f.must(0, "run", "deploy", "--server", "local", "--service", "B", "--artifact", wars["v2"])
		if got := jetty(); got != "v2,v2" {
			t.Fatalf("jetty serves %q", got)
		}
	})
	t.Run("plugin logs reach the agent log", func(t *testing.T) {
		f.t = t
		if !strings.Contains(f.agentLog.String(), "plugin=jar") {
			t.Fatalf("no plugin=jar line in the agent log:\n%s", f.agentLog.String())
		}
	})
	t.Run("agent shutdown kills its plugins", func(t *testing.T) {
		f.t = t
		if len(pluginProcs(f.dir)) == 0 {
			t.Fatal("no plugin process runs before shutdown")
		}
		f.stopAgent()
		deadline := time.Now().Add(10 * time.Second)
		for len(pluginProcs(f.dir)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("plugin processes outlived the agent: %v", pluginProcs(f.dir))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("wrong sha256 is refused", func(t *testing.T) {
		f.t = t
		cfg, _ := os.ReadFile(filepath.Join(f.dir, "agent.yaml"))
		bad := strings.Replace(string(cfg), "jar: { sha256: ", "jar: { sha256: 00", 1)
		bad = strings.Replace(bad, "listen: 127.0.0.1:"+strconv.Itoa(ports["agent"]), "listen: 127.0.0.1:"+strconv.Itoa(freePort(t)), 1)
		lines := strings.Split(bad, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "  jar: { sha256: 00") {
				lines[i] = l[:len("  jar: { sha256: ")] + strings.Repeat("0", 64) + " }"
			}
		}
		f.write("bad.yaml", strings.Join(lines, "\n"))
		out, err := exec.Command(filepath.Join(f.bin, "baepo-agent"), "--config", filepath.Join(f.dir, "bad.yaml")).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "refusing to load it") || !strings.Contains(string(out), strings.Repeat("0", 64)) {
			t.Fatalf("err %v:\n%s", err, out)
		}
	})
}

// pluginProcs lists the pids of plugin processes started from dir.
func pluginProcs(dir string) []int {
	var pids []int
	matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, m := range matches {
		data, _ := os.ReadFile(m)
		if strings.HasPrefix(string(data), filepath.Join(dir, "plugins", "baepo-plugin-")) {
			pid, _ := strconv.Atoi(strings.Split(m, "/")[2])
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitPluginStep waits until the agent runs a step on inst and returns the
// pid of the plugin process serving it.
func waitPluginStep(t *testing.T, f *fleet, logStart int, plugin, inst string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(f.agentLog.String()[logStart:], "step started instance="+inst) {
			matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, m := range matches {
				data, _ := os.ReadFile(m)
				if strings.HasPrefix(string(data), filepath.Join(f.dir, "plugins", "baepo-plugin-"+plugin)) {
					pid, _ := strconv.Atoi(strings.Split(m, "/")[2])
					return pid
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no step on %s within a minute:\n%s", inst, f.agentLog.String())
	return 0
}
