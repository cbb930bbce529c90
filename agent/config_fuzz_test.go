package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig loads any agent.yaml. Loading never panics; a config it
// accepts is one the agent can run with: positive durations and sizes, an
// HTTP status to expect, at least two releases kept, names that cannot
// build a path, context paths without "..", and distinct real ports.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		goodConfig,
		"token_file: token\ndata_dir: data\nservices: { A: { driver: tomcat, instances: { a1: { port: 8080 } } } }\n",
		"token_file: token\ndata_dir: data\nstep_timeout: 30s\nmax_artifact_size: 512MiB\nservices:\n  A:\n    driver: x\n    keep_releases: 3\n    health: { path: /ok, expect_status: 204, timeout: 1m, interval: 1s }\n    instances: { a1: { port: 1 }, a2: { port: 65535, flag: true, ratio: 0.5 } }\n",
		"token_file: token\ndata_dir: data\nmax_artifact_size: 2048\nservices: { A: { driver: x, context: /a/b, instances: { a-1_b: { port: 9 } } } }\n",
		"token_file: token\ndata_dir: data\nservices: { ../A: { driver: x, instances: { a1: { port: 1 } } } }\n",
		"token_file: token\ndata_dir: data\nservices: { A: { driver: x, context: /../etc, instances: { a1: { port: 1 } } } }\n",
		"token_file: token\ndata_dir: data\nservices: { A: { driver: x, instances: { a1: { port: 1 }, a2: { port: 1 } } } }\n",
		"token_file: token\ndata_dir: data\nservices: { A: { driver: x, instances: { a1: { port: 70000 } } } }\n",
		"token_file: token\ndata_dir: data\nmax_artifact_size: 0KiB\nservices: { A: { driver: x, instances: { a1: { port: 1 } } } }\n",
		"token_file: token\ndata_dir: data\nlisten: nowhere\nservices: {}\n",
		"listen: [\n", "services: !!binary aGVsbG8=\n", "{}", "",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	p := filepath.Join(dir, "agent.yaml")
	f.Fuzz(func(t *testing.T, yaml string) {
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(p)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config ") {
				t.Fatalf("error %q does not say it is about the config", err)
			}
			return
		}
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			t.Fatalf("listen %q accepted: %v", c.Listen, err)
		}
		if len(c.Token()) < 16 || c.DataDir == "" {
			t.Fatalf("token %q or data_dir %q accepted", c.Token(), c.DataDir)
		}
		if c.StepTimeout <= 0 || c.MaxArtifact <= 0 {
			t.Fatalf("step_timeout %v, max_artifact_size %d accepted: want both > 0", c.StepTimeout, c.MaxArtifact)
		}
		ports := map[int]bool{}
		for name, s := range c.Services {
			key := "services." + name
			if !validName(name) || s == nil {
				t.Fatalf("%s accepted", key)
			}
			if !strings.HasPrefix(s.Context, "/") || strings.Contains(s.Context, "..") || !strings.HasPrefix(s.Health.Path, "/") {
				t.Fatalf("%s: context %q, health.path %q accepted", key, s.Context, s.Health.Path)
			}
			if h := s.Health; h.Timeout <= 0 || h.Interval <= 0 || h.ExpectStatus < 100 || h.ExpectStatus > 599 {
				t.Fatalf("%s.health %+v accepted: want positive durations and a status 100-599", key, h)
			}
			if s.KeepReleases < 2 {
				t.Fatalf("%s.keep_releases %d accepted", key, s.KeepReleases)
			}
			if len(s.instances) == 0 || len(s.instances) != len(s.Instances) {
				t.Fatalf("%s: %d instances parsed of %d", key, len(s.instances), len(s.Instances))
			}
			for iname, inst := range s.instances {
				if !validName(iname) || inst.Name != iname || inst.Service != name {
					t.Fatalf("%s.instances.%s accepted as %+v", key, iname, inst)
				}
				if inst.Port < 1 || inst.Port > 65535 || ports[inst.Port] {
					t.Fatalf("%s.instances.%s.port %d accepted (ports taken: %v)", key, iname, inst.Port, ports)
				}
				ports[inst.Port] = true
			}
		}
		for name, cmd := range c.commands {
			if !validName(name) || len(cmd.argv) == 0 || !filepath.IsAbs(cmd.argv[0]) {
				t.Fatalf("commands.%s accepted as %q", name, cmd.argv)
			}
		}
	})
}
