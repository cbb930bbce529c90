package e2e_test

// End-to-end tests of the built-in Tomcat driver: the real baepo and
// baepo-agent deploying real WARs (built with jar) to two real Tomcat 10
// instances from Debian's packages, on loopback ports.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
)

// tomcatFleet is a fleet with service A on two Tomcat instances. It
// remembers what its deploys left in place, so that every subtest can ask
// for the state it starts from (ensure) and runs alone as well as after
// any other.
type tomcatFleet struct {
	*fleet
	ports     []int
	wars      map[string]string // version → WAR
	cur, prev string            // the versions current and previous; "" when not known
}

func newTomcatFleet(t testing.TB) *tomcatFleet { return newTomcatFleetWith(t, 2, nil) }

// newTomcatFleetWith is newTomcatFleet with n instances (a1 … an), and
// keys of service A's that setup returns once the instances exist (f.ports
// is set), before the agent starts: "    balancer: …\n". setup may add keys
// to the instances' lines of agent.yaml, "      a1: { catalina_base: …,
// port: … }".
func newTomcatFleetWith(t testing.TB, n int, setup func(f *tomcatFleet, instances []string) string) *tomcatFleet {
	t.Helper()
	if _, err := exec.LookPath("tomcat10-instance-create"); err != nil {
		t.Fatal("tomcat10-instance-create is missing: run `make deps` (as root) to install tomcat10 and tomcat10-user")
	}
	f := &tomcatFleet{fleet: newFleet(t), wars: map[string]string{}}
	f.commands = fmt.Sprintf("  mark: [/usr/bin/touch, \"%s/mark-{instance}-{arg:seconds}\"]\n", f.dir)
	var instances []string
	for i := 1; i <= n; i++ {
		httpPort, shutPort := freePort(t), freePort(t)
		base := filepath.Join(f.dir, fmt.Sprintf("a%d", i))
		if err := fixture.CreateInstance(context.Background(), base, httpPort, shutPort); err != nil {
			t.Fatal(err)
		}
		f.ports = append(f.ports, httpPort)
		instances = append(instances, fmt.Sprintf("      a%d: { catalina_base: %s, port: %d }", i, base, httpPort))
	}
	extra := ""
	if setup != nil {
		extra = setup(f, instances)
	}
	f.start(`  A:
    driver: tomcat
    context: /app
    keep_releases: 3
    health: { path: /app/health, timeout: 60s, interval: 50ms }
` + extra + `    instances:
` + strings.Join(instances, "\n") + "\n")
	for _, v := range []string{"v1", "v2"} {
		f.wars[v] = f.war(v, fixture.WAROptions{})
	}
	f.wars["broken"] = f.war("broken", fixture.WAROptions{FailHealth: true})
	return f
}

// serving returns what instance i (0 or 1) serves at /app/version.txt, or ""
// when it does not answer.
func (f *tomcatFleet) serving(i int) string {
	return get(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", f.ports[i]))
}

func (f *tomcatFleet) war(version string, opts fixture.WAROptions) string {
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

func (f *tomcatFleet) wantServing(v1, v2 string) {
	f.t.Helper()
	if got1, got2 := f.serving(0), f.serving(1); got1 != v1 || got2 != v2 {
		f.t.Fatalf("instances serve %q and %q, want %q and %q", got1, got2, v1, v2)
	}
}

// deploy runs the deploy flow with version v and checks it succeeded.
func (f *tomcatFleet) deploy(v string, args ...string) (string, string) {
	f.t.Helper()
	stdout, stderr := f.must(0, append([]string{"run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars[v]}, args...)...)
	f.prev, f.cur = f.cur, v
	f.wantServing(v, v)
	return stdout, stderr
}

// flow writes a template of the test's own into the fleet's flows
// directory and returns the directory, for --flows.
func (f *tomcatFleet) flow(name, code string) string {
	f.t.Helper()
	dir := filepath.Join(f.dir, "flows")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.write(filepath.Join("flows", name+".lua"), code)
	return dir
}

// ensure brings both instances to serve cur, with prev as the previous
// release when it is not "", deploying only what is missing.
func (f *tomcatFleet) ensure(prev, cur string) {
	f.t.Helper()
	if f.cur == cur && (prev == "" || f.prev == prev) {
		if f.serving(0) != cur || f.serving(1) != cur {
			f.must(0, "run", "start", "--server", "local", "--service", "A")
		}
		f.wantServing(cur, cur)
		return
	}
	if prev != "" && f.cur != prev {
		f.deploy(prev)
	}
	f.deploy(cur)
}

// watch polls both instances every 20ms until stop is called and reports
// whether both were ever down at the same time.
func (f *tomcatFleet) watch() (stop func() bool) {
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
	f := newTomcatFleet(t)

	t.Run("deploy v1", func(t *testing.T) {
		f.t = t
		_, stderr := f.deploy("v1")
		if strings.Count(stderr, "artifact uploaded") != 1 {
			t.Fatalf("want one upload for one server:\n%s", stderr)
		}
	})
	t.Run("deploy v2 one instance at a time", func(t *testing.T) {
		f.t = t
		f.ensure("", "v1")
		stop := f.watch()
		stdout, _ := f.deploy("v2", "--junit", "deploy.xml", "--report-json", "deploy.json")
		if stop() {
			t.Fatal("both instances were down at the same time with batch 1")
		}
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
		f.ensure("v1", "v2")
		f.must(0, "run", "rollback", "--server", "local", "--service", "A")
		f.prev, f.cur = "", "v1"
		f.wantServing("v1", "v1")
		stdout, _ := f.must(0, "history", "--server", "local", "--service", "A", "--limit", "4")
		if !strings.Contains(stdout, "rollback") || !strings.Contains(stdout, "jenkins-e2e-7") {
			t.Errorf("history lacks the rollback:\n%s", stdout)
		}
	})
	t.Run("same artifact uploads nothing", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		_, stderr := f.deploy("v2")
		if !strings.Contains(stderr, "0 bytes uploaded") || strings.Contains(stderr, "artifact uploaded") {
			t.Fatalf("v2 was uploaded again:\n%s", stderr)
		}
	})
	t.Run("failed health rolls back", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		stdout, stderr := f.must(1, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars["broken"], "--health_timeout", "8s")
		f.wantServing("v2", "v2")
		out := stdout + stderr
		for _, want := range []string{"did not answer 200", "lines of the A/a1 log", "rolled-back"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		stdout, _ = f.must(0, "history", "--server", "local", "--service", "A", "--limit", "200", "--steps")
		for _, want := range []string{"install", "rollback", "failed", "jenkins-e2e-7"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("history lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("restart stop start status", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		f.must(0, "run", "restart", "--server", "local", "--service", "A")
		f.wantServing("v2", "v2")
		stdout, _ := f.must(0, "status", "--server", "local", "--service", "A", "--report-json", "status.json")
		healthy := regexp.MustCompile(`(?m)^local/A/a[12] +yes +\d+ +\S+ +\S+ +ok +\d{4}-\d\d-\d\dT\S+Z$`)
		header := regexp.MustCompile(`(?m)^INSTANCE +RUNNING +PID +RELEASE +PREVIOUS +HEALTH +CHECKED AT$`)
		if len(healthy.FindAllString(stdout, -1)) != 2 || !header.MatchString(stdout) {
			t.Fatalf("status after a restart:\n%s", stdout)
		}
		var rep struct {
			Instances []struct {
				Steps []struct {
					Output struct {
						Running       bool   `json:"running"`
						PID           int    `json:"pid"`
						Release       string `json:"release"`
						Previous      string `json:"previous"`
						Health        string `json:"health"`
						HealthAt      string `json:"health_at"`
						HealthRelease string `json:"health_release"`
					} `json:"output"`
				} `json:"steps"`
			} `json:"instances"`
		}
		data, err := os.ReadFile(filepath.Join(f.dir, "status.json"))
		if err != nil || json.Unmarshal(data, &rep) != nil || len(rep.Instances) != 2 || len(rep.Instances[0].Steps) != 1 {
			t.Fatalf("report: %v %s", err, data)
		}
		if st := rep.Instances[0].Steps[0].Output; !st.Running || st.PID == 0 || st.Release == "" || st.Previous == "" || st.Health != "ok" || st.HealthAt == "" || st.HealthRelease != st.Release {
			t.Fatalf("report's status of a1: %+v", st)
		}

		f.must(0, "run", "stop", "--server", "local", "--service", "A")
		f.wantServing("", "")
		stdout, _ = f.must(3, "status", "--server", "local", "--service", "A")
		if !regexp.MustCompile(`(?m)^local/A/a1 +no +- +\S+ +\S+ +unknown: not running +-$`).MatchString(stdout) {
			t.Fatalf("status of stopped instances:\n%s", stdout)
		}

		// Started without a health check, an instance is not healthy yet.
		f.write("start-only.lua", `return {
  name = "start-only",
  description = "start, without a health check",
  params = { service = { type = "string", required = true, doc = "service" } },
  each = function(i, ctx) i:start() end,
}
`)
		f.must(0, "run", "start-only", "--flows", f.dir, "--server", "local", "--service", "A")
		stdout, _ = f.must(3, "status", "--server", "local")
		if !regexp.MustCompile(`(?m)^local/A/a1 +yes +\d+ +\S+ +\S+ +not checked since start +-$`).MatchString(stdout) {
			t.Fatalf("status of instances started without a health check:\n%s", stdout)
		}
		f.must(0, "run", "start", "--server", "local", "--service", "A")
		f.wantServing("v2", "v2")
		f.must(0, "status", "--server", "local")
	})
	t.Run("commands take arguments", func(t *testing.T) {
		f.t = t
		flows := f.flow("mark", `return {
  name = "mark",
  description = "run the mark command with one argument",
  params = {
    service = { type = "string", required = true, doc = "service" },
    arg = { type = "string", required = true, doc = "the argument's name" },
    value = { type = "string", required = true, doc = "its value" },
  },
  each = function(i, ctx) i:run("mark", { [ctx.params.arg] = ctx.params.value }) end,
}
`)
		f.must(0, "run", "mark", "--flows", flows, "--server", "local", "--service", "A", "--arg", "seconds", "--value", "7 or; rm")
		for _, inst := range []string{"a1", "a2"} {
			if _, err := os.Stat(filepath.Join(f.dir, "mark-"+inst+"-7 or; rm")); err != nil {
				t.Errorf("the command did not get its argument: %v", err)
			}
		}
		// The agent refuses the step before running it: nothing changed, 2.
		stdout, stderr := f.must(2, "run", "mark", "--flows", flows, "--server", "local", "--service", "A", "--arg", "secs", "--value", "7")
		if out := stdout + stderr; !strings.Contains(out, `command mark: unknown argument "secs" (mark takes seconds)`) {
			t.Fatalf("unknown argument:\n%s", out)
		}
	})
	t.Run("dry run changes nothing", func(t *testing.T) {
		f.t = t
		f.ensure("v1", "v2")
		history, _ := f.must(0, "history", "--server", "local", "--service", "A", "--limit", "200")
		data, err := os.ReadFile(f.wars["v1"])
		if err != nil {
			t.Fatal(err)
		}
		stdout, _ := f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars["v1"], "--dry-run")
		for _, re := range []string{
			`(?m)^batch 2 of 2:$`,
			`(?m)^local A/a2: stop, install\(artifact=\S+app-v1\.war, mode=restart\), start, health\(timeout=1m30s\)$`,
			`(?m)^  current: release \S+ \(app-v2\.war\), previous \S+, running, health ok$`,
			`(?m)^  installs: app-v1\.war sha256:` + sha256hex(data) + `$`,
		} {
			if n := len(regexp.MustCompile(re).FindAllString(stdout, -1)); n == 0 {
				t.Errorf("the plan lacks %s:\n%s", re, stdout)
			}
		}
		// A command the agent does not allow-list fails the plan, in the
		// agent's words, before anything changed.
		flows := f.flow("drain-all", `return {
  name = "drain-all",
  description = "stop after a command the agent does not allow",
  params = { service = { type = "string", required = true, doc = "service" } },
  each = function(i, ctx) i:run("drain"); i:stop() end,
}
`)
		stdout, _ = f.must(2, "run", "drain-all", "--flows", flows, "--server", "local", "--service", "A", "--dry-run")
		if !strings.Contains(stdout, `local: command "drain" is not allow-listed on this agent (commands: mark)`) {
			t.Fatalf("the plan of a command not allow-listed:\n%s", stdout)
		}
		f.wantServing("v2", "v2")
		if after, _ := f.must(0, "history", "--server", "local", "--service", "A", "--limit", "200"); after != history {
			t.Fatalf("a dry run changed the history:\nbefore:\n%s\nafter:\n%s", history, after)
		}
	})
	t.Run("history", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		stdout, _ := f.must(0, "history", "--server", "local", "--service", "A", "--limit", "200", "--steps")
		for _, want := range []string{"install", "health", "ok", "jenkins-e2e-7"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("history lacks %q:\n%s", want, stdout)
			}
		}
		code, _, stderr := f.baepo(nil, "history", "--server", "local", "--limit", "-1")
		if code != 2 || !strings.Contains(stderr, "limit") {
			t.Errorf("history --limit -1: exit %d:\n%s", code, stderr)
		}
	})
	t.Run("history of runs", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		started := time.Now().Add(-time.Second).UTC().Truncate(time.Second)
		build := []string{"BUILD_TAG=jenkins-audit-8", "JOB_NAME=audit", "BUILD_NUMBER=8", "BUILD_URL=https://ci.example/job/audit/8/", "USER=auditor"}
		if code, stdout, stderr := f.baepo(build, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars["v1"]); code != 0 {
			t.Fatalf("deploy: exit %d\n%s%s", code, stdout, stderr)
		}
		f.prev, f.cur = f.cur, "v1"
		f.wantServing("v1", "v1")
		data, err := os.ReadFile(f.wars["v1"])
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256hex(data)

		// One line for the run, with what an auditor asks.
		stdout, _ := f.must(0, "history", "--server", "local", "--build", "jenkins-audit-8")
		line := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\S+ +local +deploy +succeeded +0 +app-v1\.war@sha256:` + digest[:12] + ` +auditor +jenkins-audit-8 +https://ci\.example/job/audit/8/$`)
		if !line.MatchString(stdout) || strings.Count(stdout, "\n") != 2 {
			t.Fatalf("history of the build: want its one run:\n%s", stdout)
		}

		// --output json parses, and has the whole record.
		stdout, _ = f.must(0, "history", "--server", "local", "--build", "audit#8", "--output", "json")
		var out struct {
			Runs []struct {
				ID        string    `json:"id"`
				Started   time.Time `json:"started"`
				Ended     time.Time `json:"ended"`
				Template  string    `json:"template"`
				Outcome   string    `json:"outcome"`
				ExitCode  *int      `json:"exit_code"`
				Artifacts []struct {
					SHA256 string `json:"sha256"`
					Name   string `json:"name"`
				} `json:"artifacts"`
				Counts    map[string]int `json:"counts"`
				Build     struct{ URL string }
				User      string   `json:"user"`
				Servers   []string `json:"servers"`
				Instances []string `json:"instances"`
				Steps     int      `json:"steps"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Runs) != 1 {
			t.Fatalf("history --output json: %v\n%s", err, stdout)
		}
		r := out.Runs[0]
		if r.ID == "" || r.Started.Before(started) || r.Ended.Before(r.Started) || r.Template != "deploy" || r.Outcome != "succeeded" || r.ExitCode == nil || *r.ExitCode != 0 ||
			len(r.Artifacts) != 1 || r.Artifacts[0].SHA256 != digest || r.Counts["ok"] != 2 || r.Build.URL != "https://ci.example/job/audit/8/" || r.User != "auditor" ||
			strings.Join(r.Servers, ",") != "local" || strings.Join(r.Instances, ",") != "local/A/a1,local/A/a2" || r.Steps != 8 {
			t.Fatalf("the run's record: %+v", r)
		}

		// --steps: the run's steps, each naming it.
		stdout, _ = f.must(0, "history", "--server", "local", "--build", "jenkins-audit-8", "--steps", "--instance", "a2")
		for _, step := range []string{"stop", "install", "start", "health"} {
			if !regexp.MustCompile(`(?m)^.* local +A +a2 +` + step + ` +ok +\S+ +jenkins-audit-8 +` + r.ID + `$`).MatchString(stdout) {
				t.Errorf("history --steps lacks a2's %s:\n%s", step, stdout)
			}
		}
		if strings.Contains(stdout, " a1 ") {
			t.Errorf("history --steps --instance a2 shows a1:\n%s", stdout)
		}

		// Filters: since, instance, service; status runs leave no record.
		f.must(0, "status", "--server", "local")
		stdout, _ = f.must(0, "history", "--server", "local", "--since", "1h", "--instance", "a1", "--limit", "1")
		if !strings.Contains(stdout, "jenkins-audit-8") {
			t.Errorf("the newest run of the last hour on a1 is not the deploy:\n%s", stdout)
		}
		stdout, _ = f.must(0, "history", "--server", "local", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		if stdout != "no runs\n" {
			t.Errorf("history since an hour from now:\n%s", stdout)
		}
		stdout, _ = f.must(0, "history", "--server", "local", "--service", "B", "--build", "jenkins-audit-8")
		if stdout != "no runs\n" {
			t.Errorf("history of a service the run did not touch:\n%s", stdout)
		}

		// A failed deploy: its outcome and exit code.
		f.must(1, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars["broken"], "--health_timeout", "5s")
		f.wantServing("v1", "v1")
		stdout, _ = f.must(0, "history", "--server", "local", "--limit", "1")
		if !regexp.MustCompile(`(?m)^.* local +deploy +failed-rolled-back +1 +app-broken\.war@sha256:[0-9a-f]{12} +\S+ +jenkins-e2e-7 +- *$`).MatchString(stdout) {
			t.Errorf("history of a failed deploy:\n%s", stdout)
		}
	})
	t.Run("bad credentials change nothing", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		code, _, stderr := f.baepo([]string{"BAD_TOKEN=not-the-token"}, "run", "deploy", "--server", "bad", "--service", "A", "--artifact", f.wars["v1"])
		if code != 4 || !strings.Contains(stderr, "refused the credentials") {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		f.wantServing("v2", "v2")
		for _, tok := range []string{"", "wrong"} {
			if status, body := f.api("GET", "/v1/services", tok, nil); status != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) {
				t.Fatalf("token %q: %d %s", tok, status, body)
			}
		}
	})
	t.Run("bad input is refused", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		notZip := f.write("not-a-war.war", "this is not a zip")
		_, stderr := f.must(2, "run", "deploy", "--server", "local", "--service", "A", "--artifact", notZip)
		if !strings.Contains(stderr, "not a zip") {
			t.Fatalf("stderr:\n%s", stderr)
		}
		if status, body := f.api("PUT", "/v1/artifacts/sha256/"+strings.Repeat("ab", 32), token, []byte("PK\x03\x04 whatever")); status != http.StatusUnprocessableEntity {
			t.Fatalf("digest mismatch: %d %s", status, body)
		}
		for _, path := range []string{
			"/v1/services/../instances/a1/steps/stop",
			"/v1/services/A/instances/..%2Fa1/steps/stop",
			"/v1/services/A/instances/a1/steps/..",
		} {
			if status, body := f.api("POST", path, token, nil); status != http.StatusBadRequest && status != http.StatusNotFound {
				t.Fatalf("%s: %d %s", path, status, body)
			}
		}
		f.must(2, "run", "deploy", "--server", "local", "--service", "../A", "--artifact", f.wars["v1"])
		f.wantServing("v2", "v2")
	})
	t.Run("a refused command changes nothing", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		flows := f.flow("migrate", `return {
  name = "migrate",
  description = "run a command the agent does not allow",
  params = { service = { type = "string", required = true, doc = "service" } },
  each = function(i, ctx) i:run("migrate") end,
}
`)
		stdout, stderr := f.must(2, "run", "migrate", "--flows", flows, "--server", "local", "--service", "A", "--report-json", "migrate.json")
		if out := stdout + stderr; !strings.Contains(out, `command "migrate" is not allow-listed`) || !strings.Contains(out, "migrate failed-unchanged") {
			t.Fatalf("output:\n%s", out)
		}
		if data, err := os.ReadFile(filepath.Join(f.dir, "migrate.json")); err != nil || !strings.Contains(string(data), `"exit_code": 2`) {
			t.Fatalf("report: %v %s", err, data)
		}
		f.wantServing("v2", "v2")
	})
	t.Run("agent crash mid-step", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
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
		stdout, _ := f.must(0, "history", "--server", "local", "--service", "A", "--limit", "5", "--steps")
		if !regexp.MustCompile(`(?m)^.*a1\s+restart\s+interrupted`).MatchString(stdout) {
			t.Fatalf("history does not show the restart as interrupted:\n%s", stdout)
		}
		// Its run never said how it ended: the restarted agent says unknown,
		// with no template, exit code or artifact, but the build.
		stdout, _ = f.must(0, "history", "--server", "local", "--limit", "1")
		if !regexp.MustCompile(`(?m)^.* local +- +unknown +- +- +\S+ +jenkins-e2e-7 +-$`).MatchString(stdout) {
			t.Fatalf("history does not show the crashed run as unknown:\n%s", stdout)
		}
		// The restarted agent holds no lock or lease of the dead run.
		f.must(0, "run", "restart", "--server", "local", "--service", "A")
		f.wantServing("v2", "v2")
	})
	t.Run("concurrent deploys", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		var codes [2]int
		var outs [2]string
		var wg sync.WaitGroup
		for i, v := range []string{"v1", "v2"} {
			wg.Go(func() {
				c, so, se := f.baepo(nil, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars[v])
				codes[i], outs[i] = c, so+se
			})
			time.Sleep(time.Second)
		}
		wg.Wait()
		if codes[0] != 0 || codes[1] != 4 || !strings.Contains(outs[1], "busy") || !strings.Contains(outs[1], "jenkins-e2e-7") {
			t.Fatalf("exits %v\nfirst:\n%s\nsecond:\n%s", codes, outs[0], outs[1])
		}
		f.prev, f.cur = f.cur, "v1"
		f.wantServing("v1", "v1")
	})
	t.Run("failed canary leaves the rest untouched", func(t *testing.T) {
		f.t = t
		f.ensure("", "v2")
		pid := regexp.MustCompile(`(?m)^local/A/a2 +yes +(\d+) `)
		before, _ := f.must(0, "status", "--server", "local", "--service", "A")
		stdout, stderr := f.must(1, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars["broken"], "--health_timeout", "8s", "--canary", "1", "--batch", "2")
		f.wantServing("v2", "v2")
		out := stdout + stderr
		for _, want := range []string{"did not answer 200", "canary failed: no other instance starts"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if !regexp.MustCompile(`(?m)^local +A/a2 +- +instance +skipped +- +not started: canary local/A/a1 failed$`).MatchString(stdout) {
			t.Fatalf("a2 is not skipped:\n%s", stdout)
		}
		after, _ := f.must(0, "status", "--server", "local", "--service", "A")
		if p1, p2 := pid.FindStringSubmatch(before), pid.FindStringSubmatch(after); p1 == nil || p2 == nil || p1[1] != p2[1] {
			t.Fatalf("a2 was restarted:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		// a1's releases were pruned and rolled back: its previous is not
		// known any more.
		f.prev = ""
	})
}
