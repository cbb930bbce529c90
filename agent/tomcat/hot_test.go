package tomcat_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/tomcat"
	"github.com/baepo/baepo/internal/fixture"
	"github.com/baepo/baepo/internal/loadgen"
	"github.com/baepo/baepo/sdk"
)

const managerPassword = "s3cret-manager-pw"

// hotFixture is newFixture with what deploy_mode hot needs, as
// docs/agent.md tells an admin to set it up: the manager on loopback, its
// user, autoDeploy off, and the password in a file only its owner reads.
func hotFixture(t *testing.T, contextPath string) *tomcatFixture {
	t.Helper()
	f := newFixture(t, contextPath)
	if err := fixture.EnableManager(f.base, "baepo", managerPassword); err != nil {
		t.Fatal(err)
	}
	if err := fixture.SetHostAttr(f.base, "autoDeploy", "false"); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(f.dir, "manager.pw")
	if err := os.WriteFile(pw, []byte(managerPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.inst.Mode = "hot"
	f.inst.Config["manager_password_file"] = pw
	return f
}

// wars lists the context's WARs in webapps/.
func (f *tomcatFixture) wars(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.base, "webapps"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".war") {
			out = append(out, e.Name())
		}
	}
	return out
}

// get returns the body of path, trimmed, or fails the test.
func (f *tomcatFixture) get(t *testing.T, path string) string {
	t.Helper()
	status, body, err := fixture.Get(t.Context(), f.url(path))
	if err != nil || status != 200 {
		t.Fatalf("GET %s: %d %q %v", path, status, body, err)
	}
	return strings.TrimSpace(body)
}

func (f *tomcatFixture) pid(t *testing.T, d *tomcat.Driver) int {
	t.Helper()
	st, err := d.Status(t.Context(), f.inst)
	if err != nil || !st.Running {
		t.Fatalf("status = %+v, %v", st, err)
	}
	return st.PID
}

// startProber watches path on the instance while the test deploys.
func startProber(t *testing.T, f *tomcatFixture, path string) *loadgen.Load {
	t.Helper()
	l, err := loadgen.Probe(f.url(path))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestHotDeploy runs a release's life through hot installs on one JVM:
// install while stopped, hot installs, a version that fails to start, a
// rollback to a version still deployed, retire, and a version whose health
// fails rolled back; the JVM's pid never changes and a prober sees no
// failed request and no version that failed to start.
func TestHotDeploy(t *testing.T) {
	f := hotFixture(t, "/app")
	d := tomcat.New()
	ctx := t.Context()
	if err := d.Validate(ctx, f.inst); err != nil {
		t.Fatal(err)
	}
	hot := func(rel sdk.Release) sdk.Release { rel.Hot = true; return rel }
	v1, v2 := hot(f.war(t, "v1", fixture.WAROptions{})), hot(f.war(t, "v2", fixture.WAROptions{}))
	bad := hot(f.war(t, "bad", fixture.WAROptions{FailStart: true}))
	sick := hot(f.war(t, "sick", fixture.WAROptions{FailHealth: true}))

	// Stopped: the release becomes the one version in webapps/.
	if _, err := d.Install(ctx, f.inst, v1); err != nil {
		t.Fatal(err)
	}
	if got := f.wars(t); !slices.Equal(got, []string{"app##000001-v1.war"}) {
		t.Fatalf("webapps after install while stopped: %v", got)
	}
	if _, err := d.Start(ctx, f.inst); err != nil {
		t.Fatal(err)
	}
	f.waitBody(t, d, "/app/version.txt", "v1")
	pid := f.pid(t, d)
	probe := startProber(t, f, "/app/version.txt")

	res, err := d.Install(ctx, f.inst, v2)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "/app/version.txt"); got != "v2" {
		t.Fatalf("after hot install of v2 (%s): serves %q", res.Message, got)
	}
	if res.Output["version"] != "000002-v2" || !strings.Contains(res.Message, "without a restart") {
		t.Errorf("install v2: %+v", res)
	}

	// A version that fails to start fails the install and never serves.
	_, err = d.Install(ctx, f.inst, bad)
	if err == nil || !strings.Contains(err.Error(), "failed to start") || !strings.Contains(err.Error(), "keep serving") {
		t.Fatalf("install of a WAR that fails to start: %v", err)
	}
	if got := f.get(t, "/app/version.txt"); got != "v2" {
		t.Fatalf("after the failed install: serves %q", got)
	}
	if got := f.wars(t); !slices.Equal(got, []string{"app##000001-v1.war", "app##000002-v2.war"}) {
		t.Fatalf("webapps after the failed install: %v", got)
	}

	// A rollback to v1, still deployed: v2 goes, v1 serves at once.
	res, err = d.Install(ctx, f.inst, v1)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "/app/version.txt"); got != "v1" || !strings.Contains(res.Message, "serves again") {
		t.Fatalf("after rollback to v1 (%s): serves %q", res.Message, got)
	}
	if got := f.wars(t); !slices.Equal(got, []string{"app##000001-v1.war"}) {
		t.Fatalf("webapps after the rollback: %v", got)
	}

	// v2 again: a new version, newest of all.
	if _, err := d.Install(ctx, f.inst, v2); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "/app/version.txt"); got != "v2" {
		t.Fatalf("after v2 again: serves %q", got)
	}
	res, err = d.Step(ctx, f.inst, "retire", map[string]string{"drain_time": "5s"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.wars(t); !slices.Equal(got, []string{"app##000002-v2.war"}) || !strings.Contains(res.Message, `"000001-v1" (no sessions)`) {
		t.Fatalf("after retire (%s): webapps %v", res.Message, got)
	}
	if got := f.get(t, "/app/version.txt"); got != "v2" {
		t.Fatalf("after retire: serves %q", got)
	}
	res, err = d.Step(ctx, f.inst, "retire", nil)
	if err != nil || !strings.Contains(res.Message, "nothing to retire") {
		t.Fatalf("retire again: %+v, %v", res, err)
	}

	// A version that starts but is sick serves; the flow's rollback
	// returns to v2, still deployed.
	if _, err := d.Install(ctx, f.inst, sick); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := fixture.Get(ctx, f.url("/app/health")); status != 404 {
		t.Fatalf("health of the sick version: %d, want 404", status)
	}
	if _, err := d.Install(ctx, f.inst, v2); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "/app/health"); got != "ok" {
		t.Fatalf("health after the rollback: %q", got)
	}

	rep := probe.Stop()
	if rep.Failed > 0 || rep.Bodies["bad"] > 0 || rep.Bodies["v1"] == 0 || rep.Bodies["v2"] == 0 {
		t.Errorf("prober: %v, %s: %v", rep.Bodies, rep, rep.Examples)
	}
	if got := f.pid(t, d); got != pid {
		t.Errorf("pid %d after the hot installs, was %d: Tomcat restarted", got, pid)
	}
}

// Switching a service between restart and hot leaves one WAR of the
// context: a restart install removes the versions, and retire the
// unversioned WAR that a hot install ran beside.
func TestHotModeSwitch(t *testing.T) {
	f := hotFixture(t, "/app")
	d := tomcat.New()
	ctx := t.Context()
	hot := func(rel sdk.Release) sdk.Release { rel.Hot = true; return rel }
	v1, v2, v3 := hot(f.war(t, "v1", fixture.WAROptions{})), f.war(t, "v2", fixture.WAROptions{}), hot(f.war(t, "v3", fixture.WAROptions{}))

	if _, err := d.Install(ctx, f.inst, v1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Install(ctx, f.inst, v2); err != nil { // restart mode, stopped
		t.Fatal(err)
	}
	if got := f.wars(t); !slices.Equal(got, []string{"app.war"}) {
		t.Fatalf("after hot then restart: %v", got)
	}
	if _, err := d.Start(ctx, f.inst); err != nil {
		t.Fatal(err)
	}
	f.waitBody(t, d, "/app/version.txt", "v2")
	if _, err := d.Install(ctx, f.inst, v3); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "/app/version.txt"); got != "v3" {
		t.Fatalf("hot beside an unversioned WAR: serves %q", got)
	}
	res, err := d.Step(ctx, f.inst, "retire", map[string]string{"drain_time": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.wars(t); !slices.Equal(got, []string{"app##000001-v3.war"}) {
		t.Fatalf("after restart then hot and retire (%s): %v", res.Message, got)
	}
	if got := f.get(t, "/app/version.txt"); got != "v3" {
		t.Fatalf("after retire: serves %q", got)
	}
}

// Validate in deploy_mode hot says, in one line, what is missing and what
// to change.
func TestHotValidate(t *testing.T) {
	f := hotFixture(t, "/app")
	d := tomcat.New()
	if err := d.Validate(t.Context(), f.inst); err != nil {
		t.Fatalf("a complete setup: %v", err)
	}
	restore := func(path string) func() {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return func() { os.WriteFile(path, data, 0o644) }
	}
	conf := filepath.Join(f.base, "conf")
	pw := f.inst.Config["manager_password_file"]
	for _, tt := range []struct {
		name  string
		spoil func() (undo func())
		want  string
	}{
		{"no password file key", func() func() {
			delete(f.inst.Config, "manager_password_file")
			return func() { f.inst.Config["manager_password_file"] = pw }
		}, "manager_password_file: missing"},
		{"password file missing", func() func() {
			f.inst.Config["manager_password_file"] = pw + ".nope"
			return func() { f.inst.Config["manager_password_file"] = pw }
		}, "manager_password_file: stat " + pw + ".nope: no such file"},
		{"password file world-readable", func() func() {
			os.Chmod(pw, 0o644)
			return func() { os.Chmod(pw, 0o600) }
		}, "is readable by every user: chmod o-r " + pw},
		{"no manager", func() func() {
			p := filepath.Join(conf, "Catalina", "localhost", "manager.xml")
			undo := restore(p)
			os.Remove(p)
			return undo
		}, "has no manager: write " + filepath.Join(conf, "Catalina", "localhost", "manager.xml")},
		{"no user", func() func() {
			f.inst.Config["manager_user"] = "deployer"
			return func() { delete(f.inst.Config, "manager_user") }
		}, `manager_user: ` + filepath.Join(conf, "tomcat-users.xml") + ` has no user "deployer" with role manager-script`},
		{"autoDeploy on", func() func() {
			undo := restore(filepath.Join(conf, "server.xml"))
			if err := fixture.SetHostAttr(f.base, "autoDeploy", "true"); err != nil {
				t.Fatal(err)
			}
			return undo
		}, `set autoDeploy="false" on <Host name="localhost">`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			undo := tt.spoil()
			defer undo()
			err := d.Validate(t.Context(), f.inst)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Validate = %v, want one line with %q", err, tt.want)
			}
			// Restart mode needs none of it.
			inst := f.inst
			inst.Mode = "restart"
			if err := d.Validate(t.Context(), inst); err != nil {
				t.Fatalf("Validate in restart mode = %v", err)
			}
		})
	}
}

// retire waits for an old version's sessions: it drops one that outlives
// drain_time, and says so, and undeploys a version whose last session
// ends while it waits, with none dropped.
func TestHotRetireSessions(t *testing.T) {
	f := hotFixture(t, "/app")
	d := tomcat.New()
	ctx := t.Context()
	hot := func(rel sdk.Release) sdk.Release { rel.Hot = true; return rel }
	v1, v2 := hot(f.war(t, "v1", fixture.WAROptions{Sessions: true})), hot(f.war(t, "v2", fixture.WAROptions{Sessions: true}))
	if _, err := d.Install(ctx, f.inst, v1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, f.inst); err != nil {
		t.Fatal(err)
	}
	f.waitBody(t, d, "/app/version.txt", "v1")
	user := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 10 * time.Second}
	}
	get := func(c *http.Client, path string) string {
		t.Helper()
		resp, err := c.Get(f.url(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s %q", path, resp.Status, body)
		}
		return strings.TrimSpace(string(body))
	}

	alice := user()
	if got := get(alice, "/app/session"); got != "v1" {
		t.Fatalf("session on %q", got)
	}
	if _, err := d.Install(ctx, f.inst, v2); err != nil {
		t.Fatal(err)
	}
	if got, gotNew := get(alice, "/app/version.txt"), get(user(), "/app/version.txt"); got != "v1" || gotNew != "v2" {
		t.Fatalf("after the hot install, the session is served by %q and a new user by %q; want v1 and v2", got, gotNew)
	}
	res, err := d.Step(ctx, f.inst, "retire", map[string]string{"drain_time": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "(1 sessions dropped after 1s)") || !slices.Equal(f.wars(t), []string{"app##000002-v2.war"}) {
		t.Fatalf("retire with a session left: %s; webapps %v", res.Message, f.wars(t))
	}

	bob := user()
	if got := get(bob, "/app/session"); got != "v2" {
		t.Fatalf("session on %q", got)
	}
	if _, err := d.Install(ctx, f.inst, v1); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 1)
	pctx := sdk.WithProgress(ctx, func(msg string) {
		if strings.HasPrefix(msg, "waiting for 1 sessions") {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
	})
	type result struct {
		res sdk.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := d.Step(pctx, f.inst, "retire", map[string]string{"drain_time": "10m"})
		done <- result{res, err}
	}()
	select {
	case <-waiting:
	case r := <-done:
		t.Fatalf("retire returned before bob's session ended: %+v, %v", r.res, r.err)
	}
	get(bob, "/app/session?end=1")
	r := <-done
	if r.err != nil || !strings.Contains(r.res.Message, `"000002-v2" (no sessions)`) || !slices.Equal(f.wars(t), []string{"app##000003-v1.war"}) {
		t.Fatalf("retire once the session ended: %+v, %v; webapps %v", r.res, r.err, f.wars(t))
	}
}

// The ROOT context ("/") hot deploys as ROOT##<version>.war.
func TestHotDeployROOT(t *testing.T) {
	f := hotFixture(t, "/")
	d := tomcat.New()
	ctx := t.Context()
	hot := func(rel sdk.Release) sdk.Release { rel.Hot = true; return rel }
	v1, v2 := hot(f.war(t, "v1", fixture.WAROptions{})), hot(f.war(t, "v2", fixture.WAROptions{}))
	if _, err := d.Install(ctx, f.inst, v1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, f.inst); err != nil {
		t.Fatal(err)
	}
	f.waitBody(t, d, "/version.txt", "v1")
	pid := f.pid(t, d)
	if _, err := d.Install(ctx, f.inst, v2); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "/version.txt"); got != "v2" {
		t.Fatalf("after the hot install: serves %q", got)
	}
	if _, err := d.Step(ctx, f.inst, "retire", map[string]string{"drain_time": "1s"}); err != nil {
		t.Fatal(err)
	}
	if got := f.wars(t); !slices.Equal(got, []string{"ROOT##000002-v2.war"}) {
		t.Fatalf("webapps after retire: %v", got)
	}
	if got := f.pid(t, d); got != pid {
		t.Errorf("pid %d, was %d: Tomcat restarted", got, pid)
	}
}
