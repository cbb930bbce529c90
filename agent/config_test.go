package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodConfig = `listen: 127.0.0.1:7701
token_file: token
data_dir: data
commands:
  drain: ["/bin/echo", "{instance}"]
  notify: ["/bin/echo", "{service}/{instance}:{port}", "--wait={arg:seconds}", "{arg:who}", "{}", '{"a":1}']
services:
  A:
    driver: tomcat
    context: /app
    health: { timeout: 30s }
    instances:
      a1: { catalina_base: /opt/a1, port: 8081 }
      a2: { catalina_base: /opt/a2, port: 8082, stop_timeout: 5s }
`

func TestLoadConfig(t *testing.T) {
	p := writeConfig(t, goodConfig)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "0123456789abcdef0123" || c.DataDir != filepath.Join(filepath.Dir(p), "data") {
		t.Fatalf("token %q data_dir %q", c.token, c.DataDir)
	}
	a := c.Services["A"]
	if a.KeepReleases != 5 || a.Health.Path != "/app" || a.Health.ExpectStatus != 200 || time.Duration(a.Health.Timeout) != 30*time.Second || time.Duration(a.Health.Interval) != 100*time.Millisecond {
		t.Fatalf("defaults: %+v", a)
	}
	if c.HTTP != (HTTPConfig{MaxConnections: 512, ReadHeaderTimeout: Duration(10 * time.Second), IdleTimeout: Duration(time.Minute), ReadTimeout: Duration(time.Minute), WriteTimeout: Duration(time.Minute)}) {
		t.Fatalf("http defaults: %+v", c.HTTP)
	}
	a2 := a.instances["a2"]
	if a2.Port != 8082 || a2.Config["catalina_base"] != "/opt/a2" || a2.Config["stop_timeout"] != "5s" || a2.Context != "/app" {
		t.Fatalf("a2 = %+v", a2)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown key", "data_dir: data", "data_dir: data\ndatadir: x", "field datadir not found"},
		{"no token file", "token_file: token", "token_file: nope", "token_file: open"},
		{"no data dir", "data_dir: data\n", "", "data_dir: missing"},
		{"bad listen", "127.0.0.1:7701", "7701", `listen: "7701" is not host:port`},
		{"no driver", "    driver: tomcat\n", "", "services.A.driver: missing"},
		{"bad context", "context: /app", "context: app", `services.A.context: "app" must be`},
		{"dotdot context", "context: /app", "context: /../etc", "services.A.context"},
		{"no port", "a1: { catalina_base: /opt/a1, port: 8081 }", "a1: { catalina_base: /opt/a1 }", "services.A.instances.a1.port: missing"},
		{"same port", "port: 8082", "port: 8081", "services.A.instances.a2.port: 8081 is also the port of A/a1"},
		{"bad instance name", "a1: {", "a..1: {", "services.A.instances.a..1: instance names"},
		{"bad service name", "  A:\n", "  A/B:\n", "services.A/B: service names"},
		{"bad deploy mode", "context: /app", "context: /app\n    deploy_mode: warm", `services.A.deploy_mode: "warm" is not a mode (hot or restart)`},
		{"keep one", "health: { timeout: 30s }", "health: { timeout: 30s }\n    keep_releases: 1", "services.A.keep_releases: at least 2"},
		{"bad duration", "timeout: 30s", "timeout: soon", `"soon" is not a duration`},
		{"negative step timeout", "data_dir: data\n", "data_dir: data\nstep_timeout: -5m\n", "step_timeout: -5m0s is negative (give the longest a step may run, e.g. 15m)"},
		{"negative health timeout", "timeout: 30s", "timeout: -30s", "services.A.health.timeout: -30s is negative (give a positive duration, e.g. 90s)"},
		{"negative health interval", "timeout: 30s", "timeout: 30s, interval: -1ms", "services.A.health.interval: -1ms is negative (give a positive duration, e.g. 100ms)"},
		{"expect status too low", "timeout: 30s", "timeout: 30s, expect_status: 99", "services.A.health.expect_status: 99 is not an HTTP status (100 to 599, e.g. 200)"},
		{"expect status too high", "timeout: 30s", "timeout: 30s, expect_status: 600", "services.A.health.expect_status: 600 is not an HTTP status (100 to 599"},
		{"too few connections", "data_dir: data\n", "data_dir: data\nhttp: { max_connections: 8 }\n", "http.max_connections: 8 is out of range (16 to 1048576; default 512)"},
		{"negative connections", "data_dir: data\n", "data_dir: data\nhttp: { max_connections: -1 }\n", "http.max_connections: -1 is out of range"},
		{"negative idle timeout", "data_dir: data\n", "data_dir: data\nhttp: { idle_timeout: -1s }\n", "http.idle_timeout: -1s is negative (give a positive duration, e.g. 1m0s)"},
		{"negative write timeout", "data_dir: data\n", "data_dir: data\nhttp: { write_timeout: -1s }\n", "http.write_timeout: -1s is negative"},
		{"unknown http key", "data_dir: data\n", "data_dir: data\nhttp: { max_conns: 64 }\n", "field max_conns not found"},
		{"size overflows", "data_dir: data\n", "data_dir: data\nmax_artifact_size: 9000000000GiB\n", `"9000000000GiB" is too large a size`},
		{"size overflows to zero", "data_dir: data\n", "data_dir: data\nmax_artifact_size: 17179869184GiB\n", `"17179869184GiB" is too large a size`},
		{"expect status negative", "timeout: 30s", "timeout: 30s, expect_status: -200", "services.A.health.expect_status: -200 is not an HTTP status"},
		{"relative command", "/bin/echo", "echo", "commands.drain: give the program as an absolute path"},
		{"missing program", "/bin/echo", "/opt/lb/drain.sh", "commands.drain: /opt/lb/drain.sh does not exist"},
		{"program not executable", "/bin/echo", "/etc/passwd", "commands.drain: /etc/passwd is not an executable file"},
		{"program a directory", "/bin/echo", "/bin", "commands.drain: /bin is not an executable file"},
		{"placeholder in program", `"/bin/echo"`, `"/bin/{arg:prog}"`, "commands.drain: /bin/{arg:prog}: the program cannot hold placeholders"},
		{"unknown placeholder", "{instance}", "{instnace}", `commands.drain: unknown placeholder {instnace} in "{instnace}" (placeholders: {service}, {instance}, {port}, {arg:NAME}`},
		{"unnamed argument", "{instance}", "--wait={arg:}", "commands.drain: unknown placeholder {arg:}"},
		{"command is no argument", "{instance}", "{arg:command}", "commands.drain: {arg:command}: command is the name of the command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Replace(goodConfig, tt.from, tt.to, 1)
			if body == goodConfig {
				t.Fatalf("test does not change the config: %q", tt.from)
			}
			_, err := LoadConfig(writeConfig(t, body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
