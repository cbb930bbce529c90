package e2e_test

// End-to-end test of hot deploys: the real baepo and baepo-agent deploying
// real WARs to one real Tomcat 10 with deploy_mode hot, through Tomcat's
// manager, with the built-in deploy and rollback flows.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
)

// TestEndToEndHotDeploy deploys, rolls back, and fails two deploys (a
// version that does not start, one whose health fails) on one Tomcat with
// deploy_mode hot; a prober sees no failed request, and the JVM never
// restarts.
func TestEndToEndHotDeploy(t *testing.T) {
	f := &tomcatFleet{fleet: newFleet(t), wars: map[string]string{}}
	httpPort, shutPort := freePort(t), freePort(t)
	base := filepath.Join(f.dir, "a1")
	if err := fixture.CreateInstance(context.Background(), base, httpPort, shutPort); err != nil {
		t.Fatal(err)
	}
	if err := fixture.EnableManager(base, "baepo", "e2e-manager-pw"); err != nil {
		t.Fatal(err)
	}
	if err := fixture.SetHostAttr(base, "autoDeploy", "false"); err != nil {
		t.Fatal(err)
	}
	pw := f.write("manager.pw", "e2e-manager-pw\n")
	f.ports = []int{httpPort}
	f.start(fmt.Sprintf(`  A:
    driver: tomcat
    context: /app
    deploy_mode: hot
    keep_releases: 3
    health: { path: /app/health, timeout: 60s, interval: 50ms }
    instances:
      a1: { catalina_base: %s, port: %d, manager_password_file: %s }
`, base, httpPort, pw))
	f.wars["v1"] = f.war("v1", fixture.WAROptions{Sessions: true})
	f.wars["v2"] = f.war("v2", fixture.WAROptions{})
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
	probe := startHotProber(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort))
	out := hotdeploy(0, "v2")
	wantServing("v2")
	if got := wars(); len(got) != 1 || !strings.HasPrefix(got[0], "app##000001-") || !strings.Contains(out, "retire") {
		t.Fatalf("webapps after hot deploy and retire: %v\n%s", got, out)
	}
	bodies, failures := probe.halt()
	if len(failures) > 0 || bodies["v1"] == 0 || bodies["v2"] == 0 || len(bodies) != 2 {
		t.Fatalf("prober during the hot deploy: %v, failures %v", bodies, failures)
	}

	// A hot rollback to v1, retired since: it is deployed again as the
	// newest version.
	probe = startHotProber(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort))
	f.must(0, "run", "rollback", "--server", "local", "--service", "A")
	wantServing("v1")
	bodies, failures = probe.halt()
	if len(failures) > 0 || bodies["v1"] == 0 {
		t.Fatalf("prober during the hot rollback: %v, failures %v", bodies, failures)
	}
	if got := wars(); len(got) != 1 || !strings.HasPrefix(got[0], "app##000002-") {
		t.Fatalf("webapps after the hot rollback: %v", got)
	}

	// A version that fails to start fails the install; v1 serves
	// throughout.
	probe = startHotProber(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort))
	out = hotdeploy(1, "nostart")
	bodies, failures = probe.halt()
	if len(failures) > 0 || len(bodies) != 1 || bodies["v1"] == 0 {
		t.Fatalf("prober during the deploy that failed to start: %v, failures %v", bodies, failures)
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
	probe = startHotProber(fmt.Sprintf("http://127.0.0.1:%d/app/version.txt", httpPort))
	out = hotdeploy(1, "sick", "--health_timeout", "3s")
	wantServing("v1")
	bodies, failures = probe.halt()
	close(stopUser)
	<-userDone
	if !strings.Contains(out, "rolled-back") {
		t.Errorf("output lacks the rollback:\n%s", out)
	}
	if len(failures) > 0 || bodies["v1"] == 0 {
		t.Fatalf("prober during the sick deploy: %v, failures %v", bodies, failures)
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

// hotProber requests a URL every 10ms until halted and counts the bodies
// and the failures it got.
type hotProber struct {
	mu       sync.Mutex
	bodies   map[string]int
	failures []string
	stop     chan struct{}
	done     chan struct{}
}

func startHotProber(url string) *hotProber {
	p := &hotProber{bodies: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			resp, err := client.Get(url)
			var body string
			if err == nil {
				buf := make([]byte, 256)
				n, _ := resp.Body.Read(buf)
				resp.Body.Close()
				body = strings.TrimSpace(string(buf[:n]))
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s: %q", resp.Status, body)
				}
			}
			p.mu.Lock()
			if err != nil {
				p.failures = append(p.failures, err.Error())
			} else {
				p.bodies[body]++
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *hotProber) halt() (map[string]int, []string) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bodies, slices.Clone(p.failures)
}
