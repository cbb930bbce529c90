package e2e_test

// End-to-end test of drain and undrain: the real baepo and baepo-agent
// restarting two real Tomcat 10 instances behind a real HAProxy 2.6, whose
// runtime API the agent drives through its stats socket.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/balancer"
	"github.com/baepo/baepo/internal/fixture"
)

// lbFlows are the test's own flows: lb-install puts a WAR in place
// without the balancer, lb-restart drains, stops, starts, checks and
// undrains the instance of --instance.
var lbFlows = map[string]string{
	"lb-install": `return {
  name = "lb-install",
  params = { service = { required = true, doc = "s" }, artifact = { type = "artifact", required = true, doc = "a" } },
  strategy = { batch = 2 },
  each = function(i, ctx)
    i:stop()
    i:install(ctx.params.artifact)
    i:start()
    i:health{ timeout = "60s" }
  end,
}`,
	"lb-restart": `return {
  name = "lb-restart",
  params = { service = { required = true, doc = "s" }, instance = { required = true, doc = "i" } },
  targets = function(ctx)
    local out = {}
    for _, i in ipairs(ctx:instances(ctx.params.service)) do
      if i.name == ctx.params.instance then table.insert(out, i) end
    end
    return out
  end,
  each = function(i, ctx)
    assert(i.balancer == "haproxy", "i.balancer is " .. tostring(i.balancer))
    i:drain()
    i.drained = true
    i:stop()
    i:start()
    i:health{ timeout = "60s" }
    i:undrain()
  end,
  rollback = function(i, ctx, err)
    if i.drained then i:undrain() end
  end,
}`,
}

// lbFleet is service A on two Tomcat instances, a1 and a2, behind HAProxy's
// backend app, whose servers are a1 and a2. In agent.yaml a1's server is a1
// (the default), a2's is "web9", which HAProxy does not know.
type lbFleet struct {
	*fleet
	proxy *fixture.HAProxy
	ports []int
}

func newLBFleet(t *testing.T) *lbFleet {
	t.Helper()
	if err := fixture.LookHAProxy(); err != nil {
		t.Fatal(err)
	}
	f := &lbFleet{fleet: newFleet(t)}
	dir, err := os.MkdirTemp("", "lb") // short: a socket's path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var servers, instances []string
	for i := 1; i <= 2; i++ {
		httpPort, shutPort := freePort(t), freePort(t)
		base := filepath.Join(f.dir, fmt.Sprintf("a%d", i))
		if err := fixture.CreateInstance(context.Background(), base, httpPort, shutPort); err != nil {
			t.Fatal(err)
		}
		f.ports = append(f.ports, httpPort)
		servers = append(servers, fmt.Sprintf("    server a%d 127.0.0.1:%d check inter 100ms rise 1 fall 1", i, httpPort))
		instances = append(instances, fmt.Sprintf("      a%d: { catalina_base: %s, port: %d }", i, base, httpPort))
	}
	instances[1] = strings.Replace(instances[1], " }", ", balancer: { haproxy: { server: web9 } } }", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f.proxy, err = fixture.StartHAProxy(ctx, dir, 0, "backend app\n    option httpchk GET /app/health\n"+strings.Join(servers, "\n")+"\n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.proxy.Stop()
		if t.Failed() {
			t.Logf("haproxy log:\n%s", f.proxy.Log())
		}
	})
	f.start(fmt.Sprintf(`  A:
    driver: tomcat
    context: /app
    health: { path: /app/health, timeout: 60s, interval: 50ms }
    balancer:
      haproxy: { socket: %s, backend: app }
      drain_timeout: 20s
      undrain_timeout: 20s
    instances:
%s
`, f.proxy.Socket, strings.Join(instances, "\n")))
	for name, code := range lbFlows {
		f.write(name+".lua", code)
	}
	return f
}

// drained reports whether HAProxy has server in drain, its administrative
// state: show stat says DOWN, not DRAIN, for a drained server whose health
// check fails, as a stopped Tomcat's does.
func (f *lbFleet) drained(server string) bool {
	// Errorf, not Fatalf: a watcher goroutine calls it.
	out, err := f.proxy.Command("show servers state app")
	if err != nil {
		f.t.Errorf("show servers state: %v", err)
		return false
	}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		// be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state …
		if len(fields) > 6 && fields[1] == "app" && fields[3] == server {
			admin, err := strconv.Atoi(fields[6])
			if err != nil {
				f.t.Errorf("show servers state: %q", line)
			}
			return admin&0x08 != 0 // SRV_ADMF_FDRAIN
		}
	}
	f.t.Errorf("show servers state has no server %s:\n%s", server, out)
	return false
}

func (f *lbFleet) state(server string) balancer.ServerState {
	f.t.Helper()
	st, err := (&balancer.HAProxy{Socket: f.proxy.Socket, Backend: "app", Server: server}).State(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *lbFleet) waitUp(server string) {
	f.t.Helper()
	for range 400 {
		if f.state(server).Status == "UP" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.t.Fatalf("%s is %s in HAProxy, want UP", server, f.state(server).Status)
}

func (f *lbFleet) pid(inst string) string {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "data", "instances", "A", inst, "catalina.pid"))
	if err != nil {
		f.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func TestEndToEndDrain(t *testing.T) {
	f := newLBFleet(t)
	war, err := fixture.BuildWAR(context.Background(), filepath.Join(f.dir, "war"), "v1", fixture.WAROptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.must(0, "run", "lb-install", "--flows", f.dir, "--server", "local", "--service", "A", "--artifact", war)
	f.waitUp("a1")
	f.waitUp("a2")

	t.Run("drain, stop, start, health, undrain", func(t *testing.T) {
		f.t = t
		// While the flow runs: requests through HAProxy, every 10ms, must
		// all be answered; and whenever a1's Tomcat does not answer, HAProxy
		// has it drained.
		watch := probe(t, fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", f.proxy.Port))
		var stoppedDrained atomic.Int32
		var notDrained atomic.Value
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
				serving := f.serving(0) != ""
				if drained := f.drained("a1"); !serving && !drained {
					notDrained.Store(time.Now().Format(time.RFC3339Nano))
				} else if !serving {
					stoppedDrained.Add(1)
				}
			}
		})
		pidBefore := f.pid("a1")
		stdout, stderr := f.must(0, "run", "lb-restart", "--flows", f.dir, "--server", "local", "--service", "A", "--instance", "a1")
		close(done)
		wg.Wait()
		rep := watch.Stop()
		if f.pid("a1") == pidBefore {
			t.Fatalf("a1 was not restarted (pid %s)", pidBefore)
		}
		if at := notDrained.Load(); at != nil {
			t.Fatalf("a1 did not serve and was not drained at %s", at)
		}
		if stoppedDrained.Load() == 0 {
			t.Fatalf("a1 was never seen stopped and drained: the watcher saw nothing\n%s\n%s", stdout, stderr)
		}
		if rep.Failed != 0 || len(rep.Bodies) != 1 || rep.Bodies["v1"] == 0 {
			t.Fatalf("requests through HAProxy during the drained restart: %s, bodies %v, failures %v", rep, rep.Bodies, rep.Examples)
		}
		if st := f.state("a1"); st.Status != "UP" || f.drained("a1") {
			t.Fatalf("a1 after undrain: %+v, drained %v", st, f.drained("a1"))
		}
		for _, want := range []string{"drained haproxy app/a1", "haproxy app/a1 is back in rotation: UP"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("log lacks %q:\n%s", want, stderr)
			}
		}
		code, body := f.api("GET", "/v1/services/A/instances/a1", token, nil)
		for _, want := range []string{`"balancer":"haproxy"`, `"balancer_status":"UP"`, `"balancer_drained":false`, `"balancer_in_flight":0`} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("status of a1 lacks %s: %d %s", want, code, body)
			}
		}
		history, _ := f.must(0, "history", "--server", "local", "--service", "A", "--steps", "--limit", "5")
		for _, want := range []string{"drain", "undrain"} {
			if !strings.Contains(history, want) {
				t.Errorf("history lacks %s:\n%s", want, history)
			}
		}
	})

	t.Run("a drain the balancer refuses stops nothing", func(t *testing.T) {
		f.t = t
		pidBefore := f.pid("a2")
		code, stdout, stderr := f.baepo(nil, "run", "lb-restart", "--flows", f.dir, "--server", "local", "--service", "A", "--instance", "a2")
		// The drain failed, and the rollback had nothing to undo: 1.
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
		}
		want := `drain A/a2: haproxy refused "set server app/web9 state drain": No such server.`
		if !strings.Contains(stdout+stderr, want) {
			t.Errorf("output lacks %q:\n%s\n%s", want, stdout, stderr)
		}
		if pid := f.pid("a2"); pid != pidBefore || f.serving(1) != "v1" {
			t.Fatalf("a2 was stopped: pid %s, was %s; serves %q", pid, pidBefore, f.serving(1))
		}
		if st := f.state("a2"); st.Status != "UP" {
			t.Fatalf("a2 in HAProxy: %+v", st)
		}
	})

	// The built-in flows drain an instance that has a balancer before they
	// stop it, and undrain it once healthy; a2's drain, which HAProxy
	// refuses, stops nothing and is rolled back to where it was.
	t.Run("the built-in flows", func(t *testing.T) {
		f.t = t
		stdout, _ := f.must(0, "run", "deploy", "--dry-run", "--server", "local", "--service", "A", "--artifact", war)
		for _, inst := range []string{"a1", "a2"} {
			want := "local A/" + inst + ": drain, stop, install(artifact=" + war + ", mode=restart), start, health(timeout=1m30s), undrain"
			if !strings.Contains(stdout, want) {
				t.Errorf("dry run lacks %q:\n%s", want, stdout)
			}
		}

		pids := []string{f.pid("a1"), f.pid("a2")}
		code, stdout, stderr := f.baepo(nil, "run", "restart", "--server", "local", "--service", "A")
		// a1 restarted; a2's drain failed and its rollback found it running
		// and healthy: 1.
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
		}
		if f.pid("a1") == pids[0] || f.serving(0) != "v1" {
			t.Fatalf("a1 was not restarted, or does not serve: pid %s, serves %q", f.pid("a1"), f.serving(0))
		}
		if st := f.state("a1"); st.Status != "UP" || f.drained("a1") {
			t.Fatalf("a1 after restart: %+v, drained %v", st, f.drained("a1"))
		}
		if f.pid("a2") != pids[1] || f.serving(1) != "v1" {
			t.Fatalf("a2 was stopped: pid %s, was %s; serves %q", f.pid("a2"), pids[1], f.serving(1))
		}
		if !strings.Contains(stdout+stderr, "No such server.") || !strings.Contains(stdout+stderr, "rolled-back") {
			t.Errorf("output lacks HAProxy's refusal or a2's rollback:\n%s\n%s", stdout, stderr)
		}
	})
}

// serving returns what instance i (0 or 1) serves at /app/version.txt.
func (f *lbFleet) serving(i int) string {
	return get(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", f.ports[i]))
}
