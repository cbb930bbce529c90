package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/internal/fixture"
)

// TestHealthWatchesProcess: a health check of an instance that does not run
// fails at once, and one whose process goes away while the check waits
// ends then, not at its timeout.
func TestHealthWatchesProcess(t *testing.T) {
	f := newCore(t)
	_, err := f.step("health", map[string]any{"timeout": "10m"})
	if err == nil || err.Error() != "health A/a1: the instance does not run (not running): start it first" {
		t.Fatalf("health of a stopped instance = %v", err)
	}

	if _, err := f.step("start", nil); err != nil {
		t.Fatal(err)
	}
	f.app.set(http.StatusServiceUnavailable)
	_, err = f.agent.Step(context.Background(), "A", "a1", "health", api.StepRequest{Args: map[string]any{"timeout": "30s"}, Run: "run-1"}, func(msg string) {
		if strings.HasPrefix(msg, "waiting up to 30s for ") {
			f.driver.mu.Lock()
			f.driver.running = false
			f.driver.mu.Unlock()
		}
	})
	if err == nil || !strings.HasPrefix(err.Error(), "health A/a1: process exited during health check after ") ||
		!strings.Contains(err.Error(), ": not running (last probe: HTTP 503)") {
		t.Fatalf("health of an instance that stopped during the check = %v", err)
	}
}

// TestTomcatHealth runs the agent over a real Tomcat: a start whose HTTP
// port another process holds fails with the bind error, and a JVM killed
// while the health check waits ends the check with that news. (Before,
// the check waited out its whole timeout.)
func TestTomcatHealth(t *testing.T) {
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
	os.WriteFile(filepath.Join(dir, "token"), []byte("test-token-0123456789"), 0o600)
	p := filepath.Join(dir, "agent.yaml")
	// webapps/ is empty: /app/health answers 404 for as long as Tomcat runs.
	os.WriteFile(p, fmt.Appendf(nil, `token_file: token
data_dir: data
services:
  A:
    driver: tomcat
    context: /app
    health: { timeout: 60s, interval: 50ms }
    instances:
      a1: { catalina_base: %s, port: %d, stop_timeout: 10s }
`, base, httpPort), 0o600)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), NewBuiltin(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := a.Step(ctx, "A", "a1", "stop", api.StepRequest{Run: "run-1"}, nil); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		a.Close()
	})
	step := func(name string, progress func(string)) (api.StepResult, error) {
		return a.Step(t.Context(), "A", "a1", name, api.StepRequest{Run: "run-1"}, progress)
	}

	t.Run("port taken", func(t *testing.T) {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, err = step("start", nil)
		want := fmt.Sprintf("HTTP port %d is taken (listen tcp 127.0.0.1:%d: bind: address already in use, held by pid %d (", httpPort, httpPort, os.Getpid())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("start with the port taken = %v; want it to say %q", err, want)
		}
		if st, _ := a.Status(t.Context(), "A", "a1"); st.Output["running"] != false {
			t.Errorf("after a start that failed, status = %v", st.Output)
		}
	})

	t.Run("killed during health", func(t *testing.T) {
		res, err := step("start", nil)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(fmt.Sprint(res.Output["pid"]))
		if err != nil {
			t.Fatalf("start: no pid in %+v", res)
		}
		_, err = step("health", func(msg string) {
			if strings.HasPrefix(msg, "waiting up to 1m0s for ") {
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Errorf("kill %d: %v", pid, err)
				}
			}
		})
		if err == nil || !strings.HasPrefix(err.Error(), "health A/a1: process exited during health check after ") ||
			!strings.Contains(err.Error(), fmt.Sprintf(": not running (stale pid file names pid %d) (last probe: ", pid)) {
			t.Fatalf("health of a Tomcat killed during the check = %v", err)
		}
		t.Logf("health: %v", err)
		if st, _ := a.Status(t.Context(), "A", "a1"); st.Output["running"] != false {
			t.Errorf("after the JVM was killed, status = %v", st.Output)
		}
	})
}
