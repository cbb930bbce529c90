package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"

	flows "github.com/baepo/baepo/flows-lua"
)

func TestLoadBuiltins(t *testing.T) {
	reg, err := Load(LoadOptions{}, Source{Dir: "flows-lua", FS: flows.FS})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"deploy", "restart", "rollback", "start", "status", "stop"}
	if got := strings.Join(reg.Names(), ","); got != strings.Join(want, ",") {
		t.Fatalf("names = %s, want %v", got, want)
	}
	for _, tmpl := range reg.Templates() {
		if tmpl.Description == "" {
			t.Errorf("%s: no description", tmpl.Name)
		}
		for _, p := range tmpl.Params {
			if p.Doc == "" {
				t.Errorf("%s: param %s has no doc", tmpl.Name, p.Name)
			}
		}
	}
	deploy, _ := reg.Get("deploy")
	if !deploy.HasRollback || deploy.Batch.String() != "1" || deploy.MaxFailures.String() != "0" || deploy.Canary.String() != "0" {
		t.Errorf("deploy = %+v", deploy)
	}
	if restart, _ := reg.Get("restart"); restart.Canary.String() != "0" {
		t.Errorf("restart = %+v", restart)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		code string
		want string
	}{
		{"syntax", "return {\n  name = \"x\",\n  each = function(i) i:stop( end,\n}\n", "bad.lua:3: syntax error near 'end'"},
		{"unclosed", "return {\n  name = \"x\",\n", "bad.lua:3: syntax error at end of file"},
		{"no name", "return {\n  params = { service = { doc = \"s\" } },\n  each = function(i) end,\n}\n", "bad.lua:1: template must declare name"},
		{"bad name", "return {\n  name = \"Deploy It\",\n  params = { service = { doc = \"s\" } },\n  each = function(i) end,\n}\n", "bad.lua:2: template must declare name"},
		{"no each", "return {\n  name = \"x\",\n  params = { service = { doc = \"s\" } },\n}\n", "bad.lua:1: template \"x\" must declare each"},
		{"each not function", "return {\n  name = \"x\",\n  each = 3,\n  params = { service = { doc = \"s\" } },\n}\n", "bad.lua:3: template \"x\" must declare each"},
		{"bad type", "return {\n  name = \"x\",\n  params = {\n    service = { type = \"strng\", doc = \"s\" },\n  },\n  each = function(i) end,\n}\n", "bad.lua:4: param service: unknown type \"strng\""},
		{"no doc", "return {\n  name = \"x\",\n  params = {\n    service = { type = \"string\" },\n  },\n  each = function(i) end,\n}\n", "bad.lua:4: param service: add doc"},
		{"required and default", "return {\n  name = \"x\",\n  params = {\n    service = { doc = \"s\", required = true,\n      default = \"A\" },\n  },\n  each = function(i) end,\n}\n", "bad.lua:5: param service is required and has a default"},
		{"default mistyped", "return {\n  name = \"x\",\n  params = {\n    service = { doc = \"s\" },\n    n = { type = \"number\", doc = \"n\", default = \"many\" },\n  },\n  each = function(i) end,\n}\n", "bad.lua:5: param n: default \"many\" does not fit type number"},
		{"values on a number", "return {\n  name = \"x\",\n  params = {\n    service = { doc = \"s\" },\n    n = { type = \"number\", doc = \"n\", values = { 1, 2 } },\n  },\n  each = function(i) end,\n}\n", "bad.lua:5: param n: values is for string params, and this one is number"},
		{"values not a list", "return {\n  name = \"x\",\n  params = {\n    service = { doc = \"s\" },\n    mode = { doc = \"m\", values = \"hot\" },\n  },\n  each = function(i) end,\n}\n", "bad.lua:5: param mode: values must be a list of strings"},
		{"values repeated", "return {\n  name = \"x\",\n  params = {\n    service = { doc = \"s\" },\n    mode = { doc = \"m\", values = { \"hot\", \"hot\" } },\n  },\n  each = function(i) end,\n}\n", "bad.lua:5: param mode: values must be distinct strings, got \"hot\" at 2"},
		{"default not a value", "return {\n  name = \"x\",\n  params = {\n    service = { doc = \"s\" },\n    mode = { doc = \"m\", values = { \"hot\", \"restart\" }, default = \"warm\" },\n  },\n  each = function(i) end,\n}\n", "bad.lua:5: param mode: default \"warm\" is not one of hot, restart"},
		{"reserved param", "return {\n  name = \"x\",\n  params = {\n    service = { doc = \"s\" },\n    timeout = { doc = \"t\" },\n  },\n  each = function(i) end,\n}\n", "bad.lua:5: param timeout: the name is taken by a flag of `baepo run` (reserved: help, timeout)"},
		{"bad batch", "return {\n  name = \"x\",\n  params = { service = { doc = \"s\" } },\n  strategy = { batch = 0 },\n  each = function(i) end,\n}\n", "bad.lua:4: strategy.batch: \"0\" is not a whole number >= 1"},
		{"bad canary", "return {\n  name = \"x\",\n  params = { service = { doc = \"s\" } },\n  strategy = { batch = 1,\n    canary = \"one\" },\n  each = function(i) end,\n}\n", "bad.lua:5: strategy.canary: \"one\" is not a whole number >= 0 or a percentage like 25%"},
		{"after not function", "return {\n  name = \"x\",\n  params = { service = { doc = \"s\" } },\n  each = function(i) end,\n  after = \"notify\",\n}\n", "bad.lua:5: after must be a function, got \"notify\""},
		{"no targets no service", "return {\n  name = \"x\",\n  each = function(i) end,\n}\n", "bad.lua:1: template \"x\" has no targets function and no service param"},
		{"runtime error at top", "local t = nil\nt.x = 1\nreturn {}\n", "bad.lua:2: attempt to index a non-table object(nil)"},
		{"returns nothing", "local x = 1\n", "template must return a table"},
		{"os at top", "os.execute(\"touch /tmp/x\")\nreturn {}\n", "bad.lua:1: os is not available in flows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reserved := map[string]string{"timeout": "a flag of `baepo run`", "help": "a flag of `baepo run`"}
			_, err := Load(LoadOptions{Reserved: reserved}, Source{Dir: "flows", FS: fstest.MapFS{"bad.lua": {Data: []byte(tt.code)}}})
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want *LoadError", err)
			}
			if len(le.Problems) != 1 || !strings.HasPrefix(le.Problems[0], "flows/") || !strings.Contains(le.Problems[0], tt.want) {
				t.Fatalf("problems = %q, want one containing %q", le.Problems, tt.want)
			}
			if ExitCode(err) != ExitUsage {
				t.Fatalf("exit code = %d", ExitCode(err))
			}
		})
	}
}

// load loads one file, bad.lua, from a source called flows.
func load(code string) error {
	_, err := Load(LoadOptions{}, Source{Dir: "flows", FS: fstest.MapFS{"bad.lua": {Data: []byte(code)}}})
	return err
}

func TestLoadUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		code string
		want string
	}{
		{"template", `return {
  name = "x",
  params = { service = { doc = "s" } },
  each = function(i) end,
  rollbak = function(i) end,
}`, `flows/bad.lua:5: unknown key "rollbak" in the template (valid: after, before, description, each, name, params, rollback, strategy, targets)`},
		{"strategy", `return {
  name = "x",
  params = { service = { doc = "s" } },
  strategy = { batch = 2,
    max_failure = 1 },
  each = function(i) end,
}`, `flows/bad.lua:5: strategy: unknown key "max_failure" (valid: batch, canary, max_failures)`},
		{"strategy.canaries", `return {
  name = "x",
  params = { service = { doc = "s" } },
  strategy = {
    canaries = 1,
  },
  each = function(i) end,
}`, `flows/bad.lua:5: strategy: unknown key "canaries" (valid: batch, canary, max_failures)`},
		{"param", `return {
  name = "x",
  params = {
    service = { doc = "s" },
    wait = { type = "duration", doc = "w", defualt = "30s" },
  },
  each = function(i) end,
}`, `flows/bad.lua:5: param wait: unknown key "defualt" (valid: default, doc, required, type, values)`},
		{"list item", `return {
  "x",
  name = "x",
  params = { service = { doc = "s" } },
  each = function(i) end,
}`, `flows/bad.lua:2: unknown key 1 in the template (valid: after, before, description, each, name, params, rollback, strategy, targets)`},
		{"required not a bool", `return {
  name = "x",
  params = {
    service = { doc = "s", required = "yes" },
  },
  each = function(i) end,
}`, `flows/bad.lua:4: param service: required must be true or false, got "yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var le *LoadError
			if err := load(tt.code); !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0] != tt.want {
				t.Fatalf("err = %v, want only %q", err, tt.want)
			}
		})
	}
}

// TestLoadEveryProblem: a file reports all of its problems, in line order.
func TestLoadEveryProblem(t *testing.T) {
	err := load(`return {
  name = "x",
  description = 42,
  params = {
    service = { type = "strng", doc = "s" },
    wait = { type = "duration", defualt = "30s" },
  },
  strategy = { batch = 0, max_failure = 1 },
  each = function(i) end,
  rollbak = function(i) end,
}`)
	want := []string{
		`flows/bad.lua:3: description must be a string, got 42`,
		`flows/bad.lua:5: param service: unknown type "strng" (want one of string, number, bool, duration, artifact, list)`,
		`flows/bad.lua:6: param wait: unknown key "defualt" (valid: default, doc, required, type, values)`,
		`flows/bad.lua:6: param wait: add doc = "..." so ` + "`baepo run x --help`" + ` can explain it`,
		`flows/bad.lua:8: strategy: unknown key "max_failure" (valid: batch, canary, max_failures)`,
		`flows/bad.lua:8: strategy.batch: "0" is not a whole number >= 1 or a percentage like 25%`,
		`flows/bad.lua:10: unknown key "rollbak" in the template (valid: after, before, description, each, name, params, rollback, strategy, targets)`,
	}
	var le *LoadError
	if !errors.As(err, &le) || strings.Join(le.Problems, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestLoadDuplicates(t *testing.T) {
	tmpl := func(desc string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(`return { name = "x", description = "` + desc + `", params = { service = { doc = "s" } }, each = function(i) end }`)}
	}
	t.Run("same dir", func(t *testing.T) {
		_, err := Load(LoadOptions{}, Source{Dir: "d", FS: fstest.MapFS{"a.lua": tmpl("a"), "b.lua": tmpl("b")}})
		if err == nil || !strings.Contains(err.Error(), `d/b.lua:1: template "x" is also declared in d/a.lua`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("later dir wins", func(t *testing.T) {
		var logs bytes.Buffer
		reg, err := Load(LoadOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))},
			Source{Dir: "one", FS: fstest.MapFS{"x.lua": tmpl("first")}},
			Source{Dir: "two", FS: fstest.MapFS{"y.lua": tmpl("second")}})
		if err != nil {
			t.Fatal(err)
		}
		x, _ := reg.Get("x")
		if x.Description != "second" || x.File != "two/y.lua" {
			t.Fatalf("x = %+v", x)
		}
		if !strings.Contains(logs.String(), "template replaced") || !strings.Contains(logs.String(), "one/x.lua") {
			t.Fatalf("log = %s", logs.String())
		}
	})
	t.Run("every problem reported", func(t *testing.T) {
		_, err := Load(LoadOptions{}, Source{Dir: "d", FS: fstest.MapFS{"a.lua": {Data: []byte("return {")}, "b.lua": {Data: []byte("x =")}}})
		var le *LoadError
		if !errors.As(err, &le) || len(le.Problems) != 2 {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestGetUnknown(t *testing.T) {
	reg, err := Load(LoadOptions{}, Source{Dir: "flows-lua", FS: flows.FS})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.Get("deplyo")
	if err == nil || !strings.Contains(err.Error(), `unknown template "deplyo" (known: deploy, restart`) || ExitCode(err) != ExitUsage {
		t.Fatalf("err = %v", err)
	}
}
