package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/enginetest"
)

// hooked is the built-in deploy with before and after hooks: by default
// each posts to ctx.params.url, after with the summary.
func hooked(before, after string) string {
	if before == "" {
		before = `post(ctx, { hook = "before", template = ctx.template })`
	}
	if after == "" {
		after = `post(ctx, { hook = "after", summary = summary })`
	}
	return `local deploy = flows.builtin("deploy")
local params = { url = { type = "string", required = true, doc = "chat webhook" } }
for name, spec in pairs(deploy.params) do params[name] = spec end
local function post(ctx, body)
  local res, err = http.post(ctx.params.url, body, { timeout = 5 })
  if not res then error(err) end
end
return {
  name = "hooked",
  params = params,
  before = function(ctx)
    ` + before + `
  end,
  each = deploy.each,
  rollback = deploy.rollback,
  after = function(ctx, summary)
    ` + after + `
  end,
}`
}

// timeline records what a run did, in order: "before" and "after" for the
// hooks' posts, "steps" for one or more steps in a row.
type timeline struct {
	mu      sync.Mutex
	events  []string
	summary map[string]any // what after posted
}

func (tl *timeline) add(event string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if event == "steps" && len(tl.events) > 0 && tl.events[len(tl.events)-1] == "steps" {
		return
	}
	tl.events = append(tl.events, event)
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return strings.Join(tl.events, " ")
}

// chat is a webhook that adds each post's hook to tl.
func (tl *timeline) chat(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var msg struct {
			Hook    string         `json:"hook"`
			Summary map[string]any `json:"summary"`
		}
		if err := json.NewDecoder(req.Body).Decode(&msg); err != nil {
			t.Error(err)
		}
		tl.add(msg.Hook)
		if msg.Summary != nil {
			tl.mu.Lock()
			tl.summary = msg.Summary
			tl.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// summaryLine is the summary after posted, as one line: outcome, exit
// code, counts, then each instance's result and error.
func (tl *timeline) summaryLine() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	s := tl.summary
	if s == nil {
		return ""
	}
	counts, _ := s["counts"].(map[string]any)
	var cs []string
	for _, k := range []string{"ok", "failed", "rolled_back", "skipped", "interrupted"} {
		cs = append(cs, fmt.Sprintf("%s:%v", k, counts[k]))
	}
	line := fmt.Sprintf("%v exit %v [%s]", s["outcome"], s["exit_code"], strings.Join(cs, " "))
	if e, ok := s["error"]; ok {
		line += fmt.Sprintf(" (%v)", e)
	}
	insts, _ := s["instances"].([]any)
	for _, i := range insts {
		m, _ := i.(map[string]any)
		line += fmt.Sprintf(" | %v=%v", m["instance"], m["result"])
		if e, ok := m["error"]; ok {
			line += fmt.Sprintf(" %q", e)
		}
	}
	return line
}

// timedTarget adds "steps" to a timeline for every step.
type timedTarget struct {
	*enginetest.Fleet
	tl *timeline
}

func (t timedTarget) Do(ctx context.Context, inst engine.Instance, step engine.Step) (engine.StepResult, error) {
	t.tl.add("steps")
	return t.Fleet.Do(ctx, inst, step)
}

// runHooked runs hooked(before, after) on web01 (a1, a2) with opts.
func runHooked(t *testing.T, ctx context.Context, before, after string, f *enginetest.Fleet, opts engine.Options) (*engine.Report, *timeline, string) {
	t.Helper()
	tl := &timeline{}
	chat := tl.chat(t)
	var logs bytes.Buffer
	opts.Servers, opts.Target = []string{"web01"}, timedTarget{f, tl}
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	rep, err := run(ctx, registry(t, map[string]string{"hooked": hooked(before, after)}), "hooked", map[string]string{"service": "A", "artifact": artifact(t), "url": chat.URL}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep, tl, logs.String()
}

// TestHooks: before runs once before the first step, after once at the
// end with the run's summary, whatever happened; a failed before stops the
// run with exit 2, a failed after changes no exit code.
func TestHooks(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		fail          map[string]map[string]string
		exit          int
		steps         int // how many steps reached the fleet
		timeline      string
		summary       string
		hooks         string // the report's hooks
		log           string
	}{
		{
			name: "every instance deployed", exit: engine.ExitOK, steps: 8,
			timeline: "before steps after",
			summary:  "succeeded exit 0 [ok:2 failed:0 rolled_back:0 skipped:0 interrupted:0] | web01/A/a1=ok | web01/A/a2=ok",
			hooks:    "before=ok after=ok",
		},
		{
			name: "a failure: rolled back and skipped instances in the summary", exit: engine.ExitRolledBack, steps: 4,
			fail:     map[string]map[string]string{"web01/A/a1": {"install": "disk full"}},
			timeline: "before steps after",
			hooks:    "before=ok after=ok",
			summary:  `failed-rolled-back exit 1 [ok:0 failed:0 rolled_back:1 skipped:1 interrupted:0] (1 of 2 instances failed) | web01/A/a1=rolled-back "flows-lua/deploy.lua:42: install web01/A/a1: disk full" | web01/A/a2=skipped`,
		},
		{
			name: "before fails: no step, exit 2, after hears of it", exit: engine.ExitUsage,
			before:   `error("change ticket refused")`,
			timeline: "after",
			hooks:    `before=failed "test/hooked.lua:12: change ticket refused" after=ok`,
			summary:  `failed-unchanged exit 2 [ok:0 failed:0 rolled_back:0 skipped:2 interrupted:0] (before failed: test/hooked.lua:12: change ticket refused) | web01/A/a1=skipped "not started: before failed" | web01/A/a2=skipped "not started: before failed"`,
			log:      `msg="before failed" template=hooked error="test/hooked.lua:12: change ticket refused"`,
		},
		{
			name: "after fails: the exit code stands", exit: engine.ExitOK, steps: 8,
			after:    `error("chat is down")`,
			timeline: "before steps",
			hooks:    `before=ok after=failed "test/hooked.lua:17: chat is down"`,
			log:      `msg="after failed: the exit code stands" template=hooked error="test/hooked.lua:17: chat is down"`,
		},
		{
			name: "hooks run no instance steps", exit: engine.ExitOK, steps: 8,
			after:    `ctx.server = "web01"; ctx:instances("A")[1]:stop()`,
			timeline: "before steps",
			hooks:    `before=ok after=failed "test/hooked.lua:17: stop: instance steps run in each and rollback, not in after"`,
			log:      `instance steps run in each and rollback, not in after`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01")
			f.Fail = tt.fail
			rep, tl, logs := runHooked(t, context.Background(), tt.before, tt.after, f, engine.Options{})
			if rep.ExitCode != tt.exit {
				t.Fatalf("exit %d %s (%s), want %d", rep.ExitCode, rep.Outcome, rep.Error, tt.exit)
			}
			if got := tl.String(); got != tt.timeline {
				t.Errorf("timeline %q, want %q", got, tt.timeline)
			}
			if got := tl.summaryLine(); got != tt.summary {
				t.Errorf("summary:\n got %s\nwant %s", got, tt.summary)
			}
			if !strings.Contains(logs, tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, logs)
			}
			var hooks []string
			for _, h := range rep.Hooks {
				hook := h.Name + "=" + h.Result
				if h.Error != "" {
					hook += fmt.Sprintf(" %q", h.Error)
				}
				hooks = append(hooks, hook)
			}
			if got := strings.Join(hooks, " "); got != tt.hooks {
				t.Errorf("report's hooks %s, want %s", got, tt.hooks)
			}
			if n := len(f.Calls()); n != tt.steps {
				t.Errorf("%d steps, want %d: %v", n, tt.steps, steps(f))
			}
		})
	}
}

// TestHooksInterrupt: after runs after an interrupt and a timeout too,
// with what the run's summary says then, for as long as the grace period
// lasts.
func TestHooksInterrupt(t *testing.T) {
	tests := []struct {
		name    string
		after   string
		opts    engine.Options
		cancel  bool
		summary string
		log     string
	}{
		{
			name: "SIGTERM during a step", cancel: true, opts: engine.Options{Grace: time.Minute},
			summary: `interrupted exit 143 [ok:0 failed:0 rolled_back:0 skipped:1 interrupted:1] (terminated (SIGTERM)) | web01/A/a1=interrupted "flows-lua/deploy.lua:42: install web01/A/a1: not started: terminated (SIGTERM)" | web01/A/a2=skipped`,
		},
		{
			name: "timeout", opts: engine.Options{Timeout: 100 * time.Millisecond},
			summary: `failed-unhealthy exit 3 [ok:0 failed:0 rolled_back:0 skipped:1 interrupted:1] (1 of 2 instances failed) | web01/A/a1=interrupted "flows-lua/deploy.lua:42: install web01/A/a1: not started: timeout after 100ms (raise it with --timeout)" | web01/A/a2=skipped`,
		},
		{
			name: "the grace period ends", cancel: true, opts: engine.Options{Grace: 500 * time.Millisecond},
			after: `sleep(60)`,
			log:   `msg="after failed: the exit code stands" template=hooked error="after: terminated (SIGTERM)"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fleet("web01")
			f.Delay = 300 * time.Millisecond
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tt.cancel {
				// The signal arrives while the first step runs.
				go func() {
					for len(f.Calls()) == 0 && ctx.Err() == nil {
						time.Sleep(time.Millisecond)
					}
					cancel(exitCause{})
				}()
			}
			rep, tl, logs := runHooked(t, ctx, "", tt.after, f, tt.opts)
			if tt.cancel && rep.ExitCode != 143 {
				t.Errorf("exit %d %s, want 143", rep.ExitCode, rep.Outcome)
			}
			if got := tl.summaryLine(); got != tt.summary {
				t.Errorf("summary:\n got %s\nwant %s", got, tt.summary)
			}
			if !strings.Contains(logs, tt.log) {
				t.Errorf("log lacks %q:\n%s", tt.log, logs)
			}
			if got := tl.String(); !slices.Contains([]string{"before steps after", "before steps"}, got) {
				t.Errorf("timeline %q", got)
			}
		})
	}
}

// TestExampleDeployAnnounce runs examples/flows/deploy-announce.lua, the
// hooks example of docs/flows.md, against a fleet and a chat webhook.
func TestExampleDeployAnnounce(t *testing.T) {
	reg := examples(t, "deploy-announce.lua")
	tests := []struct {
		name  string
		fail  map[string]map[string]string
		posts string
	}{
		{
			name:  "every instance deployed",
			posts: "WAR to web01,web02: started by jenkins-deploy-7|WAR to web01,web02: succeeded, exit 0 (4 ok, 0 rolled back, 0 failed, 0 skipped)",
		},
		{
			name: "a rolled-back instance, the rest skipped",
			fail: map[string]map[string]string{"web01/A/a2": {"install": "disk full"}},
			posts: "WAR to web01,web02: started by jenkins-deploy-7|WAR to web01,web02: failed-rolled-back, exit 1 (1 ok, 1 rolled back, 0 failed, 2 skipped)\n" +
				"web01/A/a2 rolled-back: flows-lua/deploy.lua:42: install web01/A/a2: disk full",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, posts := chat(t)
			f := fleet("web01", "web02")
			f.Fail = tt.fail
			war := artifact(t)
			_, err := run(context.Background(), reg, "deploy-announce", map[string]string{"service": "A", "artifact": war, "notify_url": url}, engine.Options{
				Servers: []string{"web01", "web02"}, Target: f, Build: engine.Build{Tag: "jenkins-deploy-7"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.ReplaceAll(posts(), war, "WAR"); got != tt.posts {
				t.Fatalf("posts:\n got %q\nwant %q", got, tt.posts)
			}
		})
	}
}
