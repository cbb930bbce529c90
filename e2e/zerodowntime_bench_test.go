package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
	"github.com/baepo/baepo/internal/loadgen"
)

// The zero-downtime benchmarks deploy under load: a loadgen.Load requests
// the app on loopback (4 workers, a request every 10 ms each, 2 s timeout)
// from just before each deploy until the new version serves, and the
// benchmark reports the failed requests per deploy (refused, reset, timed
// out or not 2xx), the latency percentiles of the rest and, for a single
// instance, how long after the deploy started the new version answered.
// `make bench` runs them a fixed number of times (-benchtime Nx).

// underLoad is what the deploys of one benchmark saw.
type underLoad struct {
	deploys  int
	failed   int
	requests int
	switches []time.Duration // deploy start to the new version's first answer
	lat      []time.Duration
	examples []loadgen.Failure
}

// deploy runs one deploy of version under load on url and records it. When
// switched is set, it waits (up to 10 s) for url to answer version.
func (u *underLoad) deploy(b *testing.B, url, version string, switched bool, deploy func()) {
	b.Helper()
	load, err := loadgen.Start(context.Background(), loadgen.Options{URL: url, Workers: 4, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the app is under load when the deploy starts
	start := time.Now()
	deploy()
	if switched {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, body, err := fixture.Get(context.Background(), url); err == nil && strings.TrimSpace(body) == version {
				break
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	rep := load.Stop()
	u.deploys++
	u.failed += rep.Failed
	u.requests += rep.Requests
	u.lat = append(u.lat, rep.Latencies...)
	if len(u.examples) < 5 {
		u.examples = append(u.examples, rep.Examples...)
	}
	if switched {
		first, ok := rep.First[version]
		if !ok {
			b.Fatalf("version %s never answered %s after the deploy (%s)", version, url, rep)
		}
		u.switches = append(u.switches, first.Sub(start))
	}
}

// report adds the figures to the benchmark's line.
func (u *underLoad) report(b *testing.B) {
	if u.deploys == 0 {
		return
	}
	slices.Sort(u.lat)
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[int(p*float64(len(d)-1))]
	}
	b.ReportMetric(float64(u.failed)/float64(u.deploys), "failed/deploy")
	b.ReportMetric(float64(u.failed), "failed-total")
	b.ReportMetric(float64(u.requests), "requests-total")
	b.ReportMetric(float64(pct(u.lat, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(u.lat, 0.99).Microseconds())/1000, "p99-ms")
	if len(u.switches) > 0 {
		slices.Sort(u.switches)
		b.ReportMetric(pct(u.switches, 0.5).Seconds(), "switch-p50-s")
	}
	for _, e := range u.examples {
		b.Logf("failure: %s %s", e.Kind, e.What)
	}
}

// baselineScript runs testdata/bench/baseline.sh, the hand-written rolling
// deploy, over the fleet's instances (pid files in the fleet's directory).
type baselineScript struct {
	path  string
	specs []string
}

func newBaselineScript(b *testing.B, f *tomcatFleet) *baselineScript {
	script, err := filepath.Abs("testdata/bench/baseline.sh")
	if err != nil {
		b.Fatal(err)
	}
	s := &baselineScript{path: script}
	for i, port := range f.ports {
		pid := filepath.Join(f.dir, fmt.Sprintf("baseline-a%d.pid", i+1))
		s.specs = append(s.specs, fmt.Sprintf("%s:%d:%s", filepath.Join(f.dir, fmt.Sprintf("a%d", i+1)), port, pid))
	}
	b.Cleanup(func() {
		for _, spec := range s.specs {
			pidfile := spec[strings.LastIndex(spec, ":")+1:]
			if data, err := os.ReadFile(pidfile); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return s
}

func (s *baselineScript) deploy(b *testing.B, war string) {
	if out, err := exec.Command(s.path, append([]string{war, "app"}, s.specs...)...).CombinedOutput(); err != nil {
		b.Fatalf("baseline: %v\n%s", err, out)
	}
}

// noDrain is the built-in deploy as it was before it knew of balancers:
// stop, install, start, health.
const noDrain = `return {
  name = "deploy-no-drain",
  params = { service = { required = true, doc = "s" }, artifact = { type = "artifact", required = true, doc = "a" } },
  strategy = { batch = 1 },
  each = function(i, ctx)
    i:stop()
    i:install(ctx.params.artifact)
    i:start()
    i:health{ timeout = "60s" }
  end,
}`

// BenchmarkFleetUnderLoad deploys to two Tomcat instances behind a real
// HAProxy, one at a time, while a load requests the app through HAProxy:
// the built-in deploy, which drains each instance at HAProxy before it
// stops it and undrains it once healthy; the same without the drain; and
// the bare script.
func BenchmarkFleetUnderLoad(b *testing.B) {
	if err := fixture.LookHAProxy(); err != nil {
		b.Fatal(err)
	}
	var lb *fixture.HAProxy
	f := newTomcatFleetWith(b, 2, func(f *tomcatFleet, _ []string) string {
		dir, err := os.MkdirTemp("", "lb") // short: a socket's path has at most 107 bytes
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		lb, err = fixture.StartHAProxy(context.Background(), dir, 0, fmt.Sprintf(`backend app
    balance roundrobin
    option httpchk GET /app/health
    server a1 127.0.0.1:%d check inter 200ms fall 2 rise 1
    server a2 127.0.0.1:%d check inter 200ms fall 2 rise 1
`, f.ports[0], f.ports[1]))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(lb.Stop)
		return fmt.Sprintf("    balancer: { haproxy: { socket: %s, backend: app }, drain_timeout: 10s, undrain_timeout: 20s }\n", lb.Socket)
	})
	flows := f.flow("deploy-no-drain", noDrain)
	url := fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", lb.Port)
	wars := []string{f.wars["v1"], f.wars["v2"]}
	f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", wars[0])
	for _, bb := range []struct{ name, template string }{{"baepo-drain", "deploy"}, {"baepo-no-drain", "deploy-no-drain"}} {
		b.Run(bb.name, func(b *testing.B) {
			var u underLoad
			n := 0
			for b.Loop() {
				n++
				u.deploy(b, url, "", false, func() {
					f.must(0, "run", bb.template, "--flows", flows, "--server", "local", "--service", "A", "--artifact", wars[n%2])
				})
			}
			u.report(b)
		})
	}
	f.must(0, "run", "stop", "--server", "local", "--service", "A")
	// The script knows no balancer: undrain what stop drained.
	for _, s := range []string{"a1", "a2"} {
		if out, err := lb.Command("set server app/" + s + " state ready"); err != nil || strings.TrimSpace(out) != "" {
			b.Fatalf("haproxy: set server app/%s state ready: %q %v", s, out, err)
		}
	}
	script := newBaselineScript(b, f)
	b.Run("script", func(b *testing.B) {
		var u underLoad
		n := 0
		for b.Loop() {
			n++
			u.deploy(b, url, "", false, func() { script.deploy(b, wars[n%2]) })
		}
		u.report(b)
	})
}

// BenchmarkTomcatUnderLoad deploys to one Tomcat instance under load, v1
// and v2 in turn: hot (deploy_mode hot: the new version deployed beside the
// old one in the running JVM, then the old one retired) and restart
// (--mode restart: stop, install, start). It reports the failed requests
// per deploy and switch-p50-s, how long after the deploy began (the client
// started) the new version first answered.
func BenchmarkTomcatUnderLoad(b *testing.B) {
	f := newTomcatFleetWith(b, 1, hotSetup(b))
	url := fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", f.ports[0])
	versions := []string{"v1", "v2"}
	f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars["v1"])
	for _, mode := range []string{"hot", "restart"} {
		b.Run(mode, func(b *testing.B) {
			var u underLoad
			n := 0
			for b.Loop() {
				n++
				v := versions[n%2]
				u.deploy(b, url, v, true, func() {
					f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars[v], "--mode", mode)
				})
			}
			u.report(b)
		})
	}
}
