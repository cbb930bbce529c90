package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baepo/baepo/agent"
	"github.com/baepo/baepo/agent/httpapi"
	"github.com/baepo/baepo/client"
	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/internal/fixture"
	"github.com/baepo/baepo/sdk"
)

// nopDriver does nothing at once: the benchmarks measure baepo alone.
type nopDriver struct{ sdk.NoSteps }

func (nopDriver) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "nop", Version: "1"}, nil
}
func (nopDriver) Validate(context.Context, sdk.Instance) error { return nil }
func (nopDriver) Start(context.Context, sdk.Instance) (sdk.Result, error) {
	return sdk.Result{Message: "started"}, nil
}
func (nopDriver) Stop(context.Context, sdk.Instance) (sdk.Result, error) {
	return sdk.Result{Message: "stopped"}, nil
}
func (nopDriver) Install(context.Context, sdk.Instance, sdk.Release) (sdk.Result, error) {
	return sdk.Result{}, nil
}
func (nopDriver) Status(context.Context, sdk.Instance) (sdk.Status, error) {
	return sdk.Status{}, nil
}
func (nopDriver) Logs(context.Context, sdk.Instance, int) (string, error) { return "", nil }

// benchAgent serves a real agent with one nop instance on loopback and
// returns a client target for it.
func benchAgent(b *testing.B) (*client.Inventory, engine.Target) {
	b.Helper()
	dir := b.TempDir()
	token := "bench-token-0123456789"
	os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600)
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte("token_file: token\ndata_dir: data\nservices:\n  A:\n    driver: nop\n    instances:\n      a1: { port: 1 }\n"), 0o600)
	cfg, err := agent.LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	a, err := agent.New(context.Background(), cfg, slog.New(slog.DiscardHandler), agent.Builtin{"nop": nopDriver{}}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.Handler(a, cfg.Token(), slog.New(slog.DiscardHandler)))
	b.Cleanup(func() { srv.Close(); a.Close() })
	inv := &client.Inventory{File: "bench", Servers: map[string]client.Server{"s": {Name: "s", Agent: srv.URL, TokenFile: filepath.Join(dir, "token")}}}
	target, err := client.NewAgentTarget(inv, os.Getenv, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return inv, target
}

// BenchmarkStepRoundTrip sends one step client → agent → no-op driver →
// client over loopback HTTP (target: p50 ≤ 1 ms).
func BenchmarkStepRoundTrip(b *testing.B) {
	_, target := benchAgent(b)
	inst := engine.Instance{Server: "s", Service: "A", Name: "a1"}
	ctx := context.Background()
	var took []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := target.Do(ctx, inst, engine.Step{Name: "stop"}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkUpload100MB uploads a 100 MB artifact to one agent, against
// copying the same file on the same disk (target: ≥ 50% of the copy's
// throughput; compare the MB/s of the sub-benchmarks). "upload" is what a
// run does: hash the file, ask the agent, send it; "put" is the transfer
// and store alone, with the digest known.
func BenchmarkUpload100MB(b *testing.B) {
	dir := b.TempDir()
	war := filepath.Join(dir, "big.war")
	writeBigZip(b, war, 100<<20)
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for b.Loop() {
			copyFile(b, war, filepath.Join(dir, "copy.war"))
		}
	})
	b.Run("put", func(b *testing.B) {
		f, err := os.Open(war)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		digest := hex.EncodeToString(h.Sum(nil))
		b.SetBytes(100 << 20)
		for b.Loop() {
			b.StopTimer()
			url, token := benchAgentURL(b)
			f.Seek(0, io.SeekStart)
			fi, _ := f.Stat()
			// The client closes a request body: keep f open for the next round.
			req, _ := http.NewRequest(http.MethodPut, url+"/v1/artifacts/sha256/"+digest, io.NopCloser(f))
			req.ContentLength = fi.Size()
			req.Header.Set("Authorization", "Bearer "+token)
			b.StartTimer()
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusCreated {
				b.Fatal(err, resp)
			}
			resp.Body.Close()
		}
	})
	b.Run("upload", func(b *testing.B) {
		b.SetBytes(100 << 20)
		for b.Loop() {
			b.StopTimer()
			_, target := benchAgent(b) // a fresh agent: the upload is not skipped
			p := target.(engine.Preparer)
			b.StartTimer()
			if err := p.Prepare(context.Background(), []string{"s"}, []engine.Artifact{{Path: war}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchAgentURL serves a fresh real agent and returns its URL and token.
func benchAgentURL(b *testing.B) (string, string) {
	inv, _ := benchAgent(b)
	s := inv.Servers["s"]
	tok, err := s.Token(os.Getenv)
	if err != nil {
		b.Fatal(err)
	}
	return s.Agent, tok
}

func writeBigZip(b *testing.B, path string, size int) {
	// A zip with one stored entry of random bytes: incompressible, like a
	// fat WAR's jars.
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmdDir := b.TempDir()
	data := make([]byte, size)
	rand.Read(data)
	os.WriteFile(filepath.Join(cmdDir, "blob.bin"), data, 0o644)
	out, err := exec.Command("jar", "--create", "--no-compress", "--file", path, "-C", cmdDir, "blob.bin").CombinedOutput()
	if err != nil {
		b.Fatalf("jar: %v %s", err, out)
	}
}

func copyFile(b *testing.B, src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	out.Close()
}

// BenchmarkAgentStart starts the real baepo-agent binary and waits for
// /healthz (target: ≤ 100 ms), then reports its idle RSS (target: ≤ 25 MB).
func BenchmarkAgentStart(b *testing.B) {
	bin := binDir(b)
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), []byte("bench-token-0123456789"), 0o600)
	base := filepath.Join(dir, "tomcat")
	os.MkdirAll(filepath.Join(base, "conf"), 0o755)
	os.MkdirAll(filepath.Join(base, "webapps"), 0o755)
	os.WriteFile(filepath.Join(base, "conf", "server.xml"), []byte(`<Server><Connector port="18080"/></Server>`), 0o644)
	var rss int
	for b.Loop() {
		b.StopTimer()
		port, err := fixture.FreePort()
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(fmt.Sprintf("listen: 127.0.0.1:%d\ntoken_file: token\ndata_dir: data\nservices:\n  A:\n    driver: tomcat\n    instances:\n      a1: { catalina_base: %s, port: 18080 }\n", port, base)), 0o600)
		cmd := exec.Command(filepath.Join(bin, "baepo-agent"), "--config", filepath.Join(dir, "agent.yaml"))
		var logs bytes.Buffer
		cmd.Stderr = &logs
		b.StartTimer()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil {
				resp.Body.Close()
				break
			}
			if cmd.ProcessState != nil {
				b.Fatalf("agent exited: %s", logs.String())
			}
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		time.Sleep(200 * time.Millisecond)
		rss = max(rss, vmRSS(cmd.Process.Pid))
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(rss)/1024, "idle-RSS-MB")
}

func vmRSS(pid int) int {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	return 0
}

// BenchmarkRollingDeploy deploys a WAR to two real Tomcat instances, one at
// a time, with baepo and with testdata/bench/baseline.sh, the shell script
// a team would otherwise write (target: baepo ≤ 1.1 × the script).
func BenchmarkRollingDeploy(b *testing.B) {
	f := newTomcatFleet(b)
	wars := []string{f.wars["v1"], f.wars["v2"]}
	f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", wars[0])
	b.Run("baepo", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", wars[n%2])
		}
	})
	f.must(0, "run", "stop", "--server", "local", "--service", "A")
	script, _ := filepath.Abs("testdata/bench/baseline.sh")
	var specs []string
	for i, port := range f.ports {
		pid := filepath.Join(f.dir, fmt.Sprintf("baseline-a%d.pid", i+1))
		specs = append(specs, fmt.Sprintf("%s:%d:%s", filepath.Join(f.dir, fmt.Sprintf("a%d", i+1)), port, pid))
	}
	b.Cleanup(func() {
		for _, s := range specs {
			pidfile := s[strings.LastIndex(s, ":")+1:]
			if data, err := os.ReadFile(pidfile); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	b.Run("script", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			args := append([]string{wars[n%2], "app"}, specs...)
			if out, err := exec.Command(script, args...).CombinedOutput(); err != nil {
				b.Fatalf("baseline: %v\n%s", err, out)
			}
		}
	})
}

// helloPlugins returns a plugin host that knows the out-of-tree hello
// plugin, pinned by its real sha256.
func helloPlugins(b *testing.B) *agent.Plugins {
	dir := pluginDir(b)
	data, err := os.ReadFile(filepath.Join(dir, "baepo-plugin-hello"))
	if err != nil {
		b.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(data))
	return agent.NewPlugins(agent.Builtin{}, dir, map[string]agent.PluginConfig{"hello": {SHA256: sum}}, slog.New(slog.DiscardHandler))
}

// BenchmarkPluginColdStart starts the hello plugin with SecureConfig
// (sha256 of the binary) and AutoMTLS until it serves (target: ≤ 60 ms).
func BenchmarkPluginColdStart(b *testing.B) {
	ctx := context.Background()
	helloPlugins(b) // build the plugin outside the timed loop
	for b.Loop() {
		b.StopTimer()
		p := helloPlugins(b)
		b.StartTimer()
		if _, err := p.Driver(ctx, "hello"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		p.Close()
		b.StartTimer()
	}
}

// BenchmarkPluginStep calls a no-op custom step of a running plugin
// process over gRPC (targets: p50 ≤ 0.5 ms, p99 ≤ 2 ms).
func BenchmarkPluginStep(b *testing.B) {
	ctx := context.Background()
	p := helloPlugins(b)
	defer p.Close()
	d, err := p.Driver(ctx, "hello")
	if err != nil {
		b.Fatal(err)
	}
	inst := sdk.Instance{Service: "H", Name: "h1", Config: map[string]string{"greeting": "hi"}}
	var took []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := d.Status(ctx, inst); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}
