package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
)

// floodCap is the test agent's http.max_connections.
const floodCap = 64

// TestConnectionFlood keeps 200 idle keep-alive connections and 50
// slowloris connections (headers never finished) open against a real agent
// whose http.max_connections is 64, reopening each as the agent closes it,
// and deploys to a real Tomcat through the flood. The agent never holds
// more sockets than its cap, closes every idle and half-written connection
// after its timeouts, and the deploy succeeds. Before, the flood's
// connections stayed open for good and each held a file descriptor.
func TestConnectionFlood(t *testing.T) {
	f := newFleet(t)
	httpPort, shutPort := freePort(t), freePort(t)
	base := filepath.Join(f.dir, "a1")
	if err := fixture.CreateInstance(context.Background(), base, httpPort, shutPort); err != nil {
		t.Fatal(err)
	}
	f.write("token", token+"\n")
	f.write("agent.yaml", fmt.Sprintf(`listen: 127.0.0.1:%d
token_file: token
data_dir: data
http: { max_connections: %d, idle_timeout: 2s, read_header_timeout: 3s, read_timeout: 3s, write_timeout: 3s }
services:
  A:
    driver: tomcat
    context: /app
    health: { path: /app/health, timeout: 90s, interval: 50ms }
    instances:
      a1: { catalina_base: %s, port: %d }
`, f.agentPort, floodCap, base, httpPort))
	f.inventory = f.write("inventory.yaml", fmt.Sprintf("servers:\n  local: { agent: %q, token_file: token }\n", f.agentURL))
	f.startAgent()
	t.Cleanup(f.cleanup)
	agentPID := f.agent.Process.Pid
	war := (&tomcatFleet{fleet: f}).war("v1", fixture.WAROptions{})

	addr := "127.0.0.1:" + strconv.Itoa(f.agentPort)
	var (
		stop            = make(chan struct{})
		wg              sync.WaitGroup
		closed, stalled atomic.Int64
		problems        = make(chan string, 16)
	)
	// flood holds one connection open at a time, sending first, and opens
	// the next when the agent closes it. A connection the agent leaves
	// open for 30s is a failure.
	flood := func(send string) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				select {
				case problems <- "dial: " + err.Error():
				default:
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			_, err = io.WriteString(c, send)
			if err == nil {
				_, err = io.Copy(io.Discard, c) // until the agent closes it
			}
			c.Close()
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				stalled.Add(1)
			case err == nil || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset"):
				closed.Add(1)
			}
		}
	}
	for range 200 {
		wg.Add(1)
		go flood("GET /healthz HTTP/1.1\r\nHost: agent\r\n\r\n")
	}
	for range 50 {
		wg.Add(1)
		go flood("GET /healthz HTTP/1.1\r\nHost: agent\r\nX-Slow: ")
	}
	stopFlood := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopFlood)

	// Count the agent's sockets while the flood and the deploy run.
	var most atomic.Int64
	countDone := make(chan struct{})
	go func() {
		defer close(countDone)
		for {
			if n := int64(sockets(agentPID)); n > most.Load() {
				most.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// Let the flood fill every slot before the deploy starts.
	deadline := time.Now().Add(20 * time.Second)
	for sockets(agentPID) < floodCap && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stdout, stderr := f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", war)
	if got := get(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort)); got != "v1" {
		t.Fatalf("after the deploy the instance serves %q, want v1\nstdout:\n%s\nstderr:\n%s", got, stdout, stderr)
	}
	stopFlood()
	<-countDone

	// The listener and a few connections of the agent's own (health
	// probes) beside the cap.
	if n := most.Load(); n > floodCap+8 {
		t.Errorf("the agent held %d sockets at once, want at most %d + a few", n, floodCap)
	}
	if n := stalled.Load(); n > 0 {
		t.Errorf("%d flood connections were still open after 30s", n)
	}
	if n := closed.Load(); n < 250 {
		t.Errorf("the agent closed %d flood connections, want each of the 250 closed at least once", n)
	}
	select {
	case p := <-problems:
		t.Errorf("flood: %s", p)
	default:
	}

	// Once the flood is over the agent answers at once.
	if got := get(f.agentURL + "/healthz"); got != "ok" {
		t.Errorf("healthz after the flood = %q", got)
	}
	if code, body := f.api("GET", "/v1/services", token, nil); code != 200 {
		t.Errorf("GET /v1/services after the flood: %d %s", code, body)
	}
	t.Logf("flood: %d connections closed by the agent, at most %d sockets open in the agent", closed.Load(), most.Load())
}

// sockets counts the sockets among pid's open files.
func sockets(pid int) int {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, _ := os.ReadDir(dir)
	n := 0
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(link, "socket:") {
			n++
		}
	}
	return n
}
