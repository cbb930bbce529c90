package e2e_test

// End-to-end tests of driver plugins: the real agent loads real plugin
// binaries — Jetty 9, fat JAR, and one built out of tree against the sdk
// alone — pinned by sha256, and drives real Jetty and Java processes.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
)

// pluginFleet is a fleet with service B on two Jetty instances, Z as a
// fat JAR and H on the out-of-tree hello driver.
type pluginFleet struct {
	*fleet
	ports map[string]int
	wars  map[string]string // version → WAR
	jars  map[string]string // version → JAR
}

func newPluginFleet(t *testing.T) *pluginFleet {
	t.Helper()
	f := &pluginFleet{fleet: newFleet(t), wars: map[string]string{}, jars: map[string]string{}}
	f.ports = map[string]int{"b1": freePort(t), "b2": freePort(t), "z1": freePort(t), "h1": freePort(t)}
	for _, b := range []string{"b1", "b2"} {
		jettyBase(t, filepath.Join(f.dir, b))
	}
	os.MkdirAll(filepath.Join(f.dir, "z1"), 0o755)
	f.start(fmt.Sprintf(`  B:
    driver: jetty
    context: /app
    health: { path: /app/health, timeout: 60s, interval: 50ms }
    instances:
      b1: { jetty_base: %[1]s/b1, port: %[2]d, java_opts: -Djava.io.tmpdir=%[1]s/b1 }
      b2: { jetty_base: %[1]s/b2, port: %[3]d, java_opts: -Djava.io.tmpdir=%[1]s/b2 }
  Z:
    driver: jar
    health: { path: /health, timeout: 60s, interval: 50ms }
    instances:
      z1: { dir: %[1]s/z1, port: %[4]d, stop_timeout: 10s }
  H:
    driver: hello
    instances:
      h1: { greeting: annyeong, port: %[5]d }
`, f.dir, f.ports["b1"], f.ports["b2"], f.ports["z1"], f.ports["h1"]), "jetty", "jar", "hello")
	ctx := context.Background()
	for _, v := range []string{"v1", "v2"} {
		dir := filepath.Join(f.dir, "build", v)
		os.MkdirAll(dir, 0o755)
		var err error
		if f.wars[v], err = fixture.BuildWAR(ctx, dir, v, fixture.WAROptions{}); err != nil {
			t.Fatal(err)
		}
		if f.jars[v], err = fixture.BuildJAR(ctx, dir, v); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// jettyBase makes a JETTY_BASE with the http and deploy modules.
func jettyBase(t testing.TB, dir string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	out, err := exec.Command("java", "-Djava.io.tmpdir="+t.TempDir(), "-jar", "/usr/share/jetty9/start.jar", "jetty.home=/usr/share/jetty9", "jetty.base="+dir, "--add-to-start=http,deploy").CombinedOutput()
	if err != nil {
		t.Fatalf("create JETTY_BASE: %v\n%s", err, out)
	}
}

// jetty returns what the two Jetty instances serve, "v1,v2" style.
func (f *pluginFleet) jetty() string {
	return get(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", f.ports["b1"])) + "," + get(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", f.ports["b2"]))
}

// app returns what the fat JAR serves.
func (f *pluginFleet) app() string {
	return get(fmt.Sprintf("http://127.0.0.1:%d/version", f.ports["z1"]))
}

// deployed makes sure service of the fleet serves something, deploying
// artifact when it does not.
func (f *pluginFleet) deployed(service, artifact string, serving func() string, none string) {
	f.t.Helper()
	if serving() == none {
		f.must(0, "run", "deploy", "--server", "local", "--service", service, "--artifact", artifact)
	}
}

func TestEndToEndPlugins(t *testing.T) {
	f := newPluginFleet(t)
	wars, jars, jetty, app := f.wars, f.jars, f.jetty, f.app

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
		f.deployed("Z", jars["v2"], app, "")
		f.must(0, "run", "custom", "--flows", flows, "--server", "local", "--service", "Z", "--step", "thread-dump", "--want", "Full thread dump")
		f.must(0, "run", "custom", "--flows", flows, "--server", "local", "--service", "H", "--step", "hello", "--who", "jenkins", "--want", "annyeong, jenkins, from h1")
		// The agent refuses a step its driver does not offer before it
		// runs: nothing changed, exit 2.
		stdout, stderr := f.must(2, "run", "custom", "--flows", flows, "--server", "local", "--service", "Z", "--step", "nope", "--want", "x")
		if out := stdout + stderr; !strings.Contains(out, `unknown step "nope"`) || !strings.Contains(out, "thread-dump") || !strings.Contains(out, "custom.lua:11:") {
			t.Fatalf("unknown step:\n%s", out)
		}
	})
	t.Run("plugin killed mid-step", func(t *testing.T) {
		f.t = t
		f.deployed("B", wars["v2"], jetty, ",")
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
		// The restart flow's rollback starts the instance again and checks it.
		if code != 1 || !strings.Contains(out, "plugin jetty exited") || !strings.Contains(out, "rolled-back") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if get(f.agentURL+"/healthz") != "ok" {
			t.Fatal("the agent died with its plugin")
		}
		f.must(0, "run", "deploy", "--server", "local", "--service", "B", "--artifact", wars["v2"])
		if got := jetty(); got != "v2,v2" {
			t.Fatalf("jetty serves %q", got)
		}
	})
	t.Run("plugin logs reach the agent log", func(t *testing.T) {
		f.t = t
		f.deployed("Z", jars["v2"], app, "")
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
		f.startAgent() // for the subtests that follow
	})
	t.Run("wrong sha256 is refused", func(t *testing.T) {
		f.t = t
		cfg, _ := os.ReadFile(filepath.Join(f.dir, "agent.yaml"))
		bad := strings.Replace(string(cfg), "jar: { sha256: ", "jar: { sha256: 00", 1)
		bad = strings.Replace(bad, "listen: 127.0.0.1:"+strconv.Itoa(f.agentPort), "listen: 127.0.0.1:"+strconv.Itoa(freePort(t)), 1)
		// A data dir of its own: the running agent holds the fleet's.
		bad = strings.Replace(bad, "data_dir: data\n", "data_dir: data-bad\n", 1)
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
func waitPluginStep(t *testing.T, f *pluginFleet, logStart int, plugin, inst string) int {
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
