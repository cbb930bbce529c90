package jar

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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

// jars holds the JARs the tests build, one per version, in a directory
// that outlives each test.
var jars struct {
	sync.Mutex
	dir       string
	byVersion map[string]string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "baepo-jar-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	jars.dir, jars.byVersion = dir, map[string]string{}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildJAR returns the test application's JAR of version, building it the
// first time.
func buildJAR(t *testing.T, version string) string {
	t.Helper()
	jars.Lock()
	defer jars.Unlock()
	if p, ok := jars.byVersion[version]; ok {
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := fixture.BuildJAR(ctx, jars.dir, version)
	if err != nil {
		t.Fatal(err)
	}
	jars.byVersion[version] = p
	return p
}

// newInstance returns an instance with a directory, a state directory and
// a free port of its own, whose JVMs are killed when the test ends,
// whatever happened. config adds to and replaces the defaults.
func newInstance(t *testing.T, config map[string]string) sdk.Instance {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "app")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{
		keyDir: dir,
		// A small heap and the client compiler start the JVM fast.
		keyJVMOpts:     "-Xmx64m   -XX:TieredStopAtLevel=1",
		keyStopTimeout: "30s",
	}
	for k, v := range config {
		cfg[k] = v
	}
	t.Cleanup(func() { killJVMs(t, filepath.Join(dir, "app.jar")) })
	return sdk.Instance{
		Service:  "z",
		Name:     strings.ToLower(regexp.MustCompile(`\W+`).ReplaceAllString(t.Name(), "-")),
		Port:     port,
		Context:  "/",
		Config:   cfg,
		StateDir: filepath.Join(root, "state"),
	}
}

// killJVMs SIGKILLs every process whose command line names jar, and waits
// for them to go.
func killJVMs(t *testing.T, jar string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(data, []byte("\x00"+jar+"\x00")) || !proc.Alive(pid) {
			continue
		}
		t.Logf("cleanup: killing JVM pid %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for end := time.Now().Add(10 * time.Second); proc.Alive(pid) && time.Now().Before(end); {
			time.Sleep(proc.PollInterval)
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// get fetches http://127.0.0.1:port/path and returns the status and body.
func get(ctx context.Context, port int, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return fixture.Get(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
}

// waitServes polls path on the instance's port until it answers 200 with
// want, or ctx ends.
func waitServes(t *testing.T, ctx context.Context, inst sdk.Instance, path, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last string
	for {
		status, body, err := get(ctx, inst.Port, path)
		if err == nil && status == http.StatusOK && body == want {
			return
		}
		last = fmt.Sprintf("status %d, body %q, error %v", status, body, err)
		select {
		case <-ctx.Done():
			logs, _ := os.ReadFile(filepath.Join(inst.Config[keyDir], "logs", "app.log"))
			t.Fatalf("GET %s never answered %q; last: %s; app.log:\n%s", path, want, last, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func release(id, artifact string) sdk.Release {
	return sdk.Release{ID: id, Artifact: artifact, Name: filepath.Base(artifact)}
}

func pidFileOf(inst sdk.Instance) string { return filepath.Join(inst.StateDir, "app.pid") }

func pidOf(t *testing.T, res sdk.Result) int {
	t.Helper()
	pid, err := strconv.Atoi(res.Output["pid"])
	if err != nil || pid <= 0 {
		t.Fatalf("result %q has no pid: %v", res.Message, res.Output)
	}
	return pid
}

// session returns the session id of pid, from /proc/<pid>/stat.
func session(t *testing.T, pid int) int {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid pgrp session ...
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	sid, err := strconv.Atoi(fields[3])
	if err != nil {
		t.Fatalf("session of pid %d: %v", pid, err)
	}
	return sid
}

func assertGone(t *testing.T, inst sdk.Instance, pid int) {
	t.Helper()
	if proc.Alive(pid) {
		t.Errorf("pid %d still runs", pid)
	}
	if _, err := os.Stat(pidFileOf(inst)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file %s: %v, want it gone", pidFileOf(inst), err)
	}
	if _, _, err := get(context.Background(), inst.Port, "/health"); err == nil {
		t.Errorf("port %d still answers", inst.Port)
	}
}

func TestDescribe(t *testing.T) {
	d := sdktest.Run(t, New())
	desc, err := d.Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if desc.Name != "jar" || desc.Version != Version {
		t.Errorf("Describe = %s %s, want jar %s", desc.Name, desc.Version, Version)
	}
	var keys []string
	for _, f := range desc.Config {
		keys = append(keys, f.Name)
		if f.Doc == "" {
			t.Errorf("config key %s has no doc", f.Name)
		}
		if f.Required != (f.Name == keyDir) {
			t.Errorf("config key %s: required = %v", f.Name, f.Required)
		}
	}
	if got, want := strings.Join(keys, ","), "dir,java,jvm_opts,port_arg,port_env,args,stop_timeout"; got != want {
		t.Errorf("config keys %s, want %s", got, want)
	}
	if len(desc.Steps) != 1 || desc.Steps[0].Name != "thread-dump" || desc.Steps[0].Doc == "" {
		t.Errorf("steps = %+v, want thread-dump with a doc", desc.Steps)
	}
}

func TestValidate(t *testing.T) {
	d := sdktest.Run(t, New())
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		port    int
		config  map[string]string
		wantErr string // "" for none; else the error's start
	}{
		{"minimal", 8080, map[string]string{"dir": dir}, ""},
		{"everything", 8080, map[string]string{"dir": dir, "java": "java", "jvm_opts": "-Xmx1g -Da=b", "port_arg": "--port {port}", "port_env": "PORT", "args": "--x --y", "stop_timeout": "1m30s"}, ""},
		{"no port and no port arg", 0, map[string]string{"dir": dir, "port_arg": ""}, ""},
		{"dir missing", 8080, map[string]string{}, "dir: missing"},
		{"dir relative", 8080, map[string]string{"dir": "app"}, "dir: app: not an absolute path"},
		{"dir does not exist", 8080, map[string]string{"dir": filepath.Join(dir, "nope")}, "dir: "},
		{"dir is a file", 8080, map[string]string{"dir": file}, "dir: " + file + ": not a directory"},
		{"java not found", 8080, map[string]string{"dir": dir, "java": "/nonexistent/bin/java"}, "java: "},
		{"java empty", 8080, map[string]string{"dir": dir, "java": " "}, "java: empty"},
		{"port_arg needs a port", 0, map[string]string{"dir": dir}, "port: "},
		{"port_env needs a port", 0, map[string]string{"dir": dir, "port_arg": "", "port_env": "PORT"}, "port: "},
		{"port_env not a name", 8080, map[string]string{"dir": dir, "port_env": "MY-PORT"}, "port_env: "},
		{"stop_timeout not a duration", 8080, map[string]string{"dir": dir, "stop_timeout": "30"}, "stop_timeout: "},
		{"stop_timeout zero", 8080, map[string]string{"dir": dir, "stop_timeout": "0s"}, "stop_timeout: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Validate(t.Context(), sdk.Instance{Service: "z", Name: "z1", Port: tt.port, Config: tt.config})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Validate: no error, want %q…", tt.wantErr)
			case tt.wantErr != "" && !strings.HasPrefix(err.Error(), tt.wantErr):
				t.Errorf("Validate: %v, want %q…", err, tt.wantErr)
			}
		})
	}
}

func TestArgv(t *testing.T) {
	c, err := parseConfig(sdk.Instance{Port: 9001, Config: map[string]string{
		"dir": "/", "jvm_opts": " -Xmx1g  -Da=b ", "port_arg": "--port {port} --admin={port}1", "args": "--x  --y",
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.argv(), " ")
	if want := "-Xmx1g -Da=b -jar /app.jar --port 9001 --admin=90011 --x --y"; got != want {
		t.Errorf("argv = %q, want %q", got, want)
	}
}

func TestInstallRefusesWhatJavaCannotRun(t *testing.T) {
	d := sdktest.Run(t, New())
	src := t.TempDir()
	write := func(name string, files map[string]string) string {
		p := filepath.Join(src, name)
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for n, body := range files {
			w, err := zw.Create(n)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, body)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := filepath.Join(src, "notes.jar")
	if err := os.WriteFile(text, []byte("not a zip\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, artifact, wantErr string
	}{
		{"text file", text, "not a JAR (a zip file)"},
		{"zip without manifest", write("plain.zip", map[string]string{"a.txt": "a"}), "has no META-INF/MANIFEST.MF"},
		{"manifest without Main-Class", write("lib.jar", map[string]string{"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nCreated-By: test\r\n\r\nName: x\r\nMain-Class: in.a.Section\r\n"}), "names no Main-Class"},
		{"missing artifact", filepath.Join(src, "nope.jar"), "open artifact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := newInstance(t, nil)
			_, err := d.Install(t.Context(), inst, release("r1", tt.artifact))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Install: %v, want an error with %q", err, tt.wantErr)
			}
			entries, _ := os.ReadDir(inst.Config[keyDir])
			for _, e := range entries {
				t.Errorf("Install left %s in dir", e.Name())
			}
		})
	}

	t.Run("continuation lines", func(t *testing.T) {
		main, err := manifestMainClass(strings.NewReader("Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loa\r\n der.JarLauncher\r\n\r\n"))
		if err != nil || main != "org.springframework.boot.loader.JarLauncher" {
			t.Errorf("manifestMainClass = %q, %v", main, err)
		}
	})
}

func TestStartWithoutJAR(t *testing.T) {
	d := sdktest.Run(t, New())
	inst := newInstance(t, nil)
	_, err := d.Start(t.Context(), inst)
	if err == nil || !strings.Contains(err.Error(), "install a release first") {
		t.Fatalf("Start: %v, want an error saying to install a release first", err)
	}
}

// TestLifecycle runs one instance through what a deploy does: install,
// start, serve, thread dump, stop, install the next release, start, logs.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	var progress []string
	ctx = sdk.WithProgress(ctx, func(msg string) { progress = append(progress, msg) })
	d := sdktest.Run(t, New())
	inst := newInstance(t, nil)
	v1, v2 := buildJAR(t, "v1"), buildJAR(t, "v2")

	if err := d.Validate(ctx, inst); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	res, err := d.Install(ctx, inst, release("r1", v1))
	if err != nil {
		t.Fatalf("Install v1: %v", err)
	}
	if res.Output["main_class"] != fixture.MainClass {
		t.Errorf("Install v1: main_class %q, want %q", res.Output["main_class"], fixture.MainClass)
	}

	res, err = d.Start(ctx, inst)
	if err != nil {
		t.Fatalf("Start v1: %v", err)
	}
	pid := pidOf(t, res)
	if res.Message != fmt.Sprintf("started (pid %d)", pid) {
		t.Errorf("Start v1: %q", res.Message)
	}
	if len(progress) == 0 {
		t.Errorf("Start v1 reported no progress")
	}
	if sid := session(t, pid); sid != pid {
		t.Errorf("pid %d runs in session %d, want a session of its own", pid, sid)
	}
	if data, err := os.ReadFile(pidFileOf(inst)); err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(pid) {
		t.Errorf("pid file: %q, %v; want %d", data, err, pid)
	}
	waitServes(t, ctx, inst, "/version", "v1\n")
	waitServes(t, ctx, inst, "/health", "ok\n")

	res, err = d.Start(ctx, inst)
	if err != nil || res.Message != fmt.Sprintf("already running (pid %d)", pid) {
		t.Errorf("Start of a running instance: %q, %v", res.Message, err)
	}
	st, err := d.Status(ctx, inst)
	if err != nil || !st.Running || st.PID != pid {
		t.Errorf("Status: %+v, %v; want running pid %d", st, err, pid)
	}

	res, err = d.Step(ctx, inst, "thread-dump", nil)
	if err != nil {
		t.Fatalf("thread-dump: %v", err)
	}
	if !regexp.MustCompile(fmt.Sprintf(`^thread dump of pid %d \(\d+ threads\)$`, pid)).MatchString(res.Message) {
		t.Errorf("thread-dump: message %q", res.Message)
	}
	dump := res.Output["dump"]
	for _, want := range []string{"Full thread dump ", "\n\"main\" #1 ", "\"HTTP-Dispatcher\"", "baepo.testapp.Main.main", "\nJNI global refs: ", "\nHeap\n"} {
		if !strings.Contains(dump, want) {
			t.Errorf("thread dump lacks %q:\n%s", want, dump)
		}
	}
	if n, _ := strconv.Atoi(res.Output["threads"]); n < 2 {
		t.Errorf("thread-dump: threads = %q", res.Output["threads"])
	}
	if strings.Contains(dump, "testapp v1 listening") {
		t.Errorf("thread dump holds the application's output from before it")
	}

	res, err = d.Stop(ctx, inst)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if res.Message != fmt.Sprintf("stopped (pid %d)", pid) || res.Output["killed"] != "false" {
		t.Errorf("Stop: %q %v", res.Message, res.Output)
	}
	assertGone(t, inst, pid)
	if st, err := d.Status(ctx, inst); err != nil || st.Running {
		t.Errorf("Status after Stop: %+v, %v", st, err)
	}
	if res, err := d.Stop(ctx, inst); err != nil || res.Message != "not running" {
		t.Errorf("Stop of a stopped instance: %q, %v", res.Message, err)
	}

	if _, err := d.Install(ctx, inst, release("r2", v2)); err != nil {
		t.Fatalf("Install v2: %v", err)
	}
	// v2 runs with -Xrs: its JVM leaves SIGQUIT (and SIGTERM) to the OS.
	inst.Config[keyJVMOpts] += " -Xrs"
	res, err = d.Start(ctx, inst)
	if err != nil {
		t.Fatalf("Start v2: %v", err)
	}
	pid = pidOf(t, res)
	waitServes(t, ctx, inst, "/version", "v2\n")

	logs, err := d.Logs(ctx, inst, 3)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if lines := strings.Split(strings.TrimSuffix(logs, "\n"), "\n"); len(lines) != 3 {
		t.Errorf("Logs(3) returned %d lines:\n%s", len(lines), logs)
	}
	logs, err = d.Logs(ctx, inst, 1000)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	for _, want := range []string{"testapp v1 listening on", "testapp: stopped", "testapp v2 listening on"} {
		if !strings.Contains(logs, want) {
			t.Errorf("Logs lack %q:\n%s", want, logs)
		}
	}

	_, err = d.Step(ctx, inst, "thread-dump", nil)
	if err == nil || !strings.Contains(err.Error(), "-Xrs") {
		t.Errorf("thread-dump of a JVM run with -Xrs: %v, want a refusal naming -Xrs", err)
	}
	if !proc.Alive(pid) {
		t.Fatalf("pid %d died of thread-dump", pid)
	}

	_, err = d.Step(ctx, inst, "heap-dump", nil)
	if !errors.Is(err, sdk.ErrUnknownStep) || !strings.Contains(err.Error(), "thread-dump") {
		t.Errorf("unknown step: %v, want an error wrapping sdk.ErrUnknownStep that lists thread-dump", err)
	}

	if _, err := d.Stop(ctx, inst); err != nil {
		t.Fatalf("Stop v2: %v", err)
	}
	assertGone(t, inst, pid)
	if _, err := d.Step(ctx, inst, "thread-dump", nil); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("thread-dump of a stopped instance: %v, want not running", err)
	}
}

// TestStopKillsWhenSIGTERMIsIgnored runs an application whose shutdown hook
// never returns, with the port in an environment variable instead of an
// argument.
func TestStopKillsWhenSIGTERMIsIgnored(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := sdktest.Run(t, New())
	inst := newInstance(t, map[string]string{
		keyPortArg:     "",
		keyPortEnv:     "PORT",
		keyArgs:        fixture.HangOnTermArg,
		keyStopTimeout: "500ms",
	})
	if _, err := d.Install(ctx, inst, release("r1", buildJAR(t, "v1"))); err != nil {
		t.Fatal(err)
	}
	res, err := d.Start(ctx, inst)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := pidOf(t, res)
	waitServes(t, ctx, inst, "/health", "ok\n")

	res, err = d.Stop(ctx, inst)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if res.Output["killed"] != "true" || !strings.HasPrefix(res.Message, fmt.Sprintf("killed pid %d", pid)) {
		t.Errorf("Stop: %q %v, want it killed", res.Message, res.Output)
	}
	assertGone(t, inst, pid)
	logs, _ := d.Logs(ctx, inst, 10)
	if !strings.Contains(logs, "hanging") {
		t.Errorf("the application's shutdown hook did not run:\n%s", logs)
	}
}

func TestStartFailsFast(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := sdktest.Run(t, New())
	inst := newInstance(t, map[string]string{keyJVMOpts: "-XX:+BaepoNoSuchOption"})
	if _, err := d.Install(ctx, inst, release("r1", buildJAR(t, "v1"))); err != nil {
		t.Fatal(err)
	}
	_, err := d.Start(ctx, inst)
	if err == nil {
		t.Fatal("Start: no error, want one")
	}
	for _, want := range []string{"exited right after start", "BaepoNoSuchOption"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start: %v, want it to say %q", err, want)
		}
	}
	if _, err := os.Stat(pidFileOf(inst)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after a failed start: %v", err)
	}
	if st, err := d.Status(ctx, inst); err != nil || st.Running {
		t.Errorf("Status: %+v, %v", st, err)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	inst := newInstance(t, nil)
	if _, err := New().Install(testContext(t), inst, release("r1", buildJAR(t, "v1"))); err != nil {
		t.Fatal(err)
	}
	sdktest.Conformance(t, New(), inst)
}

// TestParseDump reads real HotSpot output (OpenJDK 17, a deadlocked
// application) as it grows in app.log.
func TestParseDump(t *testing.T) {
	data, err := os.ReadFile("testdata/deadlock-dump-17.log")
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	cut := func(s string) []byte { return []byte(log[:strings.Index(log, s)]) }

	if d := parseDump(cut("Full thread dump")); d.started {
		t.Errorf("started before the first line: %+v", d)
	}
	if d := parseDump(cut("JNI global refs")); !d.started || d.ended {
		t.Errorf("before the end marker: started %v, ended %v", d.started, d.ended)
	}
	d := parseDump(cut("\nFound one Java-level deadlock"))
	if !d.ended || d.heap || d.deadlocks != 0 || !strings.HasSuffix(d.text, "JNI global refs: 4, weak refs: 0\n") {
		t.Errorf("after the end marker: %+v", d)
	}
	d = parseDump(cut("Found 1 deadlock."))
	if !d.ended || d.deadlocks != 0 || !strings.HasSuffix(d.text, "weak refs: 0\n") {
		t.Errorf("in the deadlock report: %+v", d)
	}

	d = parseDump(data)
	if !d.ended || !d.heap || d.threads != 13 || d.deadlocks != 1 {
		t.Errorf("whole: ended %v, heap %v, threads %d, deadlocks %d", d.ended, d.heap, d.threads, d.deadlocks)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\nFull thread dump OpenJDK`).MatchString(d.text) {
		t.Errorf("dump does not start at its timestamp:\n%.200s", d.text)
	}
	if !strings.HasSuffix(d.text, "  class space    used 4K, committed 128K, reserved 1048576K\n") {
		t.Errorf("dump does not end with the heap summary:\n…%s", d.text[max(0, len(d.text)-300):])
	}
	if strings.Contains(d.text, "application") || strings.Contains(d.text, "testapp") {
		t.Errorf("dump holds the application's own lines")
	}
}
