package e2e_test

// The crash-consistency test: the agent is SIGKILLed at each step boundary
// of a real rolling deploy to two Tomcat instances, started again, and
// every instance's status is compared with what its Tomcat serves. The
// instants inside an install or a rollback (after the intent, after the
// switch of current, after the copy) are hit one by one, through the
// agent's test-only crash hook, by TestCrashDuringInstall.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/internal/fixture"
)

// rollingCrashPoint is a moment of a deploy at which the agent is killed, for one
// instance: when fired reports true the agent dies at once.
type rollingCrashPoint struct {
	name  string
	fired func(f *rollingCrash, inst string) bool
}

// rollingCrash is a Tomcat fleet with large WARs, so that copying one into
// webapps/ takes long enough to be caught halfway.
type rollingCrash struct {
	*tomcatFleet
	versions map[string]string // the first 8 hex of a WAR's digest → its version
	logFrom  int               // where in the agent's log the current trial starts
}

// releaseRE takes the digest part out of a release id.
var releaseRE = regexp.MustCompile(`-([0-9a-f]{8})(?:-[0-9]+)?$`)

func (f *rollingCrash) versionOf(release string) string {
	m := releaseRE.FindStringSubmatch(release)
	if m == nil {
		return ""
	}
	return f.versions[m[1]]
}

// logged reports whether the agent has logged, since the trial began, that
// step started on instance inst.
func (f *rollingCrash) logged(inst, step string) bool {
	log := f.agentLog.String()
	if len(log) < f.logFrom {
		return false
	}
	re := regexp.MustCompile(`(?m)^.*step started.*$`)
	for _, line := range re.FindAllString(log[f.logFrom:], -1) {
		fields := strings.Fields(line)
		if slices.Contains(fields, "instance=A/"+inst) && slices.Contains(fields, "step="+step) {
			return true
		}
	}
	return false
}

func (f *rollingCrash) tmpFiles(inst string) []string {
	m, _ := filepath.Glob(filepath.Join(f.dir, inst, "webapps", ".baepo-*.tmp"))
	return m
}

var rollingCrashPoints = []rollingCrashPoint{
	{"stop", func(f *rollingCrash, inst string) bool { return f.logged(inst, "stop") }},
	{"install", func(f *rollingCrash, inst string) bool { return f.logged(inst, "install") }},
	{"install-copying", func(f *rollingCrash, inst string) bool { return len(f.tmpFiles(inst)) > 0 }},
	{"start", func(f *rollingCrash, inst string) bool { return f.logged(inst, "start") }},
	{"health", func(f *rollingCrash, inst string) bool { return f.logged(inst, "health") }},
}

type instanceStatus struct {
	Instance string `json:"instance"`
	Steps    []struct {
		Output struct {
			Running bool   `json:"running"`
			Release string `json:"release"`
		} `json:"output"`
	} `json:"steps"`
}

// status runs baepo status and returns each instance's status by name.
func (f *rollingCrash) status() map[string]instanceStatus {
	f.t.Helper()
	report := filepath.Join(f.dir, "status.json")
	code, stdout, stderr := f.baepo(nil, "status", "--server", "local", "--service", "A", "--report-json", report)
	if code != 0 && code != 3 {
		f.t.Fatalf("status: exit %d\n%s%s", code, stdout, stderr)
	}
	var rep struct {
		Instances []instanceStatus `json:"instances"`
	}
	data, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(data, &rep) != nil {
		f.t.Fatalf("status report: %v %s", err, data)
	}
	byName := map[string]instanceStatus{}
	for _, is := range rep.Instances {
		if len(is.Steps) != 1 {
			f.t.Fatalf("status report of %s: %s", is.Instance, data)
		}
		byName[is.Instance] = is
	}
	return byName
}

// waitServing polls instance i until it serves something or a minute has
// passed, and returns what it serves.
func (f *rollingCrash) waitServing(i int) string {
	deadline := time.Now().Add(time.Minute)
	for {
		if v := f.serving(i); v != "" || time.Now().After(deadline) {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// trial deploys version v, kills the agent when point fires for inst, starts
// the agent again and returns how many instances' status disagreed with
// what they served.
func (f *rollingCrash) trial(point rollingCrashPoint, inst, v string) (disagreed int) {
	f.t.Helper()
	f.logFrom = len(f.agentLog.String())
	cmd := f.command(nil, "run", "deploy", "--server", "local", "--service", "A", "--artifact", f.wars[v])
	var out fixture.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.Now().Add(3 * time.Minute)
	for !point.fired(f, inst) {
		select {
		case err := <-exited:
			f.t.Fatalf("%s of %s: the deploy ended (%v) before the agent could be killed:\n%s", point.name, inst, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			f.t.Fatalf("%s of %s: the deploy did not reach the point in 3 minutes:\n%s", point.name, inst, out.String())
		}
		time.Sleep(time.Millisecond)
	}
	_ = f.agent.Process.Kill()
	_ = f.agent.Wait()
	f.agent = nil
	select {
	case err := <-exited:
		if err == nil {
			f.t.Fatalf("%s of %s: the deploy exited 0 with its agent killed:\n%s", point.name, inst, out.String())
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		f.t.Fatalf("%s of %s: the deploy did not end after its agent was killed:\n%s", point.name, inst, out.String())
	}

	f.startAgent()
	for _, in := range []string{"a1", "a2"} {
		if tmp := f.tmpFiles(in); len(tmp) > 0 {
			f.t.Errorf("%s of %s: the agent started again and left %s", point.name, inst, strings.Join(tmp, ", "))
		}
	}
	// Whatever the agent says runs must serve its release; what it says
	// is stopped is started, and must then serve its release. A kill
	// during stop leaves a JVM on its way out: start finds it running,
	// health finds it gone, and the run says so (exit 3); the next start
	// starts it.
	for try := 1; ; try++ {
		code, stdout, stderr := f.baepo(nil, "run", "start", "--server", "local", "--service", "A")
		if code == 0 {
			break
		}
		if code != 3 || try == 3 {
			f.t.Fatalf("%s of %s: start after the crash: exit %d\n%s%s", point.name, inst, code, stdout, stderr)
		}
		time.Sleep(time.Second)
	}
	status := f.status()
	for i, in := range []string{"a1", "a2"} {
		st := status[in].Steps[0].Output
		served := f.waitServing(i)
		want := f.versionOf(st.Release)
		if !st.Running || served == "" || served != want {
			disagreed++
			f.t.Errorf("%s of %s: %s's status says running=%v release %s (%s), it serves %q", point.name, inst, in, st.Running, st.Release, want, served)
		}
	}
	return disagreed
}

func TestCrashConsistencyTomcat(t *testing.T) {
	base := newTomcatFleet(t)
	f := &rollingCrash{tomcatFleet: base, versions: map[string]string{}}
	for _, v := range []string{"p1", "p2"} {
		f.wars[v] = f.war(v, fixture.WAROptions{Padding: 16 << 20})
		data, err := os.ReadFile(f.wars[v])
		if err != nil {
			t.Fatal(err)
		}
		f.versions[sha256hex(data)[:8]] = v
	}
	f.deploy("p1")

	trials, disagreed := 0, 0
	v := "p1"
	for _, point := range rollingCrashPoints {
		for _, inst := range []string{"a1", "a2"} {
			if v == "p1" {
				v = "p2"
			} else {
				v = "p1"
			}
			trials++
			disagreed += f.trial(point, inst, v)
			// The next deploy after a crash succeeds.
			f.deploy(v)
		}
	}
	t.Logf("crash consistency: %d trials (agent killed at %d points x 2 instances), %d instances whose status disagreed with what they served",
		trials, len(rollingCrashPoints), disagreed)
	if disagreed > 0 {
		t.Errorf("%d of %d instance checks disagreed", disagreed, 2*trials)
	}
}
