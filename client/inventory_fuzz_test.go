package client_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/baepo/baepo/client"
	"github.com/baepo/baepo/engine"
)

// FuzzLoadInventory loads any inventory.yaml and resolves any --server
// value against it. Loading never panics and gives the same answer twice;
// a refusal is a usage error whose every line is "file:line: message"; an
// accepted inventory has agents with http(s) URLs, one token source per
// server, and groups whose members all exist and form no cycle, so that
// resolving any group gives each of its servers once.
func FuzzLoadInventory(f *testing.F) {
	for _, seed := range []struct{ yaml, servers string }{
		{"servers:\n  web01: { agent: \"https://10.0.0.11:7701\", token_file: /etc/baepo/token, ca: ca.pem }\n  web02: { agent: \"https://10.0.0.12:7701/\", token_file: secrets/token }\n  local: { agent: \"http://127.0.0.1:7701\", token_env: BAEPO_TOKEN }\ngroups:\n  web: [web01, web02]\n  all: [web, local]\n", "all"},
		{"servers:\n  a: { agent: \"http://h:1\", token_env: T, cert: c.pem, key: k.pem }\ngroups:\n  g: [a, a]\n", "a, g ,,a"},
		{"servers:\n  a: { agent: \"http://h:1\", token_env: T }\ngroups:\n  x: [y]\n  y: [x]\n", "x"},
		{"servers:\n  a: { agent: \"ftp://h\", token_file: t, token_env: T, cert: c }\n", "a"},
		{"servers:\n  \"a b\": { agent: \"http://h:1\" }\ngroups:\n  a b: []\n", "a b"},
		{"servers: { a: { agent: \"http://h:1\", token_env: T, bogus: 1 } }\n", "b"},
		{"servers: [a, b]\n", ""},
		{"groups: { g: [a] }\n", "g"},
		{"servers:\n\ta: 1\n", ""},
		{"", ""},
		{"servers: { a: { agent: \"http://[::1]:1\", token_env: T } }\ngroups: { a: [a] }\n", "a"},
	} {
		f.Add(seed.yaml, seed.servers)
	}
	path := filepath.Join(f.TempDir(), "inventory.yaml")
	lineRE := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:[0-9]+: \S`)
	f.Fuzz(func(t *testing.T, yaml, servers string) {
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		inv, err := client.LoadInventory(path)
		inv2, err2 := client.LoadInventory(path)
		if !reflect.DeepEqual(inv, inv2) || !reflect.DeepEqual(err, err2) {
			t.Fatalf("loaded twice: %v, %v; then %v, %v", inv, err, inv2, err2)
		}
		if err != nil {
			var ue *engine.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %T %v: want a usage error", err, err)
			}
			for _, line := range strings.Split(ue.Msg, "\n") {
				if !lineRE.MatchString(line) {
					t.Fatalf("error line %q is not file:line: message", line)
				}
			}
			return
		}
		for name, s := range inv.Servers {
			if name == "" || strings.ContainsAny(name, ", \t\n") || s.Name != name {
				t.Fatalf("server %q accepted as %+v", name, s)
			}
			u, err := url.Parse(s.Agent)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(s.Agent, "/") {
				t.Fatalf("server %s: agent %q accepted", name, s.Agent)
			}
			if (s.TokenFile == "") == (s.TokenEnv == "") || (s.Cert == "") != (s.Key == "") {
				t.Fatalf("server %s accepted as %+v: want one token source, cert and key together", name, s)
			}
			got, err := inv.Resolve(name)
			if err != nil || !slices.Equal(got, []string{name}) {
				t.Fatalf("Resolve(%q) = %v, %v", name, got, err)
			}
		}
		for name := range inv.Groups {
			if _, ok := inv.Servers[name]; ok || name == "" || strings.ContainsAny(name, ", \t\n") {
				t.Fatalf("group %q accepted", name)
			}
			checkResolved(t, inv, name)
		}
		checkResolved(t, inv, servers)
	})
}

// checkResolved resolves names and fails unless it gives servers of the
// inventory, each once, or a usage error.
func checkResolved(t *testing.T, inv *client.Inventory, names string) {
	t.Helper()
	got, err := inv.Resolve(names)
	if err != nil {
		var ue *engine.UsageError
		if !errors.As(err, &ue) || strings.Contains(ue.Msg, "\n") {
			t.Fatalf("Resolve(%q): %v: want a one-line usage error", names, err)
		}
		return
	}
	if len(got) == 0 {
		t.Fatalf("Resolve(%q): no servers and no error", names)
	}
	seen := map[string]bool{}
	for _, s := range got {
		if _, ok := inv.Servers[s]; !ok || seen[s] {
			t.Fatalf("Resolve(%q) = %v: %q is not a server or is there twice", names, got, s)
		}
		seen[s] = true
	}
}
