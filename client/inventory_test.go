package client_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/baepo/baepo/client"
	"github.com/baepo/baepo/engine"
)

func writeInventory(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadInventory(t *testing.T) {
	path := writeInventory(t, `
servers:
  web01: { agent: "https://10.0.0.11:7701", token_file: /etc/baepo/token, ca: ca.pem }
  web02: { agent: "https://10.0.0.12:7701/", token_file: secrets/token }
  local: { agent: "http://127.0.0.1:7701", token_env: BAEPO_TOKEN }
groups:
  web: [web01, web02]
  all: [web, local]
`)
	inv, err := client.LoadInventory(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	want := map[string]client.Server{
		"web01": {Name: "web01", Agent: "https://10.0.0.11:7701", TokenFile: "/etc/baepo/token", CA: filepath.Join(dir, "ca.pem")},
		"web02": {Name: "web02", Agent: "https://10.0.0.12:7701", TokenFile: filepath.Join(dir, "secrets/token")},
		"local": {Name: "local", Agent: "http://127.0.0.1:7701", TokenEnv: "BAEPO_TOKEN"},
	}
	if !reflect.DeepEqual(inv.Servers, want) {
		t.Errorf("servers:\n got %+v\nwant %+v", inv.Servers, want)
	}
	if inv.File != path {
		t.Errorf("File = %q, want %q", inv.File, path)
	}
	if got := inv.Groups["all"]; !reflect.DeepEqual(got, []string{"web", "local"}) {
		t.Errorf("group all = %v", got)
	}
}

func TestLoadInventoryErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // regexp the error must match
	}{
		{"unknown server key", `
servers:
  web01:
    agent: "https://h:7701"
    tokenfile: /x
`, `inventory.yaml:5: unknown key "tokenfile" \(known: agent, token_file, token_env, ca, cert, key\)`},
		{"unknown top-level key", `
server:
  web01: { agent: "https://h:7701", token_file: /x }
`, `inventory.yaml:2: unknown key "server" \(known: servers, groups\)`},
		{"syntax error", "servers:\n  web01: { agent: \"https://h\", token_file: /x\n", `inventory.yaml:\d+: `},
		{"wrong type", "servers:\n  web01: [a, b]\n", `inventory.yaml:2: cannot unmarshal`},
		{"empty file", "", `inventory.yaml:1: no servers`},
		{"bad scheme", `
servers:
  web01: { agent: "ftp://h:7701", token_file: /x }
`, `inventory.yaml:3: server web01: agent "ftp://h:7701" must be an http:// or https:// URL`},
		{"no agent", `
servers:
  web01: { token_file: /x }
`, `inventory.yaml:3: server web01: no agent`},
		{"no token", `
servers:
  web01: { agent: "https://h:7701" }
`, `inventory.yaml:3: server web01: no token: set token_file: FILE or token_env: VARIABLE`},
		{"both tokens", `
servers:
  web01:
    agent: "https://h:7701"
    token_file: /x
    token_env: TOK
`, `inventory.yaml:6: server web01: token_file and token_env are both set: keep one`},
		{"unknown group member", `
servers:
  web01: { agent: "https://h:7701", token_file: /x }
groups:
  web: [web01, web09]
`, `inventory.yaml:5: group web: unknown member "web09" \(servers: web01; groups: web\)`},
		{"group cycle", `
servers:
  web01: { agent: "https://h:7701", token_file: /x }
groups:
  a: [web01, b]
  b: [a]
`, `groups form a cycle: (a → b → a|b → a → b)`},
		{"self cycle", `
servers:
  web01: { agent: "https://h:7701", token_file: /x }
groups:
  a: [a]
`, `inventory.yaml:5: groups form a cycle: a → a`},
		{"group named like a server", `
servers:
  web01: { agent: "https://h:7701", token_file: /x }
groups:
  web01: [web01]
`, `group web01 has the name of a server`},
		{"empty group", `
servers:
  web01: { agent: "https://h:7701", token_file: /x }
groups:
  web: []
`, `group web is empty`},
		{"comma in name", `
servers:
  "web01,web02": { agent: "https://h:7701", token_file: /x }
`, `server "web01,web02": names must be non-empty and hold no commas`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.LoadInventory(writeInventory(t, tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Errorf("error:\n%v\nwant match for %s", err, tt.want)
			}
			if code := engine.ExitCode(err); code != engine.ExitUsage {
				t.Errorf("exit code %d, want %d", code, engine.ExitUsage)
			}
		})
	}
}

func TestLoadInventoryMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := client.LoadInventory(path)
	want := "inventory " + path + ": no such file (pass --inventory FILE or set BAEPO_INVENTORY)"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestResolve(t *testing.T) {
	inv, err := client.LoadInventory(writeInventory(t, `
servers:
  web01: { agent: "https://h1:7701", token_file: /x }
  web02: { agent: "https://h2:7701", token_file: /x }
  db01:  { agent: "https://h3:7701", token_file: /x }
groups:
  web: [web02, web01]
  all: [web, db01, web01]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		names string
		want  []string
		err   string
	}{
		{names: "web01", want: []string{"web01"}},
		{names: "web", want: []string{"web02", "web01"}},
		{names: "web01, web", want: []string{"web01", "web02"}},
		{names: "all", want: []string{"web02", "web01", "db01"}},
		{names: "db01,all,db01", want: []string{"db01", "web02", "web01"}},
		{names: "web03", err: `unknown server or group "web03" in .*inventory.yaml \(servers: db01, web01, web02; groups: all, web\)`},
		{names: "web03,x", err: `unknown servers or groups web03, x`},
		{names: " , ", err: `--server is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.names, func(t *testing.T) {
			got, err := inv.Resolve(tt.names)
			if tt.err != "" {
				if err == nil || !regexp.MustCompile(tt.err).MatchString(err.Error()) {
					t.Fatalf("error = %v, want match for %s", err, tt.err)
				}
				var ue *engine.UsageError
				if !errors.As(err, &ue) {
					t.Errorf("error %T is not a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"TOK": "  s3cret\n", "EMPTY": " "}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name   string
		server client.Server
		want   string
		err    string
	}{
		{"file", client.Server{Name: "w", TokenFile: write("tok", "abc\n")}, "abc", ""},
		{"env", client.Server{Name: "w", TokenEnv: "TOK"}, "s3cret", ""},
		{"empty file", client.Server{Name: "w", TokenFile: write("empty", "\n\n")}, "", "token_file .*empty is empty"},
		{"missing file", client.Server{Name: "w", TokenFile: filepath.Join(dir, "nope")}, "", "token_file .*nope: no such file"},
		{"unset env", client.Server{Name: "w", TokenEnv: "UNSET"}, "", "token_env UNSET is not set or empty"},
		{"empty env", client.Server{Name: "w", TokenEnv: "EMPTY"}, "", "token_env EMPTY is not set or empty"},
		{"none", client.Server{Name: "w"}, "", "no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.server.Token(getenv)
			if tt.err != "" {
				if err == nil || !regexp.MustCompile(tt.err).MatchString(err.Error()) {
					t.Fatalf("error = %v, want match for %s", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Token() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
