package agent

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/sdk"
)

// fakeDriver records what the agent asks of it and fails on demand. It
// stands in for a real driver to test the agent's own logic (releases,
// restore on failure, health, locks); the real drivers run below the same
// code in the end-to-end tests.
type fakeDriver struct {
	sdk.NoSteps

	mu          sync.Mutex
	installed   []sdk.Release // every Install, in order
	failInstall error
	running     bool
}

func (d *fakeDriver) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "fake", Config: []sdk.ConfigField{{Name: "home", Doc: "where it lives"}}}, nil
}
func (d *fakeDriver) Validate(context.Context, sdk.Instance) error { return nil }
func (d *fakeDriver) Start(context.Context, sdk.Instance) (sdk.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running = true
	return sdk.Result{Message: "started"}, nil
}
func (d *fakeDriver) Stop(context.Context, sdk.Instance) (sdk.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running = false
	return sdk.Result{Message: "stopped"}, nil
}
func (d *fakeDriver) Install(_ context.Context, _ sdk.Instance, r sdk.Release) (sdk.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failInstall != nil {
		return sdk.Result{}, d.failInstall
	}
	d.installed = append(d.installed, r)
	return sdk.Result{Output: map[string]string{"file": filepath.Base(r.Artifact)}}, nil
}
func (d *fakeDriver) Status(context.Context, sdk.Instance) (sdk.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return sdk.Status{Running: d.running, PID: 4711}, nil
}
func (d *fakeDriver) Logs(context.Context, sdk.Instance, int) (string, error) {
	return "SEVERE: context failed to start\n", nil
}

func (d *fakeDriver) fail(err error) {
	d.mu.Lock()
	d.failInstall = err
	d.mu.Unlock()
}

func (d *fakeDriver) last() sdk.Release {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.installed[len(d.installed)-1]
}

// app is the health endpoint of the fake instance: it answers with status.
// While held, a request waits for hold's channel to close.
type app struct {
	mu     sync.Mutex
	status int
	held   chan struct{} // a request is waiting
	hold   chan struct{} // nil: answer at once
}

func (h *app) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	hold, held := h.hold, h.held
	h.mu.Unlock()
	if hold != nil {
		held <- struct{}{}
		<-hold
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	w.WriteHeader(h.status)
	fmt.Fprintln(w, "version 2")
}

// holdRequests makes requests wait until the returned func is called;
// held receives once for each request that waits.
func (h *app) holdRequests() (held <-chan struct{}, answer func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold, h.held = make(chan struct{}), make(chan struct{}, 16)
	hold := h.hold
	return h.held, func() {
		h.mu.Lock()
		h.hold = nil
		h.mu.Unlock()
		close(hold)
	}
}

func (h *app) set(status int) {
	h.mu.Lock()
	h.status = status
	h.mu.Unlock()
}

type coreFixture struct {
	t      *testing.T
	agent  *Agent
	driver *fakeDriver
	app    *app
}

// newCore starts an agent core with one fake instance A/a1 whose health
// endpoint is a real HTTP server on loopback.
func newCore(t *testing.T) *coreFixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &app{status: http.StatusOK}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), []byte("test-token-0123456789"), 0o600)
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, fmt.Appendf(nil, `token_file: token
data_dir: data
commands:
  hello: [/bin/echo, "hello {service}/{instance}:{port}"]
  greet: [/usr/bin/printf, '[%%s]\n', "{arg:who}", "--wait={arg:seconds}", "{instance}"]
services:
  A:
    driver: fake
    context: /app
    keep_releases: 2
    health: { timeout: 300ms, interval: 10ms }
    instances:
      a1: { port: %d }
`, port), 0o600)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDriver{}
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Builtin{"fake": d}, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return &coreFixture{t: t, agent: a, driver: d, app: h}
}

// upload puts a WAR with one file into the store and returns its digest.
func (f *coreFixture) upload(content string) string {
	f.t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	e, _ := w.Create("index.html")
	e.Write([]byte(content))
	w.Close()
	sum := sha256.Sum256(b.Bytes())
	digest := hex.EncodeToString(sum[:])
	if _, err := f.agent.PutArtifact(context.Background(), digest, bytes.NewReader(b.Bytes()), int64(b.Len())); err != nil {
		f.t.Fatal(err)
	}
	return digest
}

func (f *coreFixture) step(name string, args map[string]any) (api.StepResult, error) {
	return f.agent.Step(context.Background(), "A", "a1", name, api.StepRequest{Args: args, Run: "run-1", Build: api.Build{Tag: "jenkins-app-7"}}, nil)
}

func (f *coreFixture) install(digest, name string) (api.StepResult, error) {
	return f.step("install", map[string]any{"artifact": map[string]any{"sha256": digest, "name": name}})
}

func (f *coreFixture) status() map[string]any {
	f.t.Helper()
	return f.statusResult().Output
}

func (f *coreFixture) statusResult() api.StepResult {
	f.t.Helper()
	res, err := f.agent.Status(context.Background(), "A", "a1")
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func TestInstall(t *testing.T) {
	f := newCore(t)
	v1, v2 := f.upload("v1"), f.upload("v2")
	res1, err := f.install(v1, "app-1.war")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.driver.last(); got.SHA256 != v1 || got.Name != "app-1.war" || got.ID != res1.Release {
		t.Errorf("driver installed %+v, want release %s of %s", got, res1.Release, v1)
	}
	if data, err := os.ReadFile(f.driver.last().Artifact); err != nil || !bytes.HasPrefix(data, []byte("PK")) {
		t.Errorf("the release's artifact is not the WAR: %v", err)
	}
	res2, err := f.install(v2, "app-2.war")
	if err != nil {
		t.Fatal(err)
	}
	if res2.Output["previous"] != res1.Release || res2.Output["file"] != "app-2.war" || !strings.Contains(res2.Message, "app-2.war") {
		t.Errorf("second install = %+v, want previous %s", res2, res1.Release)
	}
	st := f.status()
	if st["release"] != res2.Release || st["previous"] != res1.Release || st["artifact"] != "app-2.war" {
		t.Errorf("status = %v", st)
	}

	// keep_releases is 2: a third install prunes the first.
	v3 := f.upload("v3")
	res3, err := f.install(v3, "app-3.war")
	if err != nil {
		t.Fatal(err)
	}
	if st := f.status(); fmt.Sprint(st["releases"]) != fmt.Sprint([]string{res2.Release, res3.Release}) {
		t.Errorf("releases after prune = %v, want %s and %s", st["releases"], res2.Release, res3.Release)
	}
}

func TestInstallFailureRestores(t *testing.T) {
	f := newCore(t)
	v1, v2 := f.upload("v1"), f.upload("v2")
	res1, err := f.install(v1, "app-1.war")
	if err != nil {
		t.Fatal(err)
	}
	f.driver.fail(errors.New("webapps is read-only"))
	_, err = f.install(v2, "app-2.war")
	var ae *api.Error
	if err == nil || errors.As(err, &ae) || !strings.Contains(err.Error(), "webapps is read-only") {
		t.Fatalf("install with a failing driver: %v, want the driver's error", err)
	}
	if st := f.status(); st["release"] != res1.Release || st["previous"] != nil {
		t.Errorf("after a failed install status = %v, want release %s and no previous", st, res1.Release)
	}
	h, _ := f.agent.History(api.HistoryQuery{Step: "install"})
	entries := h.Entries
	if len(entries) != 2 || entries[0].Result != "failed" || entries[1].Result != "ok" || entries[0].Build.Tag != "jenkins-app-7" {
		t.Errorf("history = %+v, want the failed install then the ok one", entries)
	}
}

func TestRollback(t *testing.T) {
	f := newCore(t)
	if _, err := f.step("rollback", nil); err == nil || !strings.Contains(err.Error(), "rollback A/a1") {
		t.Errorf("rollback with no previous release: %v", err)
	}
	v1, v2 := f.upload("v1"), f.upload("v2")
	res1, _ := f.install(v1, "app-1.war")
	res2, _ := f.install(v2, "app-2.war")

	f.driver.fail(errors.New("disk full"))
	if _, err := f.step("rollback", nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("rollback with a failing driver: %v", err)
	}
	if st := f.status(); st["release"] != res2.Release || st["previous"] != res1.Release {
		t.Errorf("after a failed rollback status = %v, want it unchanged", st)
	}

	f.driver.fail(nil)
	res, err := f.step("rollback", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Release != res1.Release || res.Output["from"] != res2.Release || f.driver.last().ID != res1.Release {
		t.Errorf("rollback = %+v, driver got %s; want back to %s", res, f.driver.last().ID, res1.Release)
	}
	if st := f.status(); st["release"] != res1.Release {
		t.Errorf("after rollback status = %v", st)
	}
}

func TestHealth(t *testing.T) {
	f := newCore(t)
	if _, err := f.step("start", nil); err != nil {
		t.Fatal(err)
	}
	res, err := f.step("health", nil)
	if err != nil || res.Output["probes"] != 1 || !strings.Contains(fmt.Sprint(res.Output["url"]), "/app") {
		t.Fatalf("health of a serving app = %+v, %v", res, err)
	}
	if st := f.status(); st["health"] != "ok" {
		t.Errorf("status health = %v, want ok", st["health"])
	}

	f.app.set(http.StatusServiceUnavailable)
	_, err = f.step("health", map[string]any{"timeout": "100ms"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "SEVERE: context failed to start") {
		t.Fatalf("health of a failing app: %v, want the last answer and the log tail", err)
	}
	if st := f.status(); st["health"] != "failing: HTTP 503" {
		t.Errorf("status health = %v, want failing", st["health"])
	}
	if _, err := f.step("health", map[string]any{"timeout": true}); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("health with a bad timeout: %v", err)
	}
}

// Status says health ok only for a running instance that passed a check
// since it last started, stopped or changed release, and tells when health
// last passed and on which release.
func TestStatusHealth(t *testing.T) {
	f := newCore(t)
	must := func(res api.StepResult, err error) api.StepResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	wantHealth := func(when, health, release string) map[string]any {
		t.Helper()
		st := f.status()
		if st["health"] != health || fmt.Sprint(st["health_release"]) != release {
			t.Errorf("%s: health %v on release %v, want %q on %q", when, st["health"], st["health_release"], health, release)
		}
		if _, ok := st["health_at"]; ok != (release != "<nil>") {
			t.Errorf("%s: health_at = %v", when, st["health_at"])
		}
		return st
	}
	v1, v2 := f.upload("v1"), f.upload("v2")
	rel1 := must(f.install(v1, "app-1.war")).Release
	wantHealth("never started", "unknown: not running", "<nil>")
	must(f.step("start", nil))
	wantHealth("started", "not checked since start", "<nil>")
	must(f.step("health", nil))
	st := wantHealth("checked", "ok", rel1)
	if at, err := time.Parse(time.RFC3339, fmt.Sprint(st["health_at"])); err != nil || time.Since(at) > time.Minute {
		t.Errorf("health_at = %v, %v", st["health_at"], err)
	}
	if !strings.HasSuffix(f.statusResult().Message, ", health ok") {
		t.Errorf("status message %q", f.statusResult().Message)
	}

	must(f.step("stop", nil))
	st = wantHealth("stopped", "unknown: not running", "<nil>")
	if st["health_passed_release"] != rel1 || st["health_passed_at"] == nil {
		t.Errorf("stopped: last pass %v at %v, want on %s", st["health_passed_release"], st["health_passed_at"], rel1)
	}
	if !strings.Contains(f.statusResult().Message, "health unknown: not running (last passed ") {
		t.Errorf("status message %q", f.statusResult().Message)
	}
	must(f.step("start", nil))
	wantHealth("started again", "not checked since start", "<nil>")
	must(f.step("health", nil))

	rel2 := must(f.install(v2, "app-2.war")).Release
	wantHealth("installed", "not checked since install", "<nil>")
	must(f.step("health", nil))
	wantHealth("installed and checked", "ok", rel2)
	must(f.step("restart", nil))
	wantHealth("restarted", "not checked since restart", "<nil>")
	must(f.step("health", nil))
	must(f.step("rollback", nil))
	wantHealth("rolled back", "not checked since rollback", "<nil>")

	f.app.set(http.StatusServiceUnavailable)
	_, _ = f.step("health", map[string]any{"timeout": "50ms"})
	st = wantHealth("failing", "failing: HTTP 503", rel1)
	if st["health_passed_release"] != rel2 {
		t.Errorf("failing: last pass on %v, want %s", st["health_passed_release"], rel2)
	}

	// A check that passes across an install speaks of the release before.
	f.app.set(http.StatusOK)
	held, answer := f.app.holdRequests()
	done := make(chan error)
	go func() { _, err := f.step("health", nil); done <- err }()
	<-held
	must(f.install(v2, "app-2.war"))
	answer()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantHealth("checked across an install", "not checked since install", "<nil>")
}

func TestStepRefused(t *testing.T) {
	f := newCore(t)
	missing := strings.Repeat("0", 64)
	for _, tt := range []struct {
		name, service, instance, step string
		args                          map[string]any
		code                          string
	}{
		{"unknown service", "B", "a1", "stop", nil, api.CodeNotFound},
		{"unknown instance", "A", "a9", "stop", nil, api.CodeNotFound},
		{"dot dot", "..", "a1", "stop", nil, api.CodeBadRequest},
		{"unknown step", "A", "a1", "dance", nil, api.CodeNotFound},
		{"artifact not uploaded", "A", "a1", "install", map[string]any{"artifact": map[string]any{"sha256": missing}}, api.CodeNotFound},
		{"artifact not a digest", "A", "a1", "install", map[string]any{"artifact": "app.war"}, api.CodeBadRequest},
		{"command not allowed", "A", "a1", "run", map[string]any{"command": "rm"}, api.CodeNotFound},
		{"command argument unknown", "A", "a1", "run", map[string]any{"command": "greet", "who": "x", "seconds": 7, "force": true}, api.CodeBadRequest},
		{"command argument missing", "A", "a1", "run", map[string]any{"command": "greet", "who": "x"}, api.CodeBadRequest},
		{"command takes no argument", "A", "a1", "run", map[string]any{"command": "hello", "who": "x"}, api.CodeBadRequest},
		{"command argument an option", "A", "a1", "run", map[string]any{"command": "greet", "who": "--force", "seconds": 7}, api.CodeBadRequest},
		{"command argument a table", "A", "a1", "run", map[string]any{"command": "greet", "who": []any{"a", "b"}, "seconds": 7}, api.CodeBadRequest},
		{"command argument a line break", "A", "a1", "run", map[string]any{"command": "greet", "who": "a\nb", "seconds": 7}, api.CodeBadRequest},
		{"health timeout 1e300", "A", "a1", "health", map[string]any{"timeout": 1e300}, api.CodeBadRequest},
		{"health timeout 1e300s", "A", "a1", "health", map[string]any{"timeout": "1e300s"}, api.CodeBadRequest},
		{"health timeout negative", "A", "a1", "health", map[string]any{"timeout": -1.0}, api.CodeBadRequest},
		{"health timeout zero", "A", "a1", "health", map[string]any{"timeout": "0s"}, api.CodeBadRequest},
		{"health timeout no duration", "A", "a1", "health", map[string]any{"timeout": true}, api.CodeBadRequest},
		{"install hot on a driver that cannot", "A", "a1", "install", map[string]any{"artifact": map[string]any{"sha256": missing}, "mode": "hot"}, api.CodeBadRequest},
		{"rollback hot on a driver that cannot", "A", "a1", "rollback", map[string]any{"mode": "hot"}, api.CodeBadRequest},
		{"rollback mode no mode", "A", "a1", "rollback", map[string]any{"mode": "warm"}, api.CodeBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.agent.Step(context.Background(), tt.service, tt.instance, tt.step, api.StepRequest{Args: tt.args}, nil)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != tt.code {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
		})
	}
	h, _ := f.agent.History(api.HistoryQuery{})
	if len(h.Entries) != 0 || len(h.Runs) != 0 {
		t.Errorf("refused steps were journaled: %+v", h)
	}
}

func TestRunCommand(t *testing.T) {
	f := newCore(t)
	res, err := f.step("run", map[string]any{"command": "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if out := fmt.Sprint(res.Output["output"]); !strings.HasPrefix(out, "hello A/a1:") {
		t.Errorf("output = %q, want the placeholders filled in", out)
	}

	// Arguments fill {arg:NAME}, each value inside its own argv element:
	// spaces, quotes, semicolons and placeholders in it stay as they are.
	res, err = f.step("run", map[string]any{"command": "greet", "who": `a b; rm -rf "/" {port}`, "seconds": float64(7)})
	if err != nil {
		t.Fatal(err)
	}
	if out, want := fmt.Sprint(res.Output["output"]), "[a b; rm -rf \"/\" {port}]\n[--wait=7]\n[a1]\n"; out != want {
		t.Errorf("output = %q, want %q", out, want)
	}

	// A wrong argument names the ones the command takes.
	_, err = f.step("run", map[string]any{"command": "greet", "who": "x", "secs": 7})
	if err == nil || !strings.Contains(err.Error(), `command greet: unknown argument "secs" (greet takes seconds, who)`) {
		t.Errorf("unknown argument: %v", err)
	}
	_, err = f.step("run", map[string]any{"command": "greet", "who": "x"})
	if err == nil || !strings.Contains(err.Error(), `command greet: missing argument "seconds" (greet takes seconds, who)`) {
		t.Errorf("missing argument: %v", err)
	}
}

func TestLease(t *testing.T) {
	f := newCore(t)
	if _, err := f.step("stop", nil); err != nil {
		t.Fatal(err)
	}
	// run-1 holds the service until it releases it or the lease expires.
	_, err := f.agent.Step(context.Background(), "A", "a1", "start", api.StepRequest{Run: "run-2"}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeBusy || ae.Holder == nil || ae.Holder.Build.Tag != "jenkins-app-7" {
		t.Fatalf("another run's step: %v, want busy with the holder", err)
	}
	// Read-only steps pass.
	if _, err := f.agent.Step(context.Background(), "A", "a1", "status", api.StepRequest{Run: "run-2"}, nil); err != nil {
		t.Errorf("status during another run's lease: %v", err)
	}
	if ok, err := f.agent.ReleaseLease("A", "run-1"); !ok || err != nil {
		t.Fatalf("ReleaseLease = %v, %v", ok, err)
	}
	if _, err := f.agent.Step(context.Background(), "A", "a1", "start", api.StepRequest{Run: "run-2"}, nil); err != nil {
		t.Errorf("after the lease ended: %v", err)
	}
	if _, err := f.agent.ReleaseLease("B", "run-1"); err == nil {
		t.Error("ReleaseLease of an unknown service: no error")
	}
}

// A run's journaled steps open its record on the agent; its client's end
// closes it. Read-only steps leave none, and the end of a run the agent
// has no step of is not_found.
func TestRunRecord(t *testing.T) {
	f := newCore(t)
	ctx := context.Background()
	build := api.Build{Tag: "jenkins-app-9", URL: "https://ci/job/app/9/", Job: "app", Number: "9"}
	run := func(id, step string, args map[string]any) {
		t.Helper()
		if _, err := f.agent.Step(ctx, "A", "a1", step, api.StepRequest{Run: id, Build: build, User: "kim", Args: args}, nil); err != nil {
			t.Fatal(err)
		}
	}
	run("r-status", "status", nil)
	if _, err := f.agent.EndRun("r-status", api.RunEnd{Outcome: "succeeded"}); !isCode(err, api.CodeNotFound) {
		t.Errorf("end of a run that only read: %v, want not_found", err)
	}
	if h, _ := f.agent.History(api.HistoryQuery{}); h.Runs == nil || len(h.Runs) != 0 {
		t.Errorf("runs after a status = %#v, want an empty list", h.Runs)
	}

	v1 := f.upload("v1")
	run("r1", "stop", nil)
	run("r1", "install", map[string]any{"artifact": map[string]any{"sha256": v1, "name": "app.war"}})
	h, _ := f.agent.History(api.HistoryQuery{Build: "app#9"})
	if len(h.Runs) != 1 || h.Runs[0].ID != "r1" || h.Runs[0].Outcome != api.OutcomeRunning || h.Runs[0].ExitCode != nil || h.Runs[0].Steps != 2 || h.Runs[0].User != "kim" || h.Runs[0].Build != build {
		t.Fatalf("runs of build app#9 while r1 runs = %+v", h.Runs)
	}
	if len(h.Entries) != 2 || h.Entries[0].Run != "r1" || h.Entries[0].Step != "install" {
		t.Errorf("entries of build app#9 = %+v, want r1's install and stop", h.Entries)
	}

	started := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	end := api.RunEnd{Started: started, Duration: 50 * time.Second, Template: "deploy", Outcome: "failed-rolled-back", ExitCode: 1,
		Error: "health A/a1: did not answer 200\nlog tail", Artifacts: []api.ArtifactRef{{SHA256: v1, Name: "app.war"}}, Counts: map[string]int{"rolled-back": 1}}
	got, err := f.agent.EndRun("r1", end)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != "failed-rolled-back" || got.ExitCode == nil || *got.ExitCode != 1 || !got.Started.Equal(started) || got.Ended.IsZero() ||
		got.Error != "health A/a1: did not answer 200" || got.Template != "deploy" || got.Artifacts[0].SHA256 != v1 || got.Counts["rolled-back"] != 1 ||
		fmt.Sprint(got.Instances) != "[A/a1]" {
		t.Errorf("EndRun = %+v", got)
	}
	if h, _ := f.agent.History(api.HistoryQuery{Service: "A", Limit: 1}); len(h.Runs) != 1 || h.Runs[0].Outcome != "failed-rolled-back" {
		t.Errorf("History after the end = %+v", h.Runs)
	}
	for _, tt := range []struct {
		run  string
		end  api.RunEnd
		code string
	}{
		{"r1/x", end, api.CodeBadRequest},
		{"r1", api.RunEnd{}, api.CodeBadRequest},
		{"r1", api.RunEnd{Outcome: api.OutcomeRunning}, api.CodeBadRequest},
		{"r-none", end, api.CodeNotFound},
	} {
		if _, err := f.agent.EndRun(tt.run, tt.end); !isCode(err, tt.code) {
			t.Errorf("EndRun(%q, outcome %q) = %v, want %s", tt.run, tt.end.Outcome, err, tt.code)
		}
	}
}

func isCode(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

// The agent refuses instance keys its driver does not read, and missing
// required ones, at start-up: a typo in agent.yaml is caught then.
func TestConfigKeys(t *testing.T) {
	desc := sdk.Description{Name: "fake", Config: []sdk.ConfigField{{Name: "home", Doc: "where it lives", Required: true}, {Name: "opts"}}}
	for _, tt := range []struct {
		config map[string]string
		want   string
	}{
		{map[string]string{"home": "/opt/a"}, ""},
		{map[string]string{"home": "/opt/a", "hom": "/opt/b"}, "hom: unknown key for driver fake (known: port, [home opts])"},
		{map[string]string{"opts": "-Xmx1g"}, "home: missing (where it lives)"},
	} {
		err := checkConfigKeys(desc, sdk.Instance{Config: tt.config})
		if fmt.Sprint(err) != tt.want && !(err == nil && tt.want == "") {
			t.Errorf("checkConfigKeys(%v) = %v, want %q", tt.config, err, tt.want)
		}
	}
}

// deploy_mode: hot needs a driver that says HotDeploy and declares retire.
func TestDeployMode(t *testing.T) {
	hot := &ServiceConfig{DeployMode: ModeHot}
	retire := []sdk.StepInfo{{Name: "retire"}}
	for _, tt := range []struct {
		name string
		scfg *ServiceConfig
		desc sdk.Description
		want string
	}{
		{"restart", &ServiceConfig{DeployMode: ModeRestart}, sdk.Description{Name: "fake"}, ""},
		{"hot", hot, sdk.Description{Name: "fake", HotDeploy: true, Steps: retire}, ""},
		{"hot without HotDeploy", hot, sdk.Description{Name: "fake", Steps: retire}, "deploy_mode: driver fake cannot hot deploy: use deploy_mode: restart, or a driver that can"},
		{"hot without retire", hot, sdk.Description{Name: "fake", HotDeploy: true}, `deploy_mode: driver fake says it hot deploys but declares no "retire" step: use deploy_mode: restart, or fix the driver`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDeployMode(tt.scfg, tt.desc)
			if fmt.Sprint(err) != tt.want && !(err == nil && tt.want == "") {
				t.Errorf("checkDeployMode = %v, want %q", err, tt.want)
			}
		})
	}
}

// A hot install and a hot rollback reach a driver that can hot deploy as
// Release.Hot; a restart one, or none, as the service's deploy_mode says.
func TestInstallMode(t *testing.T) {
	f := newCore(t)
	f.agent.services["A"].desc.HotDeploy = true
	v1, v2 := f.upload("v1"), f.upload("v2")
	for _, tt := range []struct {
		step string
		args map[string]any
		hot  bool
	}{
		{"install", map[string]any{"artifact": map[string]any{"sha256": v1, "name": "app.war"}}, false},
		{"install", map[string]any{"artifact": map[string]any{"sha256": v2, "name": "app.war"}, "mode": "hot"}, true},
		{"rollback", map[string]any{"mode": "hot"}, true},
		{"install", map[string]any{"artifact": map[string]any{"sha256": v2, "name": "app.war"}, "mode": "restart"}, false},
	} {
		if _, err := f.step(tt.step, tt.args); err != nil {
			t.Fatalf("%s %v: %v", tt.step, tt.args, err)
		}
		if got := f.driver.last().Hot; got != tt.hot {
			t.Errorf("%s %v: Release.Hot = %v, want %v", tt.step, tt.args, got, tt.hot)
		}
	}
	if got := f.agent.Services()[0].Mode; got != ModeRestart {
		t.Errorf("service mode = %q, want restart", got)
	}
}
