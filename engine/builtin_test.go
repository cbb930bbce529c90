package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/baepo/baepo/engine"
	flows "github.com/baepo/baepo/flows-lua"
)

// examples checks that docs/flows.md shows examples/flows/file as it is,
// and returns the registry of the built-ins and the examples.
func examples(t *testing.T, file string) *engine.Registry {
	t.Helper()
	example, err := os.ReadFile("../examples/flows/" + file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/flows.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```lua\n"+string(example)+"```\n") {
		t.Fatalf("docs/flows.md does not show examples/flows/%s as it is", file)
	}
	reg, err := engine.Load(engine.LoadOptions{},
		engine.Source{Dir: "flows-lua", FS: flows.FS, Builtin: true},
		engine.Source{Dir: "examples/flows", FS: os.DirFS("../examples/flows")})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// chat is a webhook that keeps the text of every JSON message posted to
// it; posts returns them joined with "|".
func chat(t *testing.T) (url string, posts func() string) {
	var mu sync.Mutex
	var texts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var msg struct{ Text string }
		if err := json.NewDecoder(req.Body).Decode(&msg); err != nil {
			t.Error(err)
		}
		mu.Lock()
		texts = append(texts, msg.Text)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(texts, "|")
	}
}

// TestExampleDeployNotify runs examples/flows/deploy-notify.lua, the
// example of docs/flows.md, against a fleet and a chat webhook.
func TestExampleDeployNotify(t *testing.T) {
	reg := examples(t, "deploy-notify.lua")
	tests := []struct {
		name    string
		dryRun  bool
		fail    map[string]map[string]string
		results string
		steps   string
		posts   string
		errs    string // the instances' errors
	}{
		{
			name:    "every instance deployed and announced",
			results: "web01/A/a1=ok web01/A/a2=ok",
			steps:   "web01/A/a1:stop web01/A/a1:install web01/A/a1:start web01/A/a1:health web01/A/a2:stop web01/A/a2:install web01/A/a2:start web01/A/a2:health",
			posts:   "web01/A/a1 runs WAR|web01/A/a2 runs WAR",
		},
		{
			name:    "the built-in's rollback, and no message",
			fail:    map[string]map[string]string{"web01/A/a2": {"install": "disk full"}},
			results: "web01/A/a1=ok web01/A/a2=rolled-back",
			steps:   "web01/A/a1:stop web01/A/a1:install web01/A/a1:start web01/A/a1:health web01/A/a2:stop web01/A/a2:install web01/A/a2:start web01/A/a2:health",
			posts:   "web01/A/a1 runs WAR",
			errs:    "flows-lua/deploy.lua:42: install web01/A/a2: disk full",
		},
		{
			name:    "a dry run plans the message and sends nothing",
			dryRun:  true,
			results: "web01/A/a1=ok web01/A/a2=ok",
			steps:   "web01/A/a1:status web01/A/a2:status",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, posts := chat(t)
			f := fleet("web01")
			f.Fail = tt.fail
			war := artifact(t)
			rep, err := run(context.Background(), reg, "deploy-notify", map[string]string{"service": "A", "artifact": war, "notify_url": url}, engine.Options{
				Servers: []string{"web01"}, Target: f, DryRun: tt.dryRun,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := results(rep); got != tt.results {
				t.Fatalf("results %s, want %s (%s)", got, tt.results, rep.Error)
			}
			var errs []string
			for _, ir := range rep.Instances {
				if ir.Error != "" {
					errs = append(errs, ir.Error)
				}
			}
			if got := strings.Join(errs, "|"); got != tt.errs {
				t.Fatalf("errors %q, want %q", got, tt.errs)
			}
			for _, ir := range rep.Instances {
				if last := ir.Steps[len(ir.Steps)-1]; tt.dryRun && (last.Name != "http.post "+url || last.Result != engine.ResultPlanned) {
					t.Fatalf("%s: the last step is %s %s, want the message planned", ir.Instance, last.Name, last.Result)
				}
			}
			if got := strings.Join(steps(f), " "); got != tt.steps {
				t.Fatalf("steps:\n got %s\nwant %s", got, tt.steps)
			}
			if got := strings.ReplaceAll(posts(), war, "WAR"); got != tt.posts {
				t.Fatalf("posts %q, want %q", got, tt.posts)
			}
		})
	}
}

// TestBuiltinReplaced: a --flows template that replaces a built-in can
// build on it, since flows.builtin always returns the built-in.
func TestBuiltinReplaced(t *testing.T) {
	mine := `local deploy = flows.builtin("deploy")
local again = flows.builtin("deploy")
assert(deploy ~= again and deploy.params ~= again.params, "each call returns a fresh copy")
deploy.params.drain = { type = "bool", default = false, doc = "drain first" }
return {
  name = "deploy",
  description = "Our deploy: drain first when asked",
  params = deploy.params,
  each = function(i, ctx)
    if ctx.params.drain then i:run("drain") end
    deploy.each(i, ctx)
  end,
  rollback = deploy.rollback,
}`
	f := fleet("web01")
	rep, err := run(context.Background(), registry(t, map[string]string{"deploy": mine}), "deploy", map[string]string{"service": "A", "artifact": artifact(t), "drain": "true"}, engine.Options{
		Servers: []string{"web01"}, Target: f,
	})
	if err != nil || rep.ExitCode != 0 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	want := "web01/A/a1:run web01/A/a1:stop web01/A/a1:install web01/A/a1:start web01/A/a1:health"
	if got := strings.Join(steps(f)[:5], " "); got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
}

func TestBuiltinErrors(t *testing.T) {
	tests := []struct {
		name    string
		code    string
		sources []engine.Source // before the test's own; default: the built-ins
		want    string
	}{
		{"unknown", `local d = flows.builtin("deplyo")`, nil, `test/x.lua:1: bad argument #1 to builtin (no built-in template "deplyo" (built-ins: deploy, restart, rollback, start, status, stop))`},
		{"not a built-in source", `local d = flows.builtin("deploy")`, []engine.Source{{Dir: "flows-lua", FS: flows.FS}}, `test/x.lua:1: bad argument #1 to builtin (no built-in template "deploy" (built-ins: ))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := tt.sources
			if sources == nil {
				sources = []engine.Source{{Dir: "flows-lua", FS: flows.FS, Builtin: true}}
			}
			code := tt.code + "\nreturn { name = \"x\", params = { service = { doc = \"s\" } }, each = function(i) end }\n"
			_, err := engine.Load(engine.LoadOptions{}, append(sources, engine.Source{Dir: "test", FS: fstest.MapFS{"x.lua": {Data: []byte(code)}}})...)
			var le *engine.LoadError
			if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0] != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
