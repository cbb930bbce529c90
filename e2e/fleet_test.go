package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
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
)

// token is the bearer token of every test agent.
const token = "e2e-token-0123456789abcdef"

// built builds a set of binaries once per test process, into a directory
// of this checkout's that every run reuses: go build's cache makes a
// rebuild quick, and no run leaves a directory behind.
type built struct {
	once sync.Once
	dir  string
	err  error
}

func (b *built) get(t testing.TB, kind string, build func(dir string) error) string {
	t.Helper()
	b.once.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			b.err = err
			return
		}
		sum := sha256.Sum256([]byte(wd))
		b.dir = filepath.Join(os.TempDir(), "baepo-e2e-"+kind+"-"+hex.EncodeToString(sum[:6]))
		if b.err = os.MkdirAll(b.dir, 0o755); b.err == nil {
			b.err = build(b.dir)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// goBuild builds the packages (import paths, or "." in dir) into out.
func goBuild(dir, out string, pkgs ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", out}, pkgs...)...)
	cmd.Dir = dir
	if data, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, data)
	}
	return nil
}

var binaries, plugins built

// binDir returns the directory holding baepo and baepo-agent.
func binDir(t testing.TB) string {
	return binaries.get(t, "bin", func(dir string) error {
		return goBuild("", dir+"/", "github.com/baepo/baepo/client/cmd/baepo", "github.com/baepo/baepo/agent/cmd/baepo-agent")
	})
}

// pluginDir returns the directory holding the jetty and jar plugins and
// hello, a plugin built out of tree against the sdk alone.
func pluginDir(t testing.TB) string {
	return plugins.get(t, "plugins", func(dir string) error {
		for _, b := range []struct{ name, dir, pkg string }{
			{"jetty", "", "github.com/baepo/baepo/plugins/jetty/cmd/baepo-plugin-jetty"},
			{"jar", "", "github.com/baepo/baepo/plugins/jar/cmd/baepo-plugin-jar"},
			{"hello", "testdata/hello-plugin", "."},
		} {
			if err := goBuild(b.dir, filepath.Join(dir, "baepo-plugin-"+b.name), b.pkg); err != nil {
				return err
			}
		}
		return nil
	})
}

// fleet is one real agent process in a directory of its own, with an
// inventory that names it "local", and the baepo client to drive it.
type fleet struct {
	t         testing.TB
	dir       string
	bin       string
	agentURL  string
	agentPort int
	agent     *exec.Cmd
	agentLog  *fixture.SyncBuffer
	inventory string
	commands  string // agent.yaml's commands: entries, written by start
}

// newFleet prepares a fleet's directory; start writes its config and
// starts the agent.
func newFleet(t testing.TB) *fleet {
	t.Helper()
	f := &fleet{t: t, dir: t.TempDir(), bin: binDir(t), agentLog: &fixture.SyncBuffer{}, agentPort: freePort(t)}
	f.agentURL = "http://127.0.0.1:" + strconv.Itoa(f.agentPort)
	return f
}

// start writes the token, agent.yaml (with services, and the plugins
// given, copied into plugins_dir and pinned by their sha256) and an
// inventory, starts the agent and stops it, and every app server it
// started, when the test ends.
func (f *fleet) start(services string, pluginNames ...string) {
	f.t.Helper()
	f.write("token", token+"\n")
	var pins strings.Builder
	if len(pluginNames) > 0 {
		src := pluginDir(f.t)
		pdir := filepath.Join(f.dir, "plugins")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			f.t.Fatal(err)
		}
		pins.WriteString("plugins_dir: plugins\nplugins:\n")
		for _, name := range pluginNames {
			data, err := os.ReadFile(filepath.Join(src, "baepo-plugin-"+name))
			if err != nil {
				f.t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(pdir, "baepo-plugin-"+name), data, 0o755); err != nil {
				f.t.Fatal(err)
			}
			fmt.Fprintf(&pins, "  %s: { sha256: %s }\n", name, sha256hex(data))
		}
	}
	if f.commands != "" {
		pins.WriteString("commands:\n" + f.commands)
	}
	f.write("agent.yaml", fmt.Sprintf("listen: 127.0.0.1:%d\ntoken_file: token\ndata_dir: data\n%sservices:\n%s", f.agentPort, pins.String(), services))
	f.inventory = f.write("inventory.yaml", fmt.Sprintf("servers:\n  local: { agent: %q, token_file: token }\n  bad: { agent: %q, token_env: BAD_TOKEN }\n", f.agentURL, f.agentURL))
	f.startAgent()
	f.t.Cleanup(f.cleanup)
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

// cleanup stops the agent and every app server it started.
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
	cmd := f.command(env, args...)
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

// command returns the client's command, run in the fleet's directory with
// its inventory and a Jenkins build's environment, plus env.
func (f *fleet) command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(f.bin, "baepo"), args...)
	cmd.Dir = f.dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "BAEPO_INVENTORY="+f.inventory, "BUILD_TAG=jenkins-e2e-7", "JOB_NAME=e2e", "BUILD_NUMBER=7")
	cmd.Env = append(cmd.Env, env...)
	return cmd
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

// api sends a raw request to the agent.
func (f *fleet) api(method, path, tok string, body []byte) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.agentURL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// get returns the trimmed body of a 200 answer from url, or "" when it
// does not answer 200.
func get(url string) string {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// sha256hex is the hex sha256 of data, as the agent names artifacts.
func sha256hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := fixture.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
