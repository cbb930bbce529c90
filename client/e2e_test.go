package client_test

// End-to-end tests: the real baepo and baepo-agent binaries, built here,
// deploying real WARs (built with jar) to two real Tomcat 10 instances from
// Debian's packages, on loopback ports.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds baepo and baepo-agent once per test process.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		// One directory per checkout, reused by every run: go build's cache
		// makes rebuilding quick, and no run leaves a directory behind.
		binDir, buildErr = stableDir("bin")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "github.com/baepo/baepo/client/cmd/baepo", "github.com/baepo/baepo/agent/cmd/baepo-agent")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// stableDir returns a directory under the system temp dir that belongs to
// this checkout, for build outputs the e2e tests share across runs.
func stableDir(kind string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(wd))
	dir := filepath.Join(os.TempDir(), "baepo-e2e-"+kind+"-"+hex.EncodeToString(sum[:6]))
	return dir, os.MkdirAll(dir, 0o755)
}

// syncBuffer is a bytes.Buffer safe for a process to write while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fleet is one agent with service A on two Tomcat instances.
type fleet struct {
	t         testing.TB
	dir       string
	bin       string
	agentURL  string
	token     string
	ports     []int
	agent     *exec.Cmd
	agentLog  *syncBuffer
	inventory string
}

func newFleet(t testing.TB) *fleet {
	t.Helper()
	if _, err := exec.LookPath("tomcat10-instance-create"); err != nil {
		t.Fatal("tomcat10-instance-create is missing: run `make deps` (as root) to install tomcat10 and tomcat10-user")
	}
	f := &fleet{t: t, dir: t.TempDir(), bin: binaries(t), token: "e2e-token-0123456789abcdef", agentLog: &syncBuffer{}}
	ctx := context.Background()
	var instances []string
	for i := 1; i <= 2; i++ {
		httpPort, err1 := fixture.FreePort()
		shutPort, err2 := fixture.FreePort()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		base := filepath.Join(f.dir, fmt.Sprintf("a%d", i))
		if err := fixture.CreateInstance(ctx, base, httpPort, shutPort); err != nil {
			t.Fatal(err)
		}
		f.ports = append(f.ports, httpPort)
		instances = append(instances, fmt.Sprintf("      a%d: { catalina_base: %s, port: %d }", i, base, httpPort))
	}
	agentPort, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	f.agentURL = "http://127.0.0.1:" + strconv.Itoa(agentPort)
	f.write("token", f.token+"\n")
	f.write("agent.yaml", fmt.Sprintf(`listen: 127.0.0.1:%d
token_file: token
data_dir: data
services:
  A:
    driver: tomcat
    context: /app
    keep_releases: 3
    health: { path: /app/health, timeout: 60s, interval: 50ms }
    instances:
%s
`, agentPort, strings.Join(instances, "\n")))
	f.inventory = f.write("inventory.yaml", fmt.Sprintf("servers:\n  local: { agent: %q, token_file: token }\n  bad: { agent: %q, token_env: BAD_TOKEN }\n", f.agentURL, f.agentURL))
	f.startAgent()
	t.Cleanup(f.cleanup)
	return f
}

func (f *fleet) write(name, content string) string {
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fleet) startAgent() {
	f.t.Helper()
	f.agent = exec.Command(filepath.Join(f.bin, "baepo-agent"), "--config", filepath.Join(f.dir, "agent.yaml"))
	f.agent.Stdout, f.agent.Stderr = f.agentLog, f.agentLog
	// go-plugin's sockets and anything else the agent puts in TMPDIR stay
	// inside the test's directory.
	tmp := filepath.Join(f.dir, "tmp")
	os.MkdirAll(tmp, 0o755)
	f.agent.Env = append(os.Environ(), "TMPDIR="+tmp)
	if err := f.agent.Start(); err != nil {
		f.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(f.agentURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("agent did not come up: %v\n%s", err, f.agentLog.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fleet) stopAgent() {
	if f.agent == nil || f.agent.Process == nil {
		return
	}
	_ = f.agent.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = f.agent.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		_ = f.agent.Process.Kill()
		<-done
	}
	f.agent = nil
}

// cleanup stops the agent and every Tomcat it started.
func (f *fleet) cleanup() {
	f.stopAgent()
	pidFiles, _ := filepath.Glob(filepath.Join(f.dir, "data", "instances", "*", "*", "*.pid"))
	for _, pidFile := range pidFiles {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if f.t.Failed() {
		f.t.Logf("agent log:\n%s", f.agentLog.String())
	}
}

// baepo runs the client and returns its exit code and output.
func (f *fleet) baepo(env []string, args ...string) (int, string, string) {
	f.t.Helper()
	cmd := exec.Command(filepath.Join(f.bin, "baepo"), args...)
	cmd.Dir = f.dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "BAEPO_INVENTORY="+f.inventory, "BUILD_TAG=jenkins-e2e-7", "JOB_NAME=e2e", "BUILD_NUMBER=7")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		f.t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// must runs baepo and fails the test unless it exits with want.
func (f *fleet) must(want int, args ...string) (string, string) {
	f.t.Helper()
	code, stdout, stderr := f.baepo(nil, args...)
	if code != want {
		f.t.Fatalf("baepo %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// serving returns what instance i (0 or 1) serves at /app/version.txt, or ""
// when it does not answer.
func (f *fleet) serving(i int) string {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", f.ports[i]))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return strings.TrimSpace(b.String())
}

func (f *fleet) war(version string, opts fixture.WAROptions) string {
	f.t.Helper()
	dir := filepath.Join(f.dir, "wars", version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	p, err := fixture.BuildWAR(context.Background(), dir, version, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// api sends a raw request to the agent.
func (f *fleet) api(method, path, token string, body []byte) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.agentURL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func (f *fleet) wantServing(v1, v2 string) {
	f.t.Helper()
	if got1, got2 := f.serving(0), f.serving(1); got1 != v1 || got2 != v2 {
		f.t.Fatalf("instances serve %q and %q, want %q and %q", got1, got2, v1, v2)
	}
}

// watch polls both instances every 20ms until stop is called and reports
// whether both were ever down at the same time.
func (f *fleet) watch() (stop func() bool) {
	var bothDown atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var down [2]atomic.Bool
			var pw sync.WaitGroup
			for i := range 2 {
				pw.Go(func() { down[i].Store(f.serving(i) == "") })
			}
			pw.Wait()
			if down[0].Load() && down[1].Load() {
				bothDown.Store(true)
			}
		}
	})
	return func() bool { close(done); wg.Wait(); return bothDown.Load() }
}

func TestEndToEndTomcat(t *testing.T) {
	f := newFleet(t)
	v1 := f.war("v1", fixture.WAROptions{})
	v2 := f.war("v2", fixture.WAROptions{})
	broken := f.war("broken", fixture.WAROptions{FailHealth: true})

	t.Run("deploy v1", func(t *testing.T) {
		f.t = t
		_, stderr := f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", v1)
		f.wantServing("v1", "v1")
		if strings.Count(stderr, "artifact uploaded") != 1 {
			t.Fatalf("want one upload for one server:\n%s", stderr)
		}
	})
	t.Run("deploy v2 one instance at a time", func(t *testing.T) {
		f.t = t
		stop := f.watch()
		stdout, _ := f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", v2, "--junit", "deploy.xml", "--report-json", "deploy.json")
		if stop() {
			t.Fatal("both instances were down at the same time with batch 1")
		}
		f.wantServing("v2", "v2")
		if !strings.Contains(stdout, "health") {
			t.Fatalf("summary lacks the health steps:\n%s", stdout)
		}
		var rep struct {
			ExitCode  int `json:"exit_code"`
			Instances []struct {
				Result string `json:"result"`
			} `json:"instances"`
		}
		data, err := os.ReadFile(filepath.Join(f.dir, "deploy.json"))
		if err != nil || json.Unmarshal(data, &rep) != nil || len(rep.Instances) != 2 || rep.Instances[1].Result != "ok" {
			t.Fatalf("report: %v %s", err, data)
		}
	})
	t.Run("rollback flow", func(t *testing.T) {
		f.t = t
		f.must(0, "run", "rollback", "--server", "local", "--service", "A")
		f.wantServing("v1", "v1")
	})
	t.Run("same artifact uploads nothing", func(t *testing.T) {
		f.t = t
		_, stderr := f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", v2)
		if !strings.Contains(stderr, "0 bytes uploaded") || strings.Contains(stderr, "artifact uploaded") {
			t.Fatalf("v2 was uploaded again:\n%s", stderr)
		}
		f.wantServing("v2", "v2")
	})
	t.Run("failed health rolls back", func(t *testing.T) {
		f.t = t
		stdout, stderr := f.must(1, "run", "deploy", "--server", "local", "--service", "A", "--artifact", broken, "--health_timeout", "8s")
		f.wantServing("v2", "v2")
		out := stdout + stderr
		for _, want := range []string{"did not answer 200", "lines of the A/a1 log", "rolled-back"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("restart stop start status", func(t *testing.T) {
		f.t = t
		f.must(0, "run", "restart", "--server", "local", "--service", "A")
		f.wantServing("v2", "v2")
		f.must(0, "run", "stop", "--server", "local", "--service", "A")
		f.wantServing("", "")
		stdout, _ := f.must(0, "status", "--server", "local", "--service", "A")
		if !strings.Contains(stdout, "stopped") {
			t.Fatalf("status:\n%s", stdout)
		}
		f.must(0, "run", "start", "--server", "local", "--service", "A")
		f.wantServing("v2", "v2")
		stdout, _ = f.must(0, "status", "--server", "local")
		if !strings.Contains(stdout, "running pid") || !strings.Contains(stdout, "v2.war") {
			t.Fatalf("status:\n%s", stdout)
		}
	})
	t.Run("history", func(t *testing.T) {
		f.t = t
		stdout, _ := f.must(0, "history", "--server", "local", "--service", "A", "--limit", "200")
		for _, want := range []string{"install", "rollback", "failed", "jenkins-e2e-7"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("history lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("bad credentials change nothing", func(t *testing.T) {
		f.t = t
		code, _, stderr := f.baepo([]string{"BAD_TOKEN=not-the-token"}, "run", "deploy", "--server", "bad", "--service", "A", "--artifact", v1)
		if code != 4 || !strings.Contains(stderr, "refused the credentials") {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		f.wantServing("v2", "v2")
		for _, token := range []string{"", "wrong"} {
			if status, body := f.api("GET", "/v1/services", token, nil); status != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) {
				t.Fatalf("token %q: %d %s", token, status, body)
			}
		}
	})
	t.Run("bad input is refused", func(t *testing.T) {
		f.t = t
		notZip := f.write("not-a-war.war", "this is not a zip")
		_, stderr := f.must(2, "run", "deploy", "--server", "local", "--service", "A", "--artifact", notZip)
		if !strings.Contains(stderr, "not a zip") {
			t.Fatalf("stderr:\n%s", stderr)
		}
		if status, body := f.api("PUT", "/v1/artifacts/sha256/"+strings.Repeat("ab", 32), f.token, []byte("PK\x03\x04 whatever")); status != http.StatusUnprocessableEntity {
			t.Fatalf("digest mismatch: %d %s", status, body)
		}
		for _, path := range []string{
			"/v1/services/../instances/a1/steps/stop",
			"/v1/services/A/instances/..%2Fa1/steps/stop",
			"/v1/services/A/instances/a1/steps/..",
		} {
			if status, body := f.api("POST", path, f.token, nil); status != http.StatusBadRequest && status != http.StatusNotFound {
				t.Fatalf("%s: %d %s", path, status, body)
			}
		}
		f.must(2, "run", "deploy", "--server", "local", "--service", "../A", "--artifact", v1)
		f.wantServing("v2", "v2")
	})
	t.Run("agent crash mid-step", func(t *testing.T) {
		f.t = t
		logStart := len(f.agentLog.String())
		done := make(chan int)
		go func() {
			code, _, _ := f.baepo(nil, "run", "restart", "--server", "local", "--service", "A")
			done <- code
		}()
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(f.agentLog.String()[logStart:], "step started instance=A/a1 step=restart") {
			if time.Now().After(deadline) {
				t.Fatalf("restart never started:\n%s", f.agentLog.String()[logStart:])
			}
			time.Sleep(2 * time.Millisecond)
		}
		_ = f.agent.Process.Kill()
		_ = f.agent.Wait()
		f.agent = nil
		if code := <-done; code != 3 {
			t.Fatalf("a run whose agent died mid-step: exit %d, want 3", code)
		}
		f.startAgent()
		stdout, _ := f.must(0, "history", "--server", "local", "--service", "A", "--limit", "5")
		if !regexp.MustCompile(`(?m)^.*a1\s+restart\s+interrupted`).MatchString(stdout) {
			t.Fatalf("history does not show the restart as interrupted:\n%s", stdout)
		}
		// The restarted agent holds no lock or lease of the dead run.
		f.must(0, "run", "restart", "--server", "local", "--service", "A")
		f.wantServing("v2", "v2")
	})
	t.Run("concurrent deploys", func(t *testing.T) {
		f.t = t
		var codes [2]int
		var outs [2]string
		var wg sync.WaitGroup
		for i, art := range []string{v1, v2} {
			wg.Go(func() {
				c, so, se := f.baepo(nil, "run", "deploy", "--server", "local", "--service", "A", "--artifact", art)
				codes[i], outs[i] = c, so+se
			})
			time.Sleep(time.Second)
		}
		wg.Wait()
		if codes[0] != 0 || codes[1] != 4 || !strings.Contains(outs[1], "busy") || !strings.Contains(outs[1], "jenkins-e2e-7") {
			t.Fatalf("exits %v\nfirst:\n%s\nsecond:\n%s", codes, outs[0], outs[1])
		}
		f.wantServing("v1", "v1")
	})
}
