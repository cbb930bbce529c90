package tomcat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/tomcat"
	"github.com/baepo/baepo/internal/fixture"
	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// tomcatFixture is one real CATALINA_BASE and the instance that describes it.
type tomcatFixture struct {
	inst sdk.Instance
	base string
	dir  string // the test's scratch directory
}

// newFixture creates a Tomcat instance with fixture.CreateInstance and
// makes sure, when the test ends, that no JVM of it is left running.
func newFixture(t testing.TB, contextPath string) *tomcatFixture {
	t.Helper()
	if _, err := exec.LookPath("tomcat10-instance-create"); err != nil {
		t.Fatal("tomcat10-instance-create is missing: run `make deps` (as root) to install tomcat10 and tomcat10-user")
	}
	httpPort, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	shutPort, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	if err := fixture.CreateInstance(t.Context(), base, httpPort, shutPort); err != nil {
		t.Fatal(err)
	}
	f := &tomcatFixture{
		dir:  dir,
		base: base,
		inst: sdk.Instance{
			Service:  "A",
			Name:     "a1",
			Port:     httpPort,
			Context:  contextPath,
			Config:   map[string]string{"catalina_base": base},
			StateDir: filepath.Join(dir, "state", "A", "a1"), // Start creates it
		},
	}
	t.Cleanup(func() {
		inst := f.inst
		inst.Config = map[string]string{"catalina_base": base, "stop_timeout": "10s"}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := tomcat.New().Stop(ctx, inst); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, pid := range jvms(base) {
			t.Errorf("cleanup: JVM %d of %s still runs: killing it", pid, base)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return f
}

func (f *tomcatFixture) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", f.inst.Port, path)
}

func (f *tomcatFixture) pidFile() string { return filepath.Join(f.inst.StateDir, "catalina.pid") }

func (f *tomcatFixture) war(t testing.TB, version string, opts fixture.WAROptions) sdk.Release {
	t.Helper()
	p, err := fixture.BuildWAR(t.Context(), filepath.Join(f.dir, "wars", version), version, opts)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Release{ID: version, Artifact: p, Name: filepath.Base(p)}
}

// waitBody polls url until it answers 200 with want (spaces trimmed).
func (f *tomcatFixture) waitBody(t *testing.T, d *tomcat.Driver, path, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var status int
	var body string
	var err error
	for ctx.Err() == nil {
		status, body, err = fixture.Get(ctx, f.url(path))
		if err == nil && status == 200 && strings.TrimSpace(body) == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs, _ := d.Logs(context.Background(), f.inst, 40)
	t.Fatalf("GET %s never answered 200 %q; last: %d %q %v\ncatalina.out:\n%s", path, want, status, body, err, logs)
}

// jvms returns the pids of the live processes started with
// -Dcatalina.base=base.
func jvms(base string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("-Dcatalina.base="+base+"\x00")) {
			continue
		}
		if proc.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// wantStopped checks that no JVM of the fixture runs and no pid file is left.
func (f *tomcatFixture) wantStopped(t *testing.T, d *tomcat.Driver) {
	t.Helper()
	if pids := jvms(f.base); len(pids) > 0 {
		t.Fatalf("JVMs %v of %s still run", pids, f.base)
	}
	if _, err := os.Stat(f.pidFile()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file %s: want none, got err %v", f.pidFile(), err)
	}
	st, err := d.Status(context.Background(), f.inst)
	if err != nil || st.Running || st.Message != "not running" {
		t.Fatalf("status = %+v, %v; want not running", st, err)
	}
}

func mustStart(t *testing.T, d *tomcat.Driver, f *tomcatFixture) int {
	t.Helper()
	res, err := d.Start(t.Context(), f.inst)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(res.Output["pid"])
	if err != nil {
		t.Fatalf("start: no pid in %+v", res)
	}
	return pid
}

func TestDescribe(t *testing.T) {
	desc, err := tomcat.New().Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if desc.Name != "tomcat" || desc.Version == "" || len(desc.Steps) != 1 || desc.Steps[0].Name != "retire" || !desc.HotDeploy {
		t.Fatalf("describe = %+v", desc)
	}
	fields := map[string]sdk.ConfigField{}
	for _, f := range desc.Config {
		if f.Doc == "" {
			t.Errorf("config field %s has no doc", f.Name)
		}
		fields[f.Name] = f
	}
	for name, required := range map[string]bool{"catalina_base": true, "catalina_home": false, "java_home": false, "stop_timeout": false, "java_opts": false, "manager_user": false, "manager_password_file": false, "drain_time": false} {
		if f, ok := fields[name]; !ok || f.Required != required {
			t.Errorf("config field %s: got %+v, want required=%v", name, f, required)
		}
	}
}

func TestValidate(t *testing.T) {
	f := newFixture(t, "/app")
	empty := t.TempDir()
	notBase := t.TempDir()
	if err := os.MkdirAll(filepath.Join(notBase, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(empty, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		config  map[string]string // added to catalina_base: f.base; "" deletes
		port    int
		wantErr string // prefix; "" for none
	}{
		{name: "ok"},
		{name: "all keys", config: map[string]string{"catalina_home": "/usr/share/tomcat10", "java_home": "/usr/lib/jvm/default-java", "stop_timeout": "5s", "java_opts": "-Xmx256m"}},
		{name: "missing catalina_base", config: map[string]string{"catalina_base": ""}, wantErr: "catalina_base: missing"},
		{name: "catalina_base does not exist", config: map[string]string{"catalina_base": "/opt/x"}, wantErr: "catalina_base: /opt/x: directory does not exist"},
		{name: "catalina_base is a file", config: map[string]string{"catalina_base": file}, wantErr: "catalina_base: " + file + ": not a directory"},
		{name: "catalina_base relative", config: map[string]string{"catalina_base": "opt/x"}, wantErr: "catalina_base: opt/x: not an absolute path"},
		{name: "catalina_base without server.xml", config: map[string]string{"catalina_base": empty}, wantErr: "catalina_base: " + empty + ": conf/server.xml is missing"},
		{name: "catalina_base without webapps", config: map[string]string{"catalina_base": notBase}, wantErr: "catalina_base: " + notBase + ": conf/server.xml is missing"},
		{name: "catalina_home does not exist", config: map[string]string{"catalina_home": "/opt/tomcat99"}, wantErr: "catalina_home: /opt/tomcat99: directory does not exist"},
		{name: "catalina_home without catalina.sh", config: map[string]string{"catalina_home": empty}, wantErr: "catalina_home: " + empty + ": " + empty + "/bin/catalina.sh is missing"},
		{name: "java_home without java", config: map[string]string{"java_home": empty}, wantErr: "java_home: " + empty + ": " + empty + "/bin/java is missing"},
		{name: "stop_timeout not a duration", config: map[string]string{"stop_timeout": "soon"}, wantErr: `stop_timeout: "soon": want a positive Go duration`},
		{name: "stop_timeout negative", config: map[string]string{"stop_timeout": "-1s"}, wantErr: `stop_timeout: "-1s": want a positive Go duration`},
		{name: "port differs from server.xml", port: f.inst.Port + 1, wantErr: fmt.Sprintf("port: %d: conf/server.xml", f.inst.Port+1)},
	}
	d := tomcat.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := f.inst
			inst.Config = map[string]string{"catalina_base": f.base}
			for k, v := range tt.config {
				if v == "" {
					delete(inst.Config, k)
				} else {
					inst.Config[k] = v
				}
			}
			if tt.port != 0 {
				inst.Port = tt.port
			}
			err := d.Validate(context.Background(), inst)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
				t.Fatalf("validate: got %v, want an error starting %q", err, tt.wantErr)
			}
		})
	}
}

// TestLifecycle takes one instance through the deploy flow twice, as the
// agent would, and through the awkward cases in between.
func TestLifecycle(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/app")
	ctx := context.Background()
	v1, v2 := f.war(t, "v1", fixture.WAROptions{}), f.war(t, "v2", fixture.WAROptions{})
	war := filepath.Join(f.base, "webapps", "app.war")
	exploded := filepath.Join(f.base, "webapps", "app")

	if logs, err := d.Logs(ctx, f.inst, 10); err != nil || !strings.Contains(logs, "does not exist") {
		t.Fatalf("logs before the first start = %q, %v; want a note that catalina.out does not exist", logs, err)
	}
	f.wantStopped(t, d)

	if _, err := d.Install(ctx, f.inst, v1); err != nil {
		t.Fatal(err)
	}
	pid := mustStart(t, d, f)
	f.waitBody(t, d, "/app/version.txt", "v1")
	f.waitBody(t, d, "/app/health", "ok")
	if st, err := d.Status(ctx, f.inst); err != nil || !st.Running || st.PID != pid {
		t.Fatalf("status = %+v, %v; want running as pid %d", st, err, pid)
	}

	t.Run("start twice", func(t *testing.T) {
		res, err := d.Start(ctx, f.inst)
		if want := fmt.Sprintf("already running (pid %d)", pid); err != nil || res.Message != want {
			t.Fatalf("second start = %+v, %v; want %q", res, err, want)
		}
	})

	t.Run("logs", func(t *testing.T) {
		logs, err := d.Logs(ctx, f.inst, 5)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(logs, "\n"), "\n")
		if len(lines) != 5 {
			t.Fatalf("Logs(5) returned %d lines:\n%s", len(lines), logs)
		}
		all, err := d.Logs(ctx, f.inst, 10000)
		if err != nil || !strings.Contains(all, "Server startup in") || !strings.HasSuffix(all, logs) {
			t.Fatalf("Logs(10000) = %v; want catalina.out with %q ending in the last 5 lines:\n%s", err, "Server startup in", all)
		}
	})

	t.Run("stop", func(t *testing.T) {
		res, err := d.Stop(ctx, f.inst)
		if err != nil || res.Message != fmt.Sprintf("stopped (pid %d)", pid) {
			t.Fatalf("stop = %+v, %v", res, err)
		}
		f.wantStopped(t, d)
		if res, err := d.Stop(ctx, f.inst); err != nil || res.Message != "not running" {
			t.Fatalf("stop when stopped = %+v, %v; want not running", res, err)
		}
	})

	t.Run("install v2", func(t *testing.T) {
		if _, err := os.Stat(exploded); err != nil {
			t.Fatalf("Tomcat did not unpack v1: %v", err)
		}
		res, err := d.Install(ctx, f.inst, v2)
		if err != nil {
			t.Fatal(err)
		}
		if res.Output["war"] != war {
			t.Errorf("install output war = %q, want %q", res.Output["war"], war)
		}
		if _, err := os.Stat(exploded); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("exploded v1 %s: want it gone, got %v", exploded, err)
		}
		got, _ := os.ReadFile(war)
		want, _ := os.ReadFile(v2.Artifact)
		if !bytes.Equal(got, want) {
			t.Fatal("webapps/app.war is not the v2 WAR")
		}
		tmps, _ := filepath.Glob(filepath.Join(f.base, "webapps", ".baepo-*"))
		if len(tmps) > 0 {
			t.Fatalf("install left temporary files: %v", tmps)
		}
		pid = mustStart(t, d, f)
		f.waitBody(t, d, "/app/version.txt", "v2")
		if _, err := d.Stop(ctx, f.inst); err != nil {
			t.Fatal(err)
		}
		f.wantStopped(t, d)
	})

	t.Run("stale pid file", func(t *testing.T) {
		// A pid that surely names no Tomcat: a process that has exited.
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		dead := cmd.Process.Pid
		if err := os.WriteFile(f.pidFile(), []byte(strconv.Itoa(dead)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := d.Status(ctx, f.inst)
		if err != nil || st.Running || !strings.Contains(st.Message, "stale") {
			t.Fatalf("status with a stale pid file = %+v, %v", st, err)
		}
		pid = mustStart(t, d, f)
		if pid == dead {
			t.Fatalf("start reports the dead pid %d", dead)
		}
		f.waitBody(t, d, "/app/version.txt", "v2")
	})

	t.Run("install while running", func(t *testing.T) {
		// Tomcat's autodeploy notices the new WAR (it looks every 10s).
		res, err := d.Install(ctx, f.inst, v1)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Message, "running") {
			t.Errorf("install message %q does not say Tomcat is running", res.Message)
		}
		f.waitBody(t, d, "/app/version.txt", "v1")
		if st, err := d.Status(ctx, f.inst); err != nil || st.PID != pid {
			t.Fatalf("status = %+v, %v; want the same pid %d", st, err, pid)
		}
	})
}

// TestRootContextAndTinyStopTimeout serves a WAR at "/", finds the JVM when
// its pid file is lost, and stops a Tomcat that has no time to shut down: it
// is killed, and leaves no pid file.
func TestRootContextAndTinyStopTimeout(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/")
	f.inst.Config["stop_timeout"] = "1ms"
	ctx := context.Background()
	res, err := d.Install(ctx, f.inst, f.war(t, "root-1", fixture.WAROptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.base, "webapps", "ROOT.war"); res.Output["war"] != want {
		t.Fatalf("install put the WAR at %q, want %q", res.Output["war"], want)
	}
	pid := mustStart(t, d, f)
	f.waitBody(t, d, "/version.txt", "root-1")

	// A lost pid file (a wiped state directory, a Tomcat started by hand)
	// does not hide the running JVM.
	if err := os.Remove(f.pidFile()); err != nil {
		t.Fatal(err)
	}
	if st, err := d.Status(ctx, f.inst); err != nil || !st.Running || st.PID != pid {
		t.Fatalf("status without a pid file = %+v, %v; want running as pid %d", st, err, pid)
	}
	if res, err := d.Start(ctx, f.inst); err != nil || res.Output["pid"] != strconv.Itoa(pid) {
		t.Fatalf("start without a pid file = %+v, %v; want pid %d adopted", res, err, pid)
	}
	if data, err := os.ReadFile(f.pidFile()); err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(pid) {
		t.Fatalf("pid file after adoption = %q, %v; want %d", data, err, pid)
	}
	if err := os.Remove(f.pidFile()); err != nil {
		t.Fatal(err)
	}

	res, err = d.Stop(ctx, f.inst)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stop: %s", res.Message)
	f.wantStopped(t, d)
}

// TestStopKillsWhenSIGTERMIsIgnored runs a Tomcat that ignores SIGTERM (an
// ignored signal stays ignored across exec, and the JVM leaves it so): stop
// must SIGKILL it after stop_timeout.
func TestStopKillsWhenSIGTERMIsIgnored(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/app")
	home := filepath.Join(f.dir, "home")
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\ntrap '' TERM\nCATALINA_HOME=/usr/share/tomcat10 exec /usr/share/tomcat10/bin/catalina.sh \"$@\"\n"
	if err := os.WriteFile(filepath.Join(home, "bin", "catalina.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.inst.Config["catalina_home"] = home
	f.inst.Config["stop_timeout"] = "2s"
	pid := mustStart(t, d, f)
	if !ignoresSIGTERM(t, pid) {
		t.Fatalf("pid %d does not ignore SIGTERM: the test does not test what it says", pid)
	}
	res, err := d.Stop(context.Background(), f.inst)
	if err != nil {
		t.Fatal(err)
	}
	if res.Output["killed"] != "true" {
		t.Fatalf("stop = %+v; want it killed", res)
	}
	f.wantStopped(t, d)
}

func ignoresSIGTERM(t *testing.T, pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return mask&(1<<(syscall.SIGTERM-1)) != 0
		}
	}
	return false
}

// TestStartCancelled cancels Start at two points: before catalina.sh runs
// and while the new JVM is being watched. Neither may leave a JVM or a pid
// file behind.
func TestStartCancelled(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/app")
	for _, at := range []string{"running ", "is up"} {
		t.Run(strings.TrimSpace(at), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ctx = sdk.WithProgress(ctx, func(msg string) {
				if strings.Contains(msg, at) {
					cancel()
				}
			})
			_, err := d.Start(ctx, f.inst)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("start = %v; want it cancelled", err)
			}
			f.wantStopped(t, d)
		})
	}
}

// TestStartFailsFast starts a JVM that cannot start: the error carries
// catalina.out's reason, and no pid file is left.
func TestStartFailsFast(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/app")
	f.inst.Config["java_opts"] = "-XX:+NoSuchBaepoOption"
	_, err := d.Start(context.Background(), f.inst)
	if err == nil || !strings.Contains(err.Error(), "NoSuchBaepoOption") || !strings.HasPrefix(err.Error(), "start instance A/a1: ") {
		t.Fatalf("start = %v; want an error quoting catalina.out", err)
	}
	t.Logf("start: %v", err)
	f.wantStopped(t, d)
}

func TestInstallNames(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/")
	rel := f.war(t, "n1", fixture.WAROptions{})
	tests := []struct {
		context string
		want    string // file in webapps; "" for an error
	}{
		{"/", "ROOT.war"},
		{"/app", "app.war"},
		{"/app/", "app.war"},
		{"/shop/cart", "shop#cart.war"},
		{"/../etc", ""},
		{"/a/../../etc", ""},
		{"/a..b", ""},
		{"app", ""},
		{"/a//b", ""},
		{"/a#b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.context, func(t *testing.T) {
			inst := f.inst
			inst.Context = tt.context
			res, err := d.Install(context.Background(), inst, rel)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("install at %q = %+v; want an error", tt.context, res)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(f.base, "webapps", tt.want); res.Output["war"] != want {
				t.Fatalf("war = %q, want %q", res.Output["war"], want)
			}
			if _, err := os.Stat(res.Output["war"]); err != nil {
				t.Fatal(err)
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join(f.base, "webapps"))
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".war") {
			t.Errorf("webapps holds %s", e.Name())
		}
	}
	if _, err := d.Install(context.Background(), f.inst, sdk.Release{ID: "x", Artifact: filepath.Join(f.dir, "missing.war")}); err == nil {
		t.Error("install of a missing artifact succeeded")
	}
}

func TestLogsTail(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/")
	out := filepath.Join(f.base, "logs", "catalina.out")
	var big strings.Builder
	for i := 1; i <= 30000; i++ {
		fmt.Fprintf(&big, "line %d %s\n", i, strings.Repeat("x", i%50))
	}
	tests := []struct {
		name    string
		content string
		lines   int
		want    string
	}{
		{"last two", "a\nb\nc\n", 2, "b\nc\n"},
		{"no final newline", "a\nb\nc", 2, "b\nc\n"},
		{"more than there are", "a\nb\n", 10, "a\nb\n"},
		{"empty", "", 5, ""},
		{"zero means 100", big.String(), 0, lastLines(big.String(), 100)},
		{"across blocks", big.String(), 5000, lastLines(big.String(), 5000)},
		{"capped at 10000", big.String(), 20000, lastLines(big.String(), 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(out, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := d.Logs(context.Background(), f.inst, tt.lines)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Logs(%d): got %d bytes starting %.40q, want %d bytes starting %.40q", tt.lines, len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "") + "\n"
}

func TestStep(t *testing.T) {
	f := newFixture(t, "/")
	_, err := tomcat.New().Step(context.Background(), f.inst, "warmup", nil)
	if !errors.Is(err, sdk.ErrUnknownStep) || !strings.Contains(err.Error(), "retire") {
		t.Fatalf("step = %v; want ErrUnknownStep naming retire", err)
	}
}

// BenchmarkStatus measures Status of a stopped instance: the agent calls it
// for every instance on every `baepo status`.
func BenchmarkStatus(b *testing.B) {
	d := tomcat.New()
	f := newFixture(b, "/")
	ctx := context.Background()
	for b.Loop() {
		if _, err := d.Status(ctx, f.inst); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCleanLeftovers: the temp copies that crashed installs left in
// webapps/ go; nothing else does, and no symlink is followed. A failed
// install leaves none.
func TestCleanLeftovers(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/app")
	webapps := filepath.Join(f.base, "webapps")
	outside := filepath.Join(f.dir, "precious.txt")
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(outside, "keep me")
	write(filepath.Join(webapps, ".baepo-1234.tmp"), "half a WAR")
	write(filepath.Join(webapps, ".baepo-5678.tmp"), "")
	write(filepath.Join(webapps, "app.war"), "the WAR in place")
	write(filepath.Join(webapps, ".baepo-notes.txt"), "not ours")
	write(filepath.Join(webapps, ".baepo-dir.tmp", "inside"), "a directory is not ours")
	if err := os.Symlink(outside, filepath.Join(webapps, ".baepo-link.tmp")); err != nil {
		t.Fatal(err)
	}

	removed, err := d.CleanLeftovers(context.Background(), f.inst)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(webapps, ".baepo-1234.tmp"), filepath.Join(webapps, ".baepo-5678.tmp")}; fmt.Sprint(removed) != fmt.Sprint(want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	var names []string
	entries, _ := os.ReadDir(webapps)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{".baepo-dir.tmp", ".baepo-link.tmp", ".baepo-notes.txt", "app.war"}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("webapps/ holds %v, want %v", names, want)
	}
	if data, err := os.ReadFile(outside); err != nil || string(data) != "keep me" {
		t.Errorf("the symlink's target: %q, %v", data, err)
	}

	// A failed install, here a cancelled one, leaves no temp copy.
	for _, name := range []string{".baepo-dir.tmp", ".baepo-link.tmp"} {
		os.RemoveAll(filepath.Join(webapps, name))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Install(ctx, f.inst, f.war(t, "c1", fixture.WAROptions{})); err == nil {
		t.Fatal("a cancelled install succeeded")
	}
	if tmps, _ := filepath.Glob(filepath.Join(webapps, ".baepo-*.tmp")); len(tmps) > 0 {
		t.Errorf("a failed install left %v", tmps)
	}
}

// TestStartPortTaken starts an instance whose HTTP port another process
// listens on: the start fails with the bind error, naming the port and the
// holder (this test), and leaves no JVM behind. Tomcat itself would log
// the error and run on without its connector.
func TestStartPortTaken(t *testing.T) {
	d := tomcat.New()
	f := newFixture(t, "/app")
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(f.inst.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = d.Start(t.Context(), f.inst)
	for _, want := range []string{
		fmt.Sprintf("start instance A/a1: HTTP port %d is taken (listen tcp ", f.inst.Port),
		fmt.Sprintf(":%d: bind: address already in use, held by pid %d (", f.inst.Port, os.Getpid()),
		"): stop that process, or give the instance a free port in conf/server.xml and agent.yaml",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("start with the port taken = %v; want it to say %q", err, want)
		}
	}
	f.wantStopped(t, d)

	// Once the port is free, the same instance starts.
	l.Close()
	mustStart(t, d, f)
}
