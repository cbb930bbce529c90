package e2e_test

// End-to-end test of hot deploys: the real baepo and baepo-agent deploying
// real WARs to one real Tomcat 10 with deploy_mode hot, through Tomcat's
// manager, with the built-in deploy and rollback flows.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
	"github.com/baepo/baepo/internal/loadgen"
)

// TestEndToEndHotDeploy deploys, rolls back, and fails two deploys (a
// version that does not start, one whose health fails) on one Tomcat with
// deploy_mode hot; a prober sees no failed request, and the JVM never
// restarts.
func TestEndToEndHotDeploy(t *testing.T) {
	f := newTomcatFleetWith(t, 1, hotSetup(t))
	httpPort, base := f.ports[0], filepath.Join(f.dir, "a1")
	f.wars["v1"] = f.war("v1", fixture.WAROptions{Sessions: true})
	f.wars["nostart"] = f.war("nostart", fixture.WAROptions{FailStart: true})
	f.wars["sick"] = f.war("sick", fixture.WAROptions{FailHealth: true})
	serving := func() string { return f.serving(0) }
	wantServing := func(v string) {
		t.Helper()
		if got := serving(); got != v {
			t.Fatalf("a1 serves %q, want %q", got, v)
		}
	}
	pidFile := filepath.Join(f.dir, "data", "instances", "A", "a1", "catalina.pid")
	pid := func() int {
		t.Helper()
		data, err := os.ReadFile(pidFile)
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || n == 0 {
			t.Fatalf("pid file: %v %q", err, data)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", n)); err != nil {
			t.Fatalf("pid %d does not run", n)
		}
		return n
	}
	wars := func() []string {
		t.Helper()
		m, _ := filepath.Glob(filepath.Join(base, "webapps", "*.war"))
		for i := range m {
			m[i] = filepath.Base(m[i])
		}
		return m
	}
	hotdeploy := func(want int, v string, args ...string) string {
		t.Helper()
		stdout, stderr := f.must(want, append([]string{"run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars[v]}, args...)...)
		return stdout + stderr
	}

	// Nothing runs yet: the deploy takes the restart path.
	f.must(0, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars["v1"])
	wantServing("v1")
	if got := wars(); !slices.Equal(got, []string{"app.war"}) {
		t.Fatalf("webapps after the first deploy: %v", got)
	}
	jvm := pid()

	// deploy_mode hot: v2 goes beside the unversioned v1, which retire
	// undeploys; the JVM runs on.
	watch := probe(t, fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort))
	out := hotdeploy(0, "v2")
	wantServing("v2")
	if got := wars(); len(got) != 1 || !strings.HasPrefix(got[0], "app##000001-") || !strings.Contains(out, "retire") {
		t.Fatalf("webapps after hot deploy and retire: %v\n%s", got, out)
	}
	rep := watch.Stop()
	if rep.Failed > 0 || rep.Bodies["v1"] == 0 || rep.Bodies["v2"] == 0 || len(rep.Bodies) != 2 {
		t.Fatalf("prober during the hot deploy: %v, %s, failures %v", rep.Bodies, rep, rep.Examples)
	}

	// A hot rollback to v1, retired since: it is deployed again as the
	// newest version.
	watch = probe(t, fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort))
	f.must(0, "run", "rollback", "--server", "local", "--service", "A")
	wantServing("v1")
	rep = watch.Stop()
	if rep.Failed > 0 || rep.Bodies["v1"] == 0 {
		t.Fatalf("prober during the hot rollback: %v, %s, failures %v", rep.Bodies, rep, rep.Examples)
	}
	if got := wars(); len(got) != 1 || !strings.HasPrefix(got[0], "app##000002-") {
		t.Fatalf("webapps after the hot rollback: %v", got)
	}

	// A version that fails to start fails the install; v1 serves
	// throughout.
	watch = probe(t, fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort))
	out = hotdeploy(1, "nostart")
	rep = watch.Stop()
	if rep.Failed > 0 || len(rep.Bodies) != 1 || rep.Bodies["v1"] == 0 {
		t.Fatalf("prober during the deploy that failed to start: %v, %s, failures %v", rep.Bodies, rep, rep.Examples)
	}
	if !strings.Contains(out, "failed to start") {
		t.Errorf("output lacks Tomcat's reason:\n%s", out)
	}
	wantServing("v1")

	// A version that starts but fails its health check is rolled back hot.
	// Tomcat sends new users to it while its check runs, since it cannot
	// tell a sick version; a user with a session on v1 stays on v1
	// throughout, and v1 takes every request again after the rollback.
	jar, _ := cookiejar.New(nil)
	user := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	sessionURL := fmt.Sprintf("http://127.0.0.1:%d/app/session", httpPort)
	if body := userGet(t, user, sessionURL); body != "v1" {
		t.Fatalf("a new session on v1 answered %q", body)
	}
	var sessionBodies []string
	stopUser := make(chan struct{})
	userDone := make(chan struct{})
	go func() {
		defer close(userDone)
		for {
			select {
			case <-stopUser:
				return
			case <-time.After(20 * time.Millisecond):
			}
			sessionBodies = append(sessionBodies, userGetErr(user, sessionURL))
		}
	}()
	watch = probe(t, fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort))
	out = hotdeploy(1, "sick", "--health_timeout", "3s")
	wantServing("v1")
	rep = watch.Stop()
	close(stopUser)
	<-userDone
	if !strings.Contains(out, "rolled-back") {
		t.Errorf("output lacks the rollback:\n%s", out)
	}
	if rep.Failed > 0 || rep.Bodies["v1"] == 0 {
		t.Fatalf("prober during the sick deploy: %v, %s, failures %v", rep.Bodies, rep, rep.Examples)
	}
	if len(sessionBodies) == 0 || slices.ContainsFunc(sessionBodies, func(b string) bool { return b != "v1" }) {
		t.Fatalf("the user with a session on v1 got %q during the sick deploy and its rollback", sessionBodies)
	}
	if got := wars(); len(got) != 1 || !strings.HasPrefix(got[0], "app##000002-") {
		t.Fatalf("webapps after the sick deploy's rollback: %v", got)
	}

	if got := pid(); got != jvm {
		t.Fatalf("Tomcat's pid went from %d to %d: it restarted", jvm, got)
	}
}

// userGet fetches url as a user with cookies, failing the test on an
// error.
func userGet(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	body := userGetErr(c, url)
	if strings.HasPrefix(body, "error: ") {
		t.Fatal(body)
	}
	return body
}

// userGetErr fetches url as a user with cookies: the body, or "error: …".
func userGetErr(c *http.Client, url string) string {
	resp, err := c.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("error: %s %q %v", resp.Status, data, err)
	}
	return strings.TrimSpace(string(data))
}

// hotSetup makes service A's instances ready for deploy_mode hot, for
// newTomcatFleetWith: Tomcat's manager with the user baepo, autoDeploy off
// on the Host, and the user's password file named in agent.yaml.
func hotSetup(t testing.TB) func(f *tomcatFleet, instances []string) string {
	return func(f *tomcatFleet, instances []string) string {
		t.Helper()
		pw := f.write("manager.pw", "e2e-manager-pw\n")
		for i := range instances {
			base := filepath.Join(f.dir, fmt.Sprintf("a%d", i+1))
			if err := fixture.EnableManager(base, "baepo", "e2e-manager-pw"); err != nil {
				t.Fatal(err)
			}
			if err := fixture.SetHostAttr(base, "autoDeploy", "false"); err != nil {
				t.Fatal(err)
			}
			instances[i] = strings.Replace(instances[i], " }", ", manager_password_file: "+pw+" }", 1)
		}
		return "    deploy_mode: hot\n"
	}
}

// probe starts watching url; the test stops it with Stop.
func probe(t *testing.T, url string) *loadgen.Load {
	t.Helper()
	l, err := loadgen.Probe(url)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
