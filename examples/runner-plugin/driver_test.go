package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
	"github.com/baepo/baepo/sdk/sdktest"
)

// The tests run real processes: sleep, ls and python3 (Python's
// http.server stands in for an app server).

// newInstance returns a stopped instance that runs command, with a
// directory, a state directory and a free port of its own. What the test
// starts on it is stopped when the test ends, whatever happened.
func newInstance(t *testing.T, command string) sdk.Instance {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	inst := sdk.Instance{
		Service:  "shop",
		Name:     "a1",
		Port:     port,
		Context:  "/",
		Config:   map[string]string{"dir": t.TempDir(), "command": command},
		StateDir: t.TempDir(),
	}
	t.Cleanup(func() { _, _ = New().Stop(context.Background(), inst) })
	return inst
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, New(), newInstance(t, "sleep 600"))
}

func TestValidate(t *testing.T) {
	drv := sdktest.Run(t, New())
	for _, tc := range []struct{ key, val, want string }{
		{"dir", "relative", `dir: "relative": want an absolute path`},
		{"dir", "/no/such/dir", "dir: /no/such/dir: directory does not exist"},
		{"command", " ", "command: empty"},
		{"command", "no-such-program --port={port}", `command: exec: "no-such-program": executable file not found`},
		{"stop_timeout", "soon", `stop_timeout: "soon": want a positive Go duration`},
	} {
		inst := newInstance(t, "sleep 600")
		inst.Config[tc.key] = tc.val
		err := drv.Validate(t.Context(), inst)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Validate with %s %q: %v, want an error that begins %q", tc.key, tc.val, err, tc.want)
		}
	}
}

// TestServe installs a file, starts a web server that serves it, warms it
// up, reads its log and stops it.
func TestServe(t *testing.T) {
	inst := newInstance(t, "python3 -m http.server {port} --bind 127.0.0.1")
	drv := sdktest.Run(t, New())
	ctx := t.Context()

	artifact := filepath.Join(t.TempDir(), "shop-1.jar")
	if err := os.WriteFile(artifact, []byte("release 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var progress []string
	pctx := sdk.WithProgress(ctx, func(msg string) { progress = append(progress, msg) })
	if _, err := drv.Install(pctx, inst, sdk.Release{ID: "r1", Artifact: artifact, Name: "shop-1.jar"}); err != nil {
		t.Fatal(err)
	}
	if want := "copying " + artifact; len(progress) != 1 || !strings.HasPrefix(progress[0], want) {
		t.Errorf("Install's progress: %q, want one line that begins %q", progress, want)
	}

	res, err := drv.Start(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(res.Output["pid"])
	if st, err := drv.Status(ctx, inst); err != nil || !st.Running || st.PID != pid {
		t.Errorf("Status: %+v, %v; want running as pid %d", st, err, pid)
	}

	if body := serving(t, inst.Port, "/app.jar"); body != "release 1\n" {
		t.Errorf("GET /app.jar: %q, want the installed artifact", body)
	}
	res, err = drv.Step(ctx, inst, "warm-up", map[string]string{"count": "3"})
	if err != nil || res.Output["ok"] != "3" || res.Output["failed"] != "0" {
		t.Errorf("warm-up: %+v, %v; want 3 ok", res, err)
	}
	if _, err := drv.Step(ctx, inst, "warm-up", map[string]string{"count": "many"}); err == nil || !strings.HasPrefix(err.Error(), "count: ") {
		t.Errorf("warm-up with count many: %v, want an error that begins with count", err)
	}
	if logs, err := drv.Logs(ctx, inst, 10); err != nil || !strings.Contains(logs, `"GET /app.jar HTTP/1.1" 200`) {
		t.Errorf("Logs: %q, %v; want the server's line for GET /app.jar", logs, err)
	}

	if _, err := drv.Stop(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if proc.Alive(pid) {
		t.Errorf("pid %d runs after Stop", pid)
	}
	if st, err := drv.Status(ctx, inst); err != nil || st.Running {
		t.Errorf("Status after Stop: %+v, %v; want not running", st, err)
	}
}

// TestStopKills stops a server that ignores SIGTERM.
func TestStopKills(t *testing.T) {
	inst := newInstance(t, "python3 stubborn.py")
	inst.Config["stop_timeout"] = "100ms"
	script := "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ignoring SIGTERM', flush=True)\ntime.sleep(600)\n"
	if err := os.WriteFile(filepath.Join(inst.Config["dir"], "stubborn.py"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	drv := sdktest.Run(t, New())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	res, err := drv.Start(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(res.Output["pid"])
	for { // until the script ignores SIGTERM
		logs, err := drv.Logs(ctx, inst, 10)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs, "ignoring SIGTERM") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err = drv.Stop(ctx, inst)
	if err != nil || res.Output["killed"] != "true" {
		t.Errorf("Stop: %+v, %v; want killed", res, err)
	}
	if proc.Alive(pid) {
		t.Errorf("pid %d runs after Stop", pid)
	}
}

// TestStartFails starts a command that exits at once: Start fails with
// the end of its log and leaves no pid file.
func TestStartFails(t *testing.T) {
	inst := newInstance(t, "ls /no/such/file")
	drv := sdktest.Run(t, New())
	_, err := drv.Start(t.Context(), inst)
	if err == nil || !strings.HasPrefix(err.Error(), "start instance shop/a1: ") || !strings.Contains(err.Error(), "/no/such/file") {
		t.Errorf("Start: %v, want an error that ends with ls's message", err)
	}
	if _, err := os.Stat(filepath.Join(inst.StateDir, "runner.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file after a failed Start: %v, want none", err)
	}
}

// serving returns the body of GET path from the server on port, once it
// serves: Start returns when the process runs, not when it listens.
func serving(t *testing.T, port int, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
			}
			return string(body)
		}
		if ctx.Err() != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
