package e2e_test

// Crash consistency of install and rollback: a real agent killed at each
// instant of a step (by its test-only crash hook), started again, must
// report as current exactly the release that is in webapps/ and that the
// real Tomcat serves, and leave no temp copy of a WAR behind.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/internal/fixture"
)

// crashFleet is a fleet with one Tomcat instance, A/a1 at /app, driven
// through the agent's API so that each step is one call.
type crashFleet struct {
	*fleet
	port    int
	base    string
	client  *api.Client
	digests map[string]string // version → sha256 of its WAR, uploaded
}

func newCrashFleet(t *testing.T) *crashFleet {
	t.Helper()
	if _, err := exec.LookPath("tomcat10-instance-create"); err != nil {
		t.Fatal("tomcat10-instance-create is missing: run `make deps` (as root) to install tomcat10 and tomcat10-user")
	}
	f := &crashFleet{fleet: newFleet(t), port: freePort(t), digests: map[string]string{}}
	f.base = filepath.Join(f.dir, "a1")
	if err := fixture.CreateInstance(context.Background(), f.base, f.port, freePort(t)); err != nil {
		t.Fatal(err)
	}
	f.start(fmt.Sprintf(`  A:
    driver: tomcat
    context: /app
    instances:
      a1: { catalina_base: %s, port: %d, stop_timeout: 10s }
`, f.base, f.port))
	f.client = &api.Client{Base: f.agentURL, Token: token}
	for _, v := range []string{"v1", "v2", "v3"} {
		war, err := fixture.BuildWAR(context.Background(), filepath.Join(f.dir, "wars", v), v, fixture.WAROptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(war)
		if err != nil {
			t.Fatal(err)
		}
		f.digests[v] = sha256hex(data)
		if _, err := f.client.PutArtifact(context.Background(), f.digests[v], strings.NewReader(string(data)), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// step runs one step on A/a1.
func (f *crashFleet) step(name string, args map[string]any) (api.StepResult, error) {
	return f.client.Step(context.Background(), "A", "a1", name, api.StepRequest{Args: args}, nil)
}

func (f *crashFleet) must(name string, args map[string]any) api.StepResult {
	f.t.Helper()
	res, err := f.step(name, args)
	if err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	return res
}

func installArgs(digest string) map[string]any {
	return map[string]any{"artifact": map[string]any{"sha256": digest, "name": "app.war"}}
}

// crash restarts the agent with its crash hook set to point, runs the step,
// which must kill the agent, and starts the agent again without the hook.
func (f *crashFleet) crash(point, name string, args map[string]any) {
	f.t.Helper()
	f.stopAgent()
	f.t.Setenv("BAEPO_TEST_CRASH_AT", point)
	f.startAgent()
	f.t.Setenv("BAEPO_TEST_CRASH_AT", "")
	logStart := len(f.agentLog.String())
	if res, err := f.step(name, args); err == nil {
		f.t.Fatalf("%s with a crash at %s succeeded: %+v", name, point, res)
	}
	cmd := f.agent
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if !strings.Contains(fmt.Sprint(err), "killed") {
			f.t.Fatalf("agent exited with %v, want killed at %s\n%s", err, point, f.agentLog.String()[logStart:])
		}
	case <-time.After(30 * time.Second):
		f.t.Fatalf("the agent did not die at %s\n%s", point, f.agentLog.String()[logStart:])
	}
	if want := "crashpoint: killing the process at " + point; !strings.Contains(f.agentLog.String()[logStart:], want) {
		f.t.Fatalf("the agent died elsewhere than at %s:\n%s", point, f.agentLog.String()[logStart:])
	}
	f.agent = nil
	f.startAgent()
}

// consistent checks that status, webapps/ and Tomcat agree on version:
// current is the release of its WAR, that WAR is webapps/app.war, nothing
// is half done, Tomcat runs as it did before the step (recovery neither
// starts nor stops it) and, when serve, Tomcat, started if it is not
// running, serves version. It leaves Tomcat as it found it.
func (f *crashFleet) consistent(version string, wasRunning, serve bool) {
	f.t.Helper()
	st, err := f.client.Instance(context.Background(), "A", "a1")
	if err != nil {
		f.t.Fatal(err)
	}
	running := st.Output["running"] == true
	if running != wasRunning {
		f.t.Errorf("after the step Tomcat runs: %v, want %v", running, wasRunning)
	}
	rel, _ := st.Output["release"].(string)
	if !strings.HasSuffix(rel, "-"+f.digests[version][:8]) {
		f.t.Errorf("status says release %q, want one of %s (%s)", rel, version, f.digests[version][:8])
	}
	if st.Output["interrupted"] != nil {
		f.t.Errorf("status says %v is not recovered", st.Output["interrupted"])
	}
	webapps := filepath.Join(f.base, "webapps")
	data, err := os.ReadFile(filepath.Join(webapps, "app.war"))
	if err != nil {
		f.t.Fatal(err)
	}
	if sha256hex(data) != f.digests[version] {
		f.t.Errorf("webapps/app.war is not %s's WAR", version)
	}
	if tmps, _ := filepath.Glob(filepath.Join(webapps, ".baepo-*.tmp")); len(tmps) > 0 {
		f.t.Errorf("webapps/ still holds %v", tmps)
	}
	if _, err := os.Lstat(filepath.Join(f.dir, "data", "instances", "A", "a1", "intent")); err == nil {
		f.t.Error("the intent is still there")
	}
	if !serve {
		return
	}
	if !running {
		f.must("start", nil)
	}
	served := ""
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if served = get(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", f.port)); served == version {
			break
		}
	}
	if served != version {
		f.t.Errorf("Tomcat serves %q, want %q", served, version)
	}
	if !running {
		f.must("stop", nil)
	}
}

func TestCrashDuringInstall(t *testing.T) {
	f := newCrashFleet(t)
	steps := []struct {
		name    string
		running bool   // Tomcat runs during the step (the flows stop it first)
		point   string // where the agent dies
		step    string
		version string // the version the step installs (install)
		want    string // what every view says after the restart
		last    bool
	}{
		// The first install has nothing to go back to: it completes.
		{name: "first install, killed after the copy", point: "install-copied", step: "install", version: "v1", want: "v1"},
		// Any other goes back to where it found the instance.
		{name: "install, killed after the intent", point: "install-intent", step: "install", version: "v2", want: "v1"},
		{name: "install, killed after the switch", point: "install-switched", step: "install", version: "v2", want: "v1"},
		{name: "install, killed after the copy", point: "install-copied", step: "install", version: "v2", want: "v1"},
		{name: "install, killed after the WAR is in place", point: "install-placed", step: "install", version: "v2", want: "v1"},
		{name: "install into a running Tomcat, killed after the WAR is in place", running: true, point: "install-placed", step: "install", version: "v2", want: "v1"},
		{name: "install v2", step: "install", version: "v2", want: "v2"},
		{name: "rollback, killed after the switch", point: "rollback-switched", step: "rollback", want: "v2"},
		{name: "rollback, killed after the copy", point: "install-copied", step: "rollback", want: "v2"},
		{name: "rollback", step: "rollback", want: "v1"},
		{name: "install v3 after the crashes", step: "install", version: "v3", want: "v3", last: true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f.t = t
			if s.running {
				f.must("start", nil)
				defer f.must("stop", nil)
			}
			var args map[string]any
			if s.version != "" {
				args = installArgs(f.digests[s.version])
			}
			if s.point == "" {
				f.must(s.step, args)
			} else {
				f.crash(s.point, s.step, args)
			}
			// Steps that only set up the next crash need not be served;
			// the last one shows that deploys go on working.
			f.consistent(s.want, s.running, s.point != "" || s.last)
		})
	}
}
