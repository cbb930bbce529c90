// Package jartest makes real fat-JAR fixtures for tests and the demo: an
// executable JAR, built with the JDK's javac and jar tools, whose HTTP
// server says which version it is, and free ports to run it on.
//
// It is an ordinary (non-test) package so that the tests of other packages
// (the agent's end-to-end tests) can use it; nothing outside tests and the
// demo should import it. It knows nothing of the jar driver or the agent.
package jartest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// mainJava is the application's source: see its class comment.
//
//go:embed Main.java
var mainJava string

// MainClass is the JAR's Main-Class.
const MainClass = "baepo.testapp.Main"

// HangOnTermArg is the application argument that makes its shutdown hook
// hang, so that SIGTERM never ends the JVM and only SIGKILL does.
const HangOnTermArg = "--hang-on-term"

// BuildJAR compiles the test application with javac, packs it with jar into
// an executable JAR in dir, and returns the JAR's path (dir/app-<version>.jar).
//
// The application listens on 127.0.0.1 at the port of its --server.port=N
// argument (Spring Boot's spelling, the jar driver's default port_arg) or,
// without one, of the PORT environment variable. It answers GET /version
// with version and a newline, and GET /health with "ok" and a newline; it
// prints "testapp <version> listening on 127.0.0.1:<port>" once it serves,
// and exits cleanly on SIGTERM (but see HangOnTermArg).
func BuildJAR(ctx context.Context, dir, version string) (string, error) {
	fail := func(err error) (string, error) { return "", fmt.Errorf("build JAR %s in %s: %w", version, dir, err) }
	if version == "" || strings.ContainsAny(version, "\r\n") {
		return fail(errors.New("the version must be one non-empty line"))
	}
	javac, err := jdkTool("javac")
	if err != nil {
		return fail(err)
	}
	jar, err := jdkTool("jar")
	if err != nil {
		return fail(err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	stage, err := os.MkdirTemp(dir, ".jar-*")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(stage)

	src := filepath.Join(stage, "src", "baepo", "testapp", "Main.java")
	classes := filepath.Join(stage, "classes")
	files := map[string]string{
		src: mainJava,
		filepath.Join(classes, "baepo", "testapp", "version.txt"): version + "\n",
	}
	for p, body := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return fail(err)
		}
	}
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", filepath.Base(name), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := run(javac, "-encoding", "UTF-8", "-d", classes, src); err != nil {
		return fail(err)
	}
	out := filepath.Join(dir, "app-"+safeName(version)+".jar")
	if err := run(jar, "--create", "--file", out, "--main-class", MainClass, "-C", classes, "."); err != nil {
		return fail(err)
	}
	return out, nil
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// jdkTool finds one of the JDK's tools: on PATH, under $JAVA_HOME, or in
// Debian's default JDK.
func jdkTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, home := range []string{os.Getenv("JAVA_HOME"), "/usr/lib/jvm/default-java"} {
		if home == "" {
			continue
		}
		p := filepath.Join(home, "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s on PATH, in $JAVA_HOME or /usr/lib/jvm/default-java (install default-jdk-headless: `make deps`)", name)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
