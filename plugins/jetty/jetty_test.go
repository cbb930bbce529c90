package jetty

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
	"github.com/baepo/baepo/sdk/sdktest"
)

const jettyHome = "/usr/share/jetty9"

// startIni is the start.ini that Jetty's start.jar writes for a JETTY_BASE
// with --add-to-start=http,deploy (the package comment's recipe). It is made
// once per test binary, to spare a JVM per base.
var startIni = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "jetty-base-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("java", "-Djava.io.tmpdir="+dir, "-jar", jettyHome+"/start.jar",
		"jetty.home="+jettyHome, "jetty.base="+dir, "--add-to-start=http,deploy")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start.jar --add-to-start=http,deploy: %w\n%s", err, out)
	}
	return os.ReadFile(filepath.Join(dir, "start.ini"))
})

// newInstance makes a JETTY_BASE with the http and deploy modules, and an
// instance of it on a free port at context ctxPath. Jetty unpacks WARs in
// the test's directory, and no Jetty of the instance outlives the test.
func newInstance(t *testing.T, ctxPath string, config map[string]string) sdk.Instance {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatalf("%v: install a JDK (`make deps`)", err)
	}
	if _, err := os.Stat(jettyHome + "/start.jar"); err != nil {
		t.Fatalf("%v: install jetty9 (`make deps`)", err)
	}
	ini, err := startIni()
	if err != nil {
		t.Fatal(err)
	}
	port, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	for _, d := range []string{filepath.Join(base, "webapps"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "start.ini"), ini, 0o644); err != nil {
		t.Fatal(err)
	}
	inst := sdk.Instance{
		Service:  "B",
		Name:     "b1",
		Port:     port,
		Context:  ctxPath,
		Config:   map[string]string{"jetty_base": base, "java_opts": "-Djava.io.tmpdir=" + filepath.Join(dir, "tmp")},
		StateDir: filepath.Join(dir, "state"), // Start creates it
	}
	for k, v := range config {
		inst.Config[k] = v
	}
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		if _, err := New().Stop(context.Background(), inst); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if pid := readPID(inst); pid > 0 && !gone(pid) {
			t.Errorf("cleanup: pid %d still runs: killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return inst
}

// readPID returns the pid in the instance's pid file, 0 when none.
func readPID(inst sdk.Instance) int {
	pid, _ := proc.ReadPID(filepath.Join(inst.StateDir, "jetty.pid"))
	return pid
}

// gone reports whether pid has exited: it is no process or a zombie.
func gone(pid int) bool { return !proc.Alive(pid) }

func build(t *testing.T, version string) sdk.Release {
	t.Helper()
	war, err := fixture.BuildWAR(t.Context(), t.TempDir(), version, fixture.WAROptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Release{ID: version, Artifact: war, Name: filepath.Base(war)}
}

// waitBody polls GET path on inst until it answers 200 with body.
func waitBody(t *testing.T, ctx context.Context, drv sdk.Driver, inst sdk.Instance, path, body string) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", inst.Port, path)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		status, got, err := fixture.Get(ctx, url)
		if err == nil && status == 200 && got == body {
			return
		}
		select {
		case <-ctx.Done():
			logs, _ := drv.Logs(context.Background(), inst, 30)
			t.Fatalf("GET %s: got %d %q (%v), want 200 %q; jetty.out ends:\n%s", url, status, got, err, body, logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// must(t, "Start")(drv.Start(ctx, inst)) fails the test when the step fails.
func must(t *testing.T, what string) func(sdk.Result, error) sdk.Result {
	return func(res sdk.Result, err error) sdk.Result {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return res
	}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, New(), newInstance(t, "/app", nil))
}

func TestDeployAtContext(t *testing.T) {
	inst := newInstance(t, "/app", nil)
	var progress []string
	ctx := sdk.WithProgress(t.Context(), func(msg string) { progress = append(progress, msg) })
	drv := sdktest.Run(t, New())

	if err := drv.Validate(ctx, inst); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	res := must(t, "Install v1")(drv.Install(ctx, inst, build(t, "v1")))
	if want := filepath.Join(inst.Config["jetty_base"], "webapps", "app.war"); res.Output["war"] != want {
		t.Errorf("Install: war %q, want %q", res.Output["war"], want)
	}
	res = must(t, "Start")(drv.Start(ctx, inst))
	pid, _ := strconv.Atoi(res.Output["pid"])
	if pid <= 0 || readPID(inst) != pid {
		t.Fatalf("Start: pid %q, pid file %d", res.Output["pid"], readPID(inst))
	}
	if !strings.Contains(strings.Join(progress, "\n"), "-Djetty.base="+inst.Config["jetty_base"]) {
		t.Errorf("Start: progress %q does not show the java command", progress)
	}
	waitBody(t, ctx, drv, inst, "/app/version.txt", "v1\n")
	waitBody(t, ctx, drv, inst, "/app/health", "ok")

	res = must(t, "second Start")(drv.Start(ctx, inst))
	if want := fmt.Sprintf("already running (pid %d)", pid); res.Message != want {
		t.Errorf("second Start: %q, want %q", res.Message, want)
	}
	st, err := drv.Status(ctx, inst)
	if err != nil || !st.Running || st.PID != pid {
		t.Errorf("Status: %+v, %v; want running as pid %d", st, err, pid)
	}
	logs, err := drv.Logs(ctx, inst, 5)
	if n := strings.Count(logs, "\n"); err != nil || n != 5 || !strings.Contains(logs, "Started") {
		t.Errorf("Logs(5): %d lines, %v:\n%s", n, err, logs)
	}

	res = must(t, "Stop")(drv.Stop(ctx, inst))
	if want := fmt.Sprintf("stopped (pid %d)", pid); res.Message != want {
		t.Errorf("Stop: %q, want %q", res.Message, want)
	}
	if !gone(pid) {
		t.Errorf("Stop: pid %d still runs", pid)
	}
	if _, err := os.Stat(filepath.Join(inst.StateDir, "jetty.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop: pid file: %v, want it gone", err)
	}
	if st, err := drv.Status(ctx, inst); err != nil || st.Running {
		t.Errorf("Status after Stop: %+v, %v", st, err)
	}
	if res := must(t, "second Stop")(drv.Stop(ctx, inst)); res.Message != "not running" {
		t.Errorf("second Stop: %q, want %q", res.Message, "not running")
	}

	must(t, "Install v2")(drv.Install(ctx, inst, build(t, "v2")))
	must(t, "Start v2")(drv.Start(ctx, inst))
	waitBody(t, ctx, drv, inst, "/app/version.txt", "v2\n")
	must(t, "Stop v2")(drv.Stop(ctx, inst))
	entries, _ := os.ReadDir(filepath.Join(inst.Config["jetty_base"], "webapps"))
	if len(entries) != 1 || entries[0].Name() != "app.war" {
		t.Errorf("webapps holds %v, want app.war only", entries)
	}
}

// TestRootContext deploys at "/", redeploys into the running Jetty, and
// stops a Jetty that does not react to SIGTERM (it is SIGSTOPped).
func TestRootContext(t *testing.T) {
	inst := newInstance(t, "/", map[string]string{"stop_timeout": "1s"})
	ctx := t.Context()
	drv := sdktest.Run(t, New())

	must(t, "Install v1")(drv.Install(ctx, inst, build(t, "v1")))
	res := must(t, "Start")(drv.Start(ctx, inst))
	waitBody(t, ctx, drv, inst, "/version.txt", "v1\n")
	must(t, "Install v2")(drv.Install(ctx, inst, build(t, "v2")))
	waitBody(t, ctx, drv, inst, "/version.txt", "v2\n")

	pid, _ := strconv.Atoi(res.Output["pid"])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	res = must(t, "Stop")(drv.Stop(ctx, inst))
	if !strings.HasPrefix(res.Message, fmt.Sprintf("killed pid %d", pid)) || !gone(pid) {
		t.Errorf("Stop of a stopped JVM: %q; gone: %v", res.Message, gone(pid))
	}
}

func TestStartFailure(t *testing.T) {
	inst := newInstance(t, "/app", map[string]string{"java_opts": "-XX:+NoSuchBaepoOption"})
	drv := sdktest.Run(t, New())
	_, err := drv.Start(t.Context(), inst)
	if err == nil || !strings.Contains(err.Error(), "exited right after start") || !strings.Contains(err.Error(), "NoSuchBaepoOption") {
		t.Fatalf("Start: %v, want the JVM's complaint", err)
	}
	if !strings.HasPrefix(err.Error(), "start instance B/b1: ") {
		t.Errorf("Start: %q does not say what failed", err)
	}
	if _, err := os.Stat(filepath.Join(inst.StateDir, "jetty.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after a failed start: %v, want none", err)
	}

	busy, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", inst.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	delete(inst.Config, "java_opts")
	if _, err := drv.Start(t.Context(), inst); err == nil || !strings.Contains(err.Error(), "address already in use, held by pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("Start on a busy port: %v, want it to say so", err)
	}
	if st, err := drv.Status(t.Context(), inst); err != nil || st.Running {
		t.Errorf("Status after Start on a busy port: %+v, %v", st, err)
	}
}

func TestValidate(t *testing.T) {
	inst := newInstance(t, "/app", nil)
	base := inst.Config["jetty_base"]
	empty := t.TempDir()
	drv := sdktest.Run(t, New())
	for _, tc := range []struct {
		name    string
		key     string // set to val; "-" deletes jetty_base
		val     string
		context string
		want    string // error prefix; "" for none
	}{
		{name: "ok"},
		{name: "root context", context: "/"},
		{name: "no base", key: "-", want: `jetty_base: "": want the absolute path`},
		{name: "relative base", key: "jetty_base", val: "base", want: `jetty_base: "base": want the absolute path`},
		{name: "missing base", key: "jetty_base", val: "/x", want: "jetty_base: /x: directory does not exist"},
		{name: "not a base", key: "jetty_base", val: empty, want: "jetty_base: " + empty + ": no webapps in it"},
		{name: "bad home", key: "jetty_home", val: empty, want: "jetty_home: " + empty + ": no start.jar in it"},
		{name: "bad java", key: "java", val: "no-such-java", want: "java: "},
		{name: "bad stop_timeout", key: "stop_timeout", val: "soon", want: `stop_timeout: "soon"`},
		{name: "negative stop_timeout", key: "stop_timeout", val: "-1s", want: `stop_timeout: "-1s"`},
		{name: "nested context", context: "/shop/cart", want: `context: "/shop/cart": Jetty 9 serves`},
		{name: "root name", context: "/ROOT", want: `context: "/ROOT": Jetty 9 gives`},
		{name: "virtual host name", context: "/root-shop", want: `context: "/root-shop": Jetty 9 gives`},
		{name: "hidden", context: "/.app", want: `context: "/.app": Jetty 9 gives`},
		{name: "dot dot", context: "/..", want: `context: "/..": want "/"`},
		{name: "no slash", context: "app", want: `context: "app": want "/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := inst
			in.Config = map[string]string{"jetty_base": base}
			switch tc.key {
			case "":
			case "-":
				delete(in.Config, "jetty_base")
			default:
				in.Config[tc.key] = tc.val
			}
			if tc.context != "" {
				in.Context = tc.context
			}
			err := drv.Validate(t.Context(), in)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

func TestWARName(t *testing.T) {
	for context, want := range map[string]string{"/": "root.war", "": "root.war", "/app": "app.war", "/app/": "app.war", "/shop.v2": "shop.v2.war"} {
		if got, err := warName(context); got != want || err != nil {
			t.Errorf("warName(%q) = %q, %v; want %q", context, got, err, want)
		}
	}
}

func TestUnknownStep(t *testing.T) {
	_, err := sdktest.Run(t, New()).Step(t.Context(), sdk.Instance{Service: "B", Name: "b1"}, "warm-up", nil)
	if !errors.Is(err, sdk.ErrUnknownStep) {
		t.Errorf("Step: %v, want sdk.ErrUnknownStep", err)
	}
}
