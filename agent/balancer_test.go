package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/agent/balancer"
)

const balancedConfig = `token_file: token
data_dir: data
commands:
  lb-drain: [/usr/bin/touch, "{arg:x}"]
  lb-out: [/bin/echo, "out {service}/{instance}:{port}"]
  lb-in: [/bin/echo, "in {instance}"]
services:
  A:
    driver: tomcat
    balancer:
      haproxy: { socket: /run/haproxy/admin.sock, backend: app }
      drain_timeout: 10s
    instances:
      a1: { catalina_base: /opt/a1, port: 8081 }
      a2: { catalina_base: /opt/a2, port: 8082, balancer: { haproxy: { server: web2 }, undrain_timeout: 1m } }
  B:
    driver: tomcat
    instances:
      b1: { catalina_base: /opt/b1, port: 8091, balancer: { drain_command: lb-out, undrain_command: lb-in } }
      b2: { catalina_base: /opt/b2, port: 8092 }
`

func TestLoadConfigBalancer(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, balancedConfig))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Services["A"].balancers, c.Services["B"].balancers
	for _, tt := range []struct {
		lb               *lbConfig
		want             balancer.Balancer
		drain, undrainTo time.Duration
	}{
		{a["a1"], &balancer.HAProxy{Socket: "/run/haproxy/admin.sock", Backend: "app", Server: "a1"}, 10 * time.Second, 30 * time.Second},
		{a["a2"], &balancer.HAProxy{Socket: "/run/haproxy/admin.sock", Backend: "app", Server: "web2"}, 10 * time.Second, time.Minute},
		{b["b1"], &balancer.Command{
			DrainCmd:   balancer.Argv{Name: "lb-out", Args: []string{"/bin/echo", "out B/b1:8091"}},
			UndrainCmd: balancer.Argv{Name: "lb-in", Args: []string{"/bin/echo", "in b1"}},
		}, 30 * time.Second, 30 * time.Second},
	} {
		if tt.lb == nil || fmt.Sprint(tt.lb.Balancer) != fmt.Sprint(tt.want) || fmt.Sprintf("%+v", tt.lb.Balancer) != fmt.Sprintf("%+v", tt.want) ||
			tt.lb.drainTimeout != tt.drain || tt.lb.undrainTimeout != tt.undrainTo {
			t.Errorf("balancer = %+v, want %+v, drain %s, undrain %s", tt.lb, tt.want, tt.drain, tt.undrainTo)
		}
	}
	if b["b2"] != nil {
		t.Errorf("b2 has no balancer: %+v", b["b2"])
	}
	// The service's block is unchanged by a2's override.
	if c.Services["A"].Balancer.HAProxy.Server != "" {
		t.Errorf("a2's override leaked into the service: %+v", c.Services["A"].Balancer.HAProxy)
	}
}

func TestLoadConfigBalancerErrors(t *testing.T) {
	long := "/run/" + strings.Repeat("h", 110) + ".sock"
	tests := []struct {
		name, from, to, want string
	}{
		{"no backend", "backend: app }", "}", "services.A.balancer.haproxy.backend: missing (the backend's name in HAProxy's config)"},
		{"no socket", "socket: /run/haproxy/admin.sock, ", "", "services.A.balancer.haproxy.socket: missing"},
		{"relative socket", "socket: /run/haproxy/admin.sock", "socket: admin.sock", `services.A.balancer.haproxy.socket: "admin.sock" must be an absolute path`},
		{"long socket", "socket: /run/haproxy/admin.sock", "socket: " + long, "services.A.balancer.haproxy.socket: \"" + long + "\" is 120 bytes long; a Unix socket's path has at most 107"},
		{"bad backend", "backend: app }", "backend: 'app state maint' }", `services.A.balancer.haproxy.backend: "app state maint" is not a name HAProxy takes`},
		{"bad server", "server: web2", "server: 'web2;x'", `services.A.instances.a2.balancer.haproxy.server: "web2;x" is not a name HAProxy takes`},
		{"unknown key", "drain_timeout: 10s", "drain_timeout: 10s\n      drain_wait: 5s", "field drain_wait not found"},
		{"unknown instance key", "undrain_timeout: 1m", "undrain_wait: 1m", "services.A.instances.a2.balancer: field undrain_wait not found in type agent.BalancerConfig"},
		{"unknown haproxy key", "server: web2", "host: web2", "services.A.instances.a2.balancer: field host not found in type agent.HAProxyConfig"},
		{"instance balancer not a map", "balancer: { haproxy: { server: web2 }, undrain_timeout: 1m }", "balancer: web2", "services.A.instances.a2.balancer: must be a mapping"},
		{"negative drain", "drain_timeout: 10s", "drain_timeout: -10s", "services.A.balancer.drain_timeout: -10s is negative (give a positive duration, e.g. 30s)"},
		{"negative undrain", "undrain_timeout: 1m", "undrain_timeout: -1m", "services.A.instances.a2.balancer.undrain_timeout: -1m0s is negative"},
		{"both kinds", "drain_timeout: 10s", "drain_timeout: 10s\n      drain_command: lb-out\n      undrain_command: lb-in", "services.A.balancer: give either haproxy or drain_command and undrain_command, not both"},
		{"neither", "      haproxy: { socket: /run/haproxy/admin.sock, backend: app }\n", "", "services.A.balancer: give haproxy: { socket: ..., backend: ... } or drain_command and undrain_command"},
		{"no undrain command", ", undrain_command: lb-in", "", "services.B.instances.b1.balancer.undrain_command: missing (give both drain_command and undrain_command)"},
		{"command not allowed", "drain_command: lb-out", "drain_command: lb-off", `services.B.instances.b1.balancer.drain_command: "lb-off" is not in commands: (allow-listed: lb-drain, lb-in, lb-out)`},
		{"command with args", "drain_command: lb-out", "drain_command: lb-drain", "services.B.instances.b1.balancer.drain_command: command lb-drain takes {arg:...} placeholders (x); a balancer's command may hold only {service}, {instance} and {port}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Replace(balancedConfig, tt.from, tt.to, 1)
			if body == balancedConfig {
				t.Fatalf("test does not change the config: %q", tt.from)
			}
			_, err := LoadConfig(writeConfig(t, body))
			// yaml's own errors (an unknown key of the service) take lines.
			if err == nil || !strings.Contains(err.Error(), tt.want) || (strings.HasPrefix(tt.want, "services.") && strings.Contains(err.Error(), "\n")) {
				t.Fatalf("err = %v, want one line with %q", err, tt.want)
			}
		})
	}
}

func TestDrainWithoutBalancer(t *testing.T) {
	f := newCore(t)
	for _, name := range []string{"drain", "undrain"} {
		_, err := f.step(name, nil)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeBadRequest ||
			ae.Message != name+": instance A/a1 has no balancer: add balancer: to services.A (or to the instance) in agent.yaml" {
			t.Fatalf("%s: err = %v", name, err)
		}
	}
	if svcs := f.agent.Services(); svcs[0].Balancers != nil {
		t.Errorf("services: %+v", svcs)
	}
	if h, _ := f.agent.History(api.HistoryQuery{}); len(h.Entries) != 0 {
		t.Errorf("refused steps were journaled: %+v", h.Entries)
	}
}

// TestDrainCommand runs drain and undrain through real commands: a drain
// that works, an undrain whose command fails.
func TestDrainCommand(t *testing.T) {
	dir := t.TempDir()
	p := writeConfig(t, fmt.Sprintf(`token_file: token
data_dir: data
commands:
  lb-out: [/usr/bin/touch, "%s/out-{instance}"]
  lb-in: [/bin/sh, -c, "echo checking {instance}; echo {instance} is not in the pool >&2; exit 2"]
services:
  A:
    driver: fake
    balancer: { drain_command: lb-out, undrain_command: lb-in }
    instances:
      a1: { port: 18081 }
`, dir))
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Builtin{"fake": &fakeDriver{}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	step := func(name string) (api.StepResult, error) {
		return a.Step(context.Background(), "A", "a1", name, api.StepRequest{Run: "run-1"}, nil)
	}
	if svcs := a.Services(); fmt.Sprint(svcs[0].Balancers) != "map[a1:command]" {
		t.Errorf("services: %+v", svcs)
	}
	if res, err := step("drain"); err != nil || res.Message != "ran lb-out" {
		t.Fatalf("drain: %+v %v", res, err)
	}
	if _, err := filepath.Glob(filepath.Join(dir, "out-a1")); err != nil {
		t.Fatal(err)
	}
	_, err = step("undrain")
	if err == nil || !strings.HasPrefix(err.Error(), "undrain A/a1: lb-in failed (exit status 2): a1 is not in the pool\n") {
		t.Fatalf("undrain: %v", err)
	}
	h, _ := a.History(api.HistoryQuery{})
	var got []string
	for _, e := range h.Entries {
		got = append(got, e.Step+" "+e.Result+": "+e.Message)
	}
	if want := "undrain failed: undrain A/a1: lb-in failed (exit status 2): a1 is not in the pool|drain ok: ran lb-out"; strings.Join(got, "|") != want {
		t.Errorf("history:\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
	res, err := a.Status(context.Background(), "A", "a1")
	if err != nil || res.Output["balancer"] != "command" || !strings.Contains(res.Message, "balancer commands lb-out/lb-in") {
		t.Errorf("status: %+v %v", res, err)
	}
}
