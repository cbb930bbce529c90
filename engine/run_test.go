package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
	flows "github.com/baepo/baepo/flows-lua"
)

// registry loads the built-in templates plus extra test templates.
func registry(t testing.TB, extra map[string]string) *engine.Registry {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, code := range extra {
		fsys[name+".lua"] = &fstest.MapFile{Data: []byte(code)}
	}
	reg, err := engine.Load(engine.LoadOptions{}, engine.Source{Dir: "flows-lua", FS: flows.FS, Builtin: true}, engine.Source{Dir: "test", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// run parses raw as the params of the template called name and runs it.
func run(ctx context.Context, reg *engine.Registry, name string, raw map[string]string, opts engine.Options) (*engine.Report, error) {
	tmpl, err := reg.Get(name)
	if err != nil {
		return nil, err
	}
	params, err := tmpl.ParseParams(raw)
	if err != nil {
		return nil, err
	}
	return tmpl.Run(ctx, params, opts)
}

// checkError fails t unless err contains wantErr, or is nil when wantErr is
// empty. It reports whether an error was wanted: the caller stops there.
func checkError(t *testing.T, err error, wantErr string) (wanted bool) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("err = %v, want one containing %q", err, wantErr)
	}
	return true
}

func artifact(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.war")
	if err := os.WriteFile(p, []byte("PK"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fleet(servers ...string) *enginetest.Fleet {
	f := &enginetest.Fleet{Servers: map[string]map[string][]string{}}
	for _, s := range servers {
		f.Servers[s] = map[string][]string{"A": {"a1", "a2"}}
	}
	return f
}

// steps lists "instance:step" for every call, in order.
func steps(f *enginetest.Fleet) []string {
	var out []string
	for _, c := range f.Calls() {
		out = append(out, c.Instance.String()+":"+c.Step.Name)
	}
	return out
}

// sentReads fails t unless f received nothing but the status step a dry
// run sends before each instance: a dry run changes nothing.
func sentReads(t *testing.T, f *enginetest.Fleet) {
	t.Helper()
	for _, c := range f.Calls() {
		if c.Step.Name != "status" {
			t.Fatalf("a dry run sent %v", steps(f))
		}
	}
}

func results(rep *engine.Report) string {
	var out []string
	for _, ir := range rep.Instances {
		out = append(out, ir.Instance.String()+"="+ir.Result)
	}
	return strings.Join(out, " ")
}

func TestDeployRolling(t *testing.T) {
	f := fleet("web01", "web02")
	war := artifact(t)
	rep, err := run(context.Background(), registry(t, nil), "deploy", map[string]string{"service": "A", "artifact": war}, engine.Options{
		Servers: []string{"web01", "web02"},
		Target:  f,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode != engine.ExitOK || rep.Outcome != engine.OutcomeSucceeded {
		t.Fatalf("exit %d %s: %s", rep.ExitCode, rep.Outcome, rep.Error)
	}
	want := []string{}
	for _, inst := range []string{"web01/A/a1", "web01/A/a2", "web02/A/a1", "web02/A/a2"} {
		for _, s := range []string{"stop", "install", "start", "health"} {
			want = append(want, inst+":"+s)
		}
	}
	if got := steps(f); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("steps:\n got %v\nwant %v", got, want)
	}
	if f.Peak() != 1 {
		t.Fatalf("batch 1 ran %d steps at once", f.Peak())
	}
	st := f.State(engine.Instance{Server: "web02", Service: "A", Name: "a2"})
	if !st.Running || st.Release != war {
		t.Fatalf("state = %+v", st)
	}
	health := f.Calls()[3].Step
	if health.Args["timeout"] != "1m30s" {
		t.Fatalf("health args = %v", health.Args)
	}
}

func TestBatches(t *testing.T) {
	tests := []struct {
		batch string
		peak  int
		nums  []int
	}{
		{"1", 1, []int{1, 2, 3, 4}},
		{"2", 2, []int{1, 1, 2, 2}},
		{"50%", 2, []int{1, 1, 2, 2}},
		{"100%", 4, []int{1, 1, 1, 1}},
		{"9", 4, []int{1, 1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.batch, func(t *testing.T) {
			f := fleet("web01", "web02")
			f.Delay = 20 * time.Millisecond
			batch, err := engine.ParseBatch(tt.batch)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := run(context.Background(), registry(t, nil), "stop", map[string]string{"service": "A"}, engine.Options{
				Servers: []string{"web01", "web02"}, Batch: batch, Target: f,
			})
			if err != nil || rep.ExitCode != 0 {
				t.Fatalf("err %v, report %+v", err, rep)
			}
			if f.Peak() != tt.peak {
				t.Errorf("peak = %d, want %d", f.Peak(), tt.peak)
			}
			for i, ir := range rep.Instances {
				if ir.Batch != tt.nums[i] {
					t.Errorf("%s in batch %d, want %d", ir.Instance, ir.Batch, tt.nums[i])
				}
			}
		})
	}
}

func TestFailures(t *testing.T) {
	noRollback := `return {
  name = "deploy-no-rollback",
  params = { service = { doc = "s" }, artifact = { type = "artifact", doc = "a" } },
  each = function(i, ctx) i:stop(); i:install(ctx.params.artifact); i:start(); i:health() end,
}`
	tests := []struct {
		name     string
		template string
		fail     map[string]map[string]string
		maxFail  string
		exit     int
		outcome  string
		results  string
	}{
		{
			name: "install fails, rolled back", template: "deploy",
			fail:    map[string]map[string]string{"web01/A/a2": {"install": "disk full"}},
			exit:    engine.ExitRolledBack,
			outcome: engine.OutcomeRolledBack,
			results: "web01/A/a1=ok web01/A/a2=rolled-back web02/A/a1=skipped web02/A/a2=skipped",
		},
		{
			name: "health fails, rollback fails too", template: "deploy",
			fail:    map[string]map[string]string{"web01/A/a1": {"health": "HTTP 503"}},
			exit:    engine.ExitUnhealthy,
			outcome: engine.OutcomeUnhealthy,
			results: "web01/A/a1=failed web01/A/a2=skipped web02/A/a1=skipped web02/A/a2=skipped",
		},
		{
			name: "budget of one lets the run go on", template: "deploy", maxFail: "1",
			fail:    map[string]map[string]string{"web01/A/a1": {"install": "disk full"}},
			exit:    engine.ExitRolledBack,
			outcome: engine.OutcomeRolledBack,
			results: "web01/A/a1=rolled-back web01/A/a2=ok web02/A/a1=ok web02/A/a2=ok",
		},
		{
			name: "budget of one spent by two", template: "deploy", maxFail: "1",
			fail: map[string]map[string]string{
				"web01/A/a1": {"install": "disk full"},
				"web01/A/a2": {"install": "disk full"},
			},
			exit:    engine.ExitRolledBack,
			outcome: engine.OutcomeRolledBack,
			results: "web01/A/a1=rolled-back web01/A/a2=rolled-back web02/A/a1=skipped web02/A/a2=skipped",
		},
		{
			name: "no rollback function", template: "deploy-no-rollback",
			fail:    map[string]map[string]string{"web01/A/a1": {"start": "port in use"}},
			exit:    engine.ExitUnhealthy,
			outcome: engine.OutcomeUnhealthy,
			results: "web01/A/a1=failed web01/A/a2=skipped web02/A/a1=skipped web02/A/a2=skipped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01", "web02")
			f.Fail = tt.fail
			var maxFail engine.Count
			if tt.maxFail != "" {
				maxFail, _ = engine.ParseMaxFailures(tt.maxFail)
			}
			rep, err := run(context.Background(), registry(t, map[string]string{"norollback": noRollback}), tt.template, map[string]string{"service": "A", "artifact": artifact(t)}, engine.Options{
				Servers: []string{"web01", "web02"}, MaxFailures: maxFail, Target: f,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.ExitCode != tt.exit || rep.Outcome != tt.outcome || results(rep) != tt.results {
				t.Fatalf("exit %d %s %s, want %d %s %s", rep.ExitCode, rep.Outcome, results(rep), tt.exit, tt.outcome, tt.results)
			}
		})
	}
}

func TestRollbackSteps(t *testing.T) {
	f := fleet("web01")
	f.Fail = map[string]map[string]string{"web01/A/a1": {"install": "disk full"}}
	rep, err := run(context.Background(), registry(t, nil), "deploy", map[string]string{"service": "A", "artifact": artifact(t)}, engine.Options{
		Servers: []string{"web01"}, Target: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	// install failed, so nothing was installed: rollback starts the old
	// release again instead of swapping releases.
	want := "web01/A/a1:stop web01/A/a1:install web01/A/a1:start web01/A/a1:health"
	if got := strings.Join(steps(f), " "); got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	ir := rep.Instances[0]
	if !strings.Contains(ir.Error, "test/../flows-lua/deploy.lua") && !strings.Contains(ir.Error, "flows-lua/deploy.lua:") {
		t.Errorf("error %q does not name the template line", ir.Error)
	}
	if !strings.Contains(ir.Error, "disk full") {
		t.Errorf("error = %q", ir.Error)
	}
	var phases []string
	for _, s := range ir.Steps {
		phases = append(phases, s.Phase+":"+s.Name+":"+s.Result)
	}
	if got := strings.Join(phases, " "); got != "each:stop:ok each:install:failed rollback:start:ok rollback:health:ok" {
		t.Fatalf("records = %s", got)
	}
}

func TestUnreachable(t *testing.T) {
	f := fleet("web01", "web02")
	f.Unreachable = []string{"web02"}
	_, err := run(context.Background(), registry(t, nil), "deploy", map[string]string{"service": "A", "artifact": artifact(t)}, engine.Options{
		Servers: []string{"web01", "web02"}, Target: f,
	})
	if !errors.Is(err, engine.ErrUnreachable) || engine.ExitCode(err) != engine.ExitUnreachable {
		t.Fatalf("err = %v", err)
	}
	if len(f.Calls()) != 0 {
		t.Fatalf("steps ran: %v", steps(f))
	}
}

func TestUsageErrors(t *testing.T) {
	war := artifact(t)
	tests := []struct {
		name     string
		template string
		params   map[string]string
		servers  []string
		want     string
	}{
		{"unknown template", "deplyo", nil, []string{"web01"}, `unknown template "deplyo" (known: deploy,`},
		{"unknown param", "deploy", map[string]string{"service": "A", "artifact": war, "servce": "A"}, []string{"web01"}, "deploy: unknown param --servce (valid: --artifact, --health_timeout, --mode, --service)"},
		{"missing param", "deploy", map[string]string{"service": "A"}, []string{"web01"}, "deploy: missing required param --artifact"},
		{"missing file", "deploy", map[string]string{"service": "A", "artifact": "nope.war"}, []string{"web01"}, "--artifact: nope.war: no such file"},
		{"URL without digest", "deploy", map[string]string{"service": "A", "artifact": "https://nexus.example/app.war"}, []string{"web01"}, "--artifact: https://nexus.example/app.war: add the digest the agent must check"},
		{"bad duration", "deploy", map[string]string{"service": "A", "artifact": war, "health_timeout": "soon"}, []string{"web01"}, `--health_timeout: "soon" is not a duration`},
		{"mode not a value", "deploy", map[string]string{"service": "A", "artifact": war, "mode": "hto"}, []string{"web01"}, `--mode: "hto" is not one of hot, restart`},
		{"unknown service", "deploy", map[string]string{"service": "B", "artifact": war}, []string{"web01"}, `unknown service "B"`},
		{"no servers", "deploy", map[string]string{"service": "A", "artifact": war}, nil, "no servers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01")
			_, err := run(context.Background(), registry(t, nil), tt.template, tt.params, engine.Options{Servers: tt.servers, Target: f})
			if err == nil || !strings.Contains(err.Error(), tt.want) || engine.ExitCode(err) != engine.ExitUsage {
				t.Fatalf("err = %v (exit %d), want %q", err, engine.ExitCode(err), tt.want)
			}
			if len(f.Calls()) != 0 {
				t.Fatalf("steps ran: %v", steps(f))
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	t.Run("deploy", func(t *testing.T) {
		f := fleet("web01")
		war := artifact(t)
		rep, err := run(context.Background(), registry(t, nil), "deploy", map[string]string{"service": "A", "artifact": war}, engine.Options{
			Servers: []string{"web01"}, Target: f, DryRun: true,
		})
		if err != nil || rep.ExitCode != 0 {
			t.Fatalf("err %v %+v", err, rep)
		}
		sentReads(t, f)
		if got := strings.Join(steps(f), " "); got != "web01/A/a1:status web01/A/a2:status" {
			t.Fatalf("sent %s, want the status of each instance before its plan", got)
		}
		for _, ir := range rep.Instances {
			var got []string
			for _, s := range ir.Steps {
				got = append(got, s.Phase+" "+s.Name+"="+s.Result)
			}
			if strings.Join(got, ", ") != "plan status=ok, each stop=planned, each install=planned, each start=planned, each health=planned" {
				t.Fatalf("%s: %v", ir.Instance, got)
			}
			if ir.Steps[2].Args["artifact"] != (engine.Artifact{Path: war}) {
				t.Fatalf("install args = %v", ir.Steps[1].Args)
			}
		}
	})

	// A dry run changes nothing outside either: http.post is planned, in
	// each and in targets, and never reaches the server.
	t.Run("http.post", func(t *testing.T) {
		var received atomic.Int32
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { received.Add(1) }))
		defer hook.Close()
		code := `return {
  name = "flow",
  params = { service = { doc = "s" }, hook = { doc = "h" } },
  targets = function(ctx)
    http.post(ctx.params.hook .. "/targets?token=s3cret", "resolving")
    return ctx:instances(ctx.params.service)
  end,
  each = function(i, ctx)
    i:stop()
    local res, err = http.post(ctx.params.hook .. "/each", { text = tostring(i) })
    assert(res and res.dry_run and not err, "a planned post returns { dry_run = true }")
  end,
}`
		f := fleet("web01")
		rep, err := run(context.Background(), registry(t, map[string]string{"flow": code}), "flow", map[string]string{"service": "A", "hook": hook.URL}, engine.Options{
			Servers: []string{"web01"}, Target: f, DryRun: true,
		})
		if err != nil || rep.ExitCode != 0 {
			t.Fatalf("err %v, report %+v", err, rep)
		}
		if n := received.Load(); n != 0 {
			t.Fatalf("a dry run sent %d requests", n)
		}
		sentReads(t, f)
		for _, ir := range rep.Instances {
			var got []string
			for _, s := range ir.Steps {
				got = append(got, s.Phase+" "+s.Name+"="+s.Result)
			}
			if want := "plan status=ok|each stop=planned|each http.post " + hook.URL + "/each=planned"; strings.Join(got, "|") != want {
				t.Fatalf("%s: %q, want %q", ir.Instance, strings.Join(got, "|"), want)
			}
		}
		if len(rep.Planned) != 1 || rep.Planned[0].Name != "http.post "+hook.URL+"/targets" || rep.Planned[0].Phase != "targets" || rep.Planned[0].Result != engine.ResultPlanned {
			t.Fatalf("the run's planned steps: %+v", rep.Planned)
		}
	})

	// The status a dry run reads first is the instance's first step: when
	// it fails, the instance fails (and its rollback is planned), as it
	// would in the real run.
	t.Run("status fails", func(t *testing.T) {
		f := &enginetest.Fleet{Fail: map[string]map[string]string{"web01/A/a1": {"status": "plugin jar: sha256 mismatch"}}, Unreachable: []string{"web02"}}
		both, _ := engine.ParseBatch("2")
		budget, _ := engine.ParseMaxFailures("2")
		rep, err := run(context.Background(), registry(t, nil), "deploy", map[string]string{"service": "A", "artifact": artifact(t)}, engine.Options{
			Servers: []string{"web01", "web02"}, Target: listedTarget{f}, DryRun: true, Batch: both, MaxFailures: budget,
		})
		if err != nil {
			t.Fatal(err)
		}
		sentReads(t, f)
		want := []string{"status web01/A/a1: plugin jar: sha256 mismatch", "status web02/A/a1: agent unreachable: web02: connection refused"}
		for i, ir := range rep.Instances {
			if !ir.Failed() || !strings.HasPrefix(ir.Error, want[i]) {
				t.Errorf("%s: %s %q, want it failed with %q", ir.Instance, ir.Result, ir.Error, want[i])
			}
		}
		if rep.ExitCode != engine.ExitUsage {
			t.Fatalf("exit %d, want %d: nothing changed, and not every agent was unreachable", rep.ExitCode, engine.ExitUsage)
		}
	})

	// A dry run checks what it plans, without sending it: a command the
	// agent does not allow-list, or a step the driver does not offer,
	// fails the instance as the real run would, and the run changed
	// nothing: exit 2.
	for _, tt := range []struct {
		name, each string
		exit       int
		errs       string
	}{
		{name: "allowed", each: `i:run("drain", { seconds = 30 }); i:step("thread-dump")`, exit: engine.ExitOK},
		{name: "command not allow-listed", each: `i:run("migrate")`, exit: engine.ExitUsage,
			errs: `test/flow.lua:4: run web01/A/a1: refused: command "migrate" is not allow-listed (commands: drain)`},
		{name: "wrong arguments", each: `i:run("drain", { secs = 30 })`, exit: engine.ExitUsage,
			errs: `test/flow.lua:4: run web01/A/a1: refused: command drain takes [seconds], got [secs]`},
		{name: "step the driver does not offer", each: `i:step("heap-dump")`, exit: engine.ExitUsage,
			errs: `test/flow.lua:4: heap-dump web01/A/a1: refused: unknown step "heap-dump" for web01/A/a1 (driver steps: thread-dump)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code := "return {\n  name = \"flow\", params = { service = { doc = \"s\" } }, strategy = { batch = 2 },\n  each = function(i, ctx)\n    " + tt.each + "\n  end,\n}\n"
			f := fleet("web01")
			f.Commands = map[string][]string{"drain": {"seconds"}}
			f.Steps = map[string][]string{"A": {"thread-dump"}}
			rep, err := run(context.Background(), registry(t, map[string]string{"flow": code}), "flow", map[string]string{"service": "A"}, engine.Options{
				Servers: []string{"web01"}, Target: f, DryRun: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			sentReads(t, f)
			if rep.ExitCode != tt.exit {
				t.Fatalf("exit %d (%s), want %d", rep.ExitCode, results(rep), tt.exit)
			}
			if tt.errs == "" {
				return
			}
			if ir := rep.Instances[0]; ir.Result != engine.ResultFailed || ir.Error != tt.errs || ir.Steps[1].Result != engine.ResultFailed {
				t.Fatalf("a1: %s %q, want failed %q; steps %+v", ir.Result, ir.Error, tt.errs, ir.Steps)
			}
			if rep.Outcome != engine.OutcomeUnchanged {
				t.Fatalf("outcome %s, want %s", rep.Outcome, engine.OutcomeUnchanged)
			}
		})
	}
}

// flow runs one test template on web01 (a1, a2) and returns the report.
func flow(t *testing.T, code string, opts engine.Options) (*engine.Report, *enginetest.Fleet) {
	t.Helper()
	f := fleet("web01")
	opts.Servers, opts.Target = []string{"web01"}, f
	rep, err := run(context.Background(), registry(t, map[string]string{"flow": code}), "flow", map[string]string{"service": "A"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep, f
}

func TestPrimitives(t *testing.T) {
	var logs bytes.Buffer
	code := `return {
  name = "flow",
  params = {
    service = { doc = "s" },
    n = { type = "number", doc = "n", default = 3 },
    on = { type = "bool", doc = "b", default = true },
    hosts = { type = "list", doc = "l", default = "x,y" },
  },
  targets = function(ctx)
    local out = {}
    for _, i in ipairs(ctx:instances(ctx.params.service)) do
      if i.name ~= "a2" then table.insert(out, i) end
    end
    return out
  end,
  each = function(i, ctx)
    assert(ctx.params.n == 3, "n")
    assert(ctx.params.on == true, "on")
    assert(ctx.params.hosts[2] == "y", "hosts")
    assert(ctx.build.job == "web-deploy", "build")
    assert(tostring(i) == "web01/A/a1" and i.server == "web01" and i.service == "A", "instance fields")
    local s = i:status()
    assert(s.running == false, "status")
    local l = i:logs{ lines = 5 }
    assert(l.text:find("log line 2"), "logs")
    i:step("thread-dump", { full = true })
    i:run("drain")
    assert(json.decode(json.encode({ a = 1 })).a == 1, "json")
    assert(type(http.get) == "function", "http")
    sleep(0.001)
    log.info("checked", "instance", tostring(i), "n", ctx.params.n)
  end,
}`
	rep, f := flow(t, code, engine.Options{Build: engine.Build{Job: "web-deploy"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if rep.ExitCode != 0 {
		t.Fatalf("%s: %+v", rep.Error, rep.Instances)
	}
	calls := f.Calls()
	if len(calls) != 4 || calls[2].Step.Name != "thread-dump" || calls[2].Step.Args["full"] != true || calls[3].Step.Name != "run" || calls[3].Step.Args["command"] != "drain" {
		t.Fatalf("calls = %+v", calls)
	}
	if !strings.Contains(logs.String(), "msg=checked") || !strings.Contains(logs.String(), "instance=web01/A/a1") {
		t.Fatalf("logs = %s", logs.String())
	}
}

func TestFlowErrors(t *testing.T) {
	tests := []struct {
		name string
		each string
		want string
	}{
		{"runtime error", "local x = nil\n    x.y = 1", "test/flow.lua:5: attempt to index a non-table object(nil)"},
		{"fail", "fail(\"no \" .. i.name)", "test/flow.lua:4: no a1"},
		{"dot call", "i.stop()", "test/flow.lua:4: bad argument #1 to stop (instance expected: call steps with a colon, i:stop())"},
		{"unknown method", "i:stpo()", "test/flow.lua:4: attempt to call a non-function object"},
		{"read-only field", "i.name = 'x'", `instance field "name" is read-only`},
		{"read-only mode", "i.mode = 'hot'", `instance field "mode" is read-only`},
		{"mode restart when the agent does not say", "fail('mode=' .. i.mode)", "test/flow.lua:4: mode=restart"},
		{"artifact of the flow's own", "i:install('nope.war')", "test/flow.lua:4: bad argument #2 to install (nope.war: no such file"},
		{"os", "os.execute('touch /tmp/baepo-escape')", "test/flow.lua:4: os is not available in flows"},
		{"io", "io.open('/etc/passwd')", "test/flow.lua:4: io is not available in flows"},
		{"debug", "debug.getinfo(1)", "test/flow.lua:4: debug is not available in flows"},
		{"package", "package.loadlib('x', 'y')", "test/flow.lua:4: package is not available in flows"},
		{"load", "load('return 1')()", "test/flow.lua:4: load is not available in flows"},
		{"loadstring", "loadstring('return 1')()", "loadstring is not available in flows"},
		{"dofile", "dofile('/etc/passwd')", "dofile is not available in flows"},
		{"loadfile", "loadfile('/etc/passwd')", "loadfile is not available in flows"},
		{"require", "require('os')", "require is not available in flows"},
		{"setfenv", "setfenv(1, {})", "setfenv is not available in flows"},
		{"string.dump", "string.dump(print)", "string.dump is not available in flows"},
		{"string metatable", "getmetatable('').__index.leak = 1", "test/flow.lua:4: attempt to index a non-table object(boolean)"},
		{"globals through the environment", "getmetatable(_G).__index.leak = 1", "test/flow.lua:4: attempt to index a non-table object(boolean)"},
		{"instance metatable", "getmetatable(i).__index = nil", "test/flow.lua:4: attempt to index a non-table object(boolean)"},
		{"metatable of a number", "setmetatable(1, { __index = {} })", "test/flow.lua:4: bad argument #1 to setmetatable (table expected, got number)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := "return {\n  name = \"flow\", params = { service = { doc = \"s\" } },\n  each = function(i, ctx)\n    " + tt.each + "\n  end,\n}\n"
			rep, f := flow(t, code, engine.Options{})
			ir := rep.Instances[0]
			if ir.Result != engine.ResultFailed || !strings.Contains(ir.Error, tt.want) {
				t.Fatalf("result %s, error %q, want %q", ir.Result, ir.Error, tt.want)
			}
			// The flow failed before any step changed anything: 2, not 3.
			if rep.ExitCode != engine.ExitUsage || rep.Outcome != engine.OutcomeUnchanged || rep.Instances[1].Result != engine.ResultSkipped {
				t.Fatalf("exit %d %s, %s", rep.ExitCode, rep.Outcome, results(rep))
			}
			if len(f.Calls()) != 0 {
				t.Fatalf("calls: %v", steps(f))
			}
		})
	}
	if _, err := os.Stat("/tmp/baepo-escape"); err == nil {
		t.Fatal("a flow escaped the sandbox")
	}
}

func TestTimeout(t *testing.T) {
	code := "return {\n  name = \"flow\", params = { service = { doc = \"s\" } },\n  each = function(i, ctx)\n    while true do end\n  end,\n}\n"
	rep, _ := flow(t, code, engine.Options{Timeout: 100 * time.Millisecond})
	ir := rep.Instances[0]
	if ir.Result != engine.ResultInterrupted || !strings.Contains(ir.Error, "test/flow.lua:4: timeout after 100ms (raise it with --timeout)") {
		t.Fatalf("instance %+v", ir)
	}
	if rep.ExitCode != engine.ExitUsage || rep.Instances[1].Result != engine.ResultSkipped {
		t.Fatalf("exit %d %s", rep.ExitCode, results(rep))
	}
}

func TestInterrupt(t *testing.T) {
	interrupted := errors.New("interrupted by SIGTERM")
	tests := []struct {
		name      string
		grace     time.Duration
		stepError string // "" = the running step finished
	}{
		{"running step finishes", time.Minute, ""},
		{"grace runs out", 20 * time.Millisecond, "interrupted by SIGTERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01")
			f.Delay = 300 * time.Millisecond
			ctx, cancel := context.WithCancelCause(context.Background())
			rep, err := run(ctx, registry(t, nil), "deploy", map[string]string{"service": "A", "artifact": artifact(t)}, engine.Options{
				Servers: []string{"web01"}, Target: &interruptInStep{Fleet: f, cancel: cancel, cause: interrupted}, Grace: tt.grace,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Outcome != engine.OutcomeInterrupted || rep.Error != "interrupted by SIGTERM" {
				t.Fatalf("outcome %s %q", rep.Outcome, rep.Error)
			}
			if got := results(rep); got != "web01/A/a1=interrupted web01/A/a2=skipped" {
				t.Fatalf("results %s", got)
			}
			if len(f.Calls()) != 1 {
				t.Fatalf("a new step started after the interrupt: %v", steps(f))
			}
			stop := rep.Instances[0].Steps[0]
			if tt.stepError == "" && stop.Result != engine.ResultOK {
				t.Fatalf("running step: %+v", stop)
			}
			if tt.stepError != "" && (stop.Result != engine.ResultFailed || !strings.Contains(stop.Message, "context canceled")) {
				t.Fatalf("running step: %+v", stop)
			}
		})
	}
}

// seen returns the args of every "seen" step, by instance name.
func seen(f *enginetest.Fleet) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, c := range f.Calls() {
		if c.Step.Name == "seen" {
			out[c.Instance.Name] = c.Step.Args
		}
	}
	return out
}

// TestNoSharedState runs a flow that counts in every place a template can
// write to, on four instances: each instance must start from nothing,
// whichever Lua state of the pool it gets.
func TestNoSharedState(t *testing.T) {
	code := `local n = 0
return {
  name = "flow",
  params = {
    service = { doc = "s" },
    tags = { type = "list", doc = "t", default = "x" },
  },
  each = function(i, ctx)
    n = n + 1
    g = (g or 0) + 1
    _G.h = (_G.h or 0) + 1
    string.s = (string.s or 0) + 1
    rawset(json, "r", (rawget(json, "r") or 0) + 1)
    ctx.c = (ctx.c or 0) + 1
    table.insert(ctx.params.tags, i.name)
    i:step("seen", { n = n, g = g, h = h, s = string.s, r = json.r, c = ctx.c, tags = #ctx.params.tags })
  end,
}`
	for _, batch := range []string{"1", "3"} {
		t.Run("batch "+batch, func(t *testing.T) {
			f := &enginetest.Fleet{Servers: map[string]map[string][]string{"web01": {"A": {"a1", "a2", "a3", "a4"}}}}
			b, _ := engine.ParseBatch(batch)
			rep, err := run(context.Background(), registry(t, map[string]string{"flow": code}), "flow", map[string]string{"service": "A"}, engine.Options{
				Servers: []string{"web01"}, Batch: b, Target: f,
			})
			if err != nil || rep.ExitCode != 0 {
				t.Fatalf("err %v, report %+v", err, rep)
			}
			want := map[string]any{"n": int64(1), "g": int64(1), "h": int64(1), "s": int64(1), "r": int64(1), "c": int64(1), "tags": int64(2)}
			got := seen(f)
			for _, name := range []string{"a1", "a2", "a3", "a4"} {
				if fmt.Sprint(got[name]) != fmt.Sprint(want) {
					t.Errorf("%s saw %v, want %v", name, got[name], want)
				}
			}
		})
	}
}

// TestTargetsFields checks that fields a flow sets on an instance in
// targets reach each, as data, and that what is not data is refused.
func TestTargetsFields(t *testing.T) {
	tests := []struct {
		name    string
		set     string
		want    map[string]string // instance → what each saw
		wantErr string
	}{
		{name: "data reaches each", set: `i.canary = (i.name == "a1"); i.weights = { 10, 20 }`, want: map[string]string{
			"a1": "map[canary:true weight:20]", "a2": "map[canary:false weight:20]",
		}},
		{name: "a function is refused", set: `i.notify = function() end`, wantErr: "test/flow.lua:4: targets: web01/A/a1: notify: cannot convert a function to data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := `return {
  name = "flow",
  params = { service = { doc = "s" } },
  targets = function(ctx)
    local out = ctx:instances(ctx.params.service)
    for _, i in ipairs(out) do ` + tt.set + ` end
    return out
  end,
  each = function(i, ctx) i:step("seen", { canary = i.canary, weight = i.weights and i.weights[2] }) end,
}`
			f := fleet("web01")
			rep, err := run(context.Background(), registry(t, map[string]string{"flow": code}), "flow", map[string]string{"service": "A"}, engine.Options{
				Servers: []string{"web01"}, Target: f,
			})
			if checkError(t, err, tt.wantErr) {
				if engine.ExitCode(err) != engine.ExitUsage || len(f.Calls()) != 0 {
					t.Fatalf("exit %d, calls %v", engine.ExitCode(err), steps(f))
				}
				return
			}
			if rep.ExitCode != 0 {
				t.Fatalf("report %+v", rep)
			}
			for name, want := range tt.want {
				if got := fmt.Sprint(seen(f)[name]); got != want {
					t.Errorf("%s saw %s, want %s", name, got, want)
				}
			}
		})
	}
}

// A run that failed before any step changed an instance does not end with
// 3 ("something changed and is not healthy"): 4 when every failure met an
// agent that could not be reached or was busy, else 2.
func TestNothingChanged(t *testing.T) {
	flow := func(each string) string {
		return `return {
  name = "flow",
  params = { service = { doc = "s" } },
  strategy = { batch = "100%", max_failures = "100%" },
  each = function(i, ctx) ` + each + ` end,
}`
	}
	migrate := map[string]map[string]string{"web01/A/a1": {"run": `command "migrate" is not allow-listed`}}
	tests := []struct {
		name    string
		servers []string // each runs a1 of each; web02 is unreachable
		each    string
		refuse  map[string]map[string]string
		fail    map[string]map[string]string
		exit    int
		outcome string
	}{
		{
			name: "command not allow-listed", servers: []string{"web01"}, each: `i:run("migrate")`, refuse: migrate,
			exit: engine.ExitUsage, outcome: engine.OutcomeUnchanged,
		},
		{
			name: "unknown custom step", servers: []string{"web01"}, each: `i:step("thread-dump")`,
			refuse: map[string]map[string]string{"web01/A/a1": {"thread-dump": `unknown step "thread-dump"`}},
			exit:   engine.ExitUsage, outcome: engine.OutcomeUnchanged,
		},
		{
			name: "read-only status fails (plugin pin mismatch)", servers: []string{"web01"}, each: `i:status()`,
			fail: map[string]map[string]string{"web01/A/a1": {"status": "plugin jetty: sha256 mismatch: refusing to load it"}},
			exit: engine.ExitUsage, outcome: engine.OutcomeUnchanged,
		},
		{
			name: "unreachable", servers: []string{"web02"}, each: `i:stop()`,
			exit: engine.ExitUnreachable, outcome: engine.OutcomeUnreachable,
		},
		{
			name: "refused and unreachable: retrying will not help", servers: []string{"web01", "web02"}, each: `i:run("migrate")`, refuse: migrate,
			exit: engine.ExitUsage, outcome: engine.OutcomeUnchanged,
		},
		{
			name: "refused after a change", servers: []string{"web01"}, each: `i:stop(); i:run("migrate")`, refuse: migrate,
			exit: engine.ExitUnhealthy, outcome: engine.OutcomeUnhealthy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &enginetest.Fleet{Refuse: tt.refuse, Fail: tt.fail, Unreachable: []string{"web02"}}
			rep, err := run(context.Background(), registry(t, map[string]string{"flow": flow(tt.each)}), "flow", map[string]string{"service": "A"}, engine.Options{
				Servers: tt.servers, Target: listedTarget{f},
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.ExitCode != tt.exit || rep.Outcome != tt.outcome {
				t.Fatalf("exit %d %s (%s), want %d %s", rep.ExitCode, rep.Outcome, results(rep), tt.exit, tt.outcome)
			}
		})
	}
}

// listedTarget lists instance a1 of service A on every server without
// asking its fleet, so that the steps of an unreachable one fail, not the
// run's start.
type listedTarget struct{ *enginetest.Fleet }

func (listedTarget) Instances(_ context.Context, server, service string) ([]engine.Instance, error) {
	return []engine.Instance{{Server: server, Service: service, Name: "a1"}}, nil
}

// exitCause is a cancel cause that names the process's exit code, as the
// client's signals do.
type exitCause struct{}

func (exitCause) Error() string { return "terminated (SIGTERM)" }
func (exitCause) ExitCode() int { return 143 }

// A run stopped by a cause with an exit code reports that code, in its
// log and its report, whether a step or the upload before the first step
// was running.
func TestInterruptExitCode(t *testing.T) {
	tests := []struct {
		name           string
		prepare, delay time.Duration
		results        string
	}{
		{"during a step", 0, 300 * time.Millisecond, "web01/A/a1=interrupted web01/A/a2=skipped"},
		{"during the upload", time.Minute, 0, "web01/A/a1=skipped web01/A/a2=skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01")
			f.Delay, f.PrepareDelay = tt.delay, tt.prepare
			ctx, cancel := context.WithCancelCause(context.Background())
			var target engine.Target = &interruptInStep{Fleet: f, cancel: cancel}
			if tt.prepare > 0 {
				time.AfterFunc(50*time.Millisecond, func() { cancel(exitCause{}) })
				target = f
			}
			var logs bytes.Buffer
			rep, err := run(ctx, registry(t, nil), "deploy", map[string]string{"service": "A", "artifact": artifact(t)}, engine.Options{
				Servers: []string{"web01"}, Target: target, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Outcome != engine.OutcomeInterrupted || rep.ExitCode != 143 || rep.Error != "terminated (SIGTERM)" {
				t.Fatalf("outcome %s, exit %d, %q", rep.Outcome, rep.ExitCode, rep.Error)
			}
			if got := results(rep); got != tt.results {
				t.Fatalf("results %s, want %s", got, tt.results)
			}
			if !strings.Contains(logs.String(), `outcome=interrupted exit_code=143`) {
				t.Fatalf("log:\n%s", logs.String())
			}
		})
	}
}

// The first line of an instance's error is the whole story; the log tails
// of its steps follow it.
func TestInstanceErrorFirstLine(t *testing.T) {
	f := fleet("web01")
	f.Fail = map[string]map[string]string{"web01/A/a1": {
		"health":   "did not answer 200 (last: HTTP 404)\n--- last lines of the log ---\nSEVERE: each",
		"rollback": "no previous release\n--- last lines of the log ---\nSEVERE: rollback",
	}}
	rep, err := run(context.Background(), registry(t, nil), "deploy", map[string]string{"service": "A", "artifact": artifact(t)}, engine.Options{
		Servers: []string{"web01"}, Target: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(rep.Instances[0].Error, "\n")
	first := regexp.MustCompile(`^\S+deploy.lua:\d+: health web01/A/a1: did not answer 200 \(last: HTTP 404\); rollback failed: \S+deploy.lua:\d+: rollback web01/A/a1: no previous release$`)
	if len(lines) != 5 || !first.MatchString(lines[0]) || lines[2] != "SEVERE: each" || lines[4] != "SEVERE: rollback" {
		t.Fatalf("error:\n%s", rep.Instances[0].Error)
	}
}
