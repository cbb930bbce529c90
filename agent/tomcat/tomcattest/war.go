package tomcattest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WAROptions changes the WAR that BuildWAR makes.
type WAROptions struct {
	// FailHealth leaves out the health file, so that GET <context>/health
	// answers 404 and a health check fails.
	FailHealth bool
}

// BuildWAR builds a real WAR with the JDK's jar tool in dir and returns its
// path (dir/app-<version>.war). The WAR holds static files only, which
// Tomcat's default servlet serves:
//
//	version.txt  the version followed by a newline
//	health       "ok" (left out with FailHealth)
func BuildWAR(ctx context.Context, dir, version string, opts WAROptions) (string, error) {
	fail := func(err error) (string, error) { return "", fmt.Errorf("build WAR %s in %s: %w", version, dir, err) }
	if version == "" {
		return fail(errors.New("empty version"))
	}
	jar, err := jarTool()
	if err != nil {
		return fail(err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	stage, err := os.MkdirTemp(dir, ".war-*")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(stage)

	files := map[string]string{
		"version.txt": version + "\n",
		"WEB-INF/web.xml": `<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0">
  <display-name>baepo test app ` + html.EscapeString(version) + `</display-name>
</web-app>
`,
	}
	if !opts.FailHealth {
		files["health"] = "ok"
	}
	for name, body := range files {
		p := filepath.Join(stage, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return fail(err)
		}
	}

	war := filepath.Join(dir, "app-"+safeName(version)+".war")
	cmd := exec.CommandContext(ctx, jar, "--create", "--file", war, "-C", stage, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("jar: %w: %s", err, bytes.TrimSpace(out)))
	}
	return war, nil
}

// jarTool finds the JDK's jar: on PATH, under $JAVA_HOME, or Debian's
// default JDK.
func jarTool() (string, error) {
	if p, err := exec.LookPath("jar"); err == nil {
		return p, nil
	}
	for _, home := range []string{os.Getenv("JAVA_HOME"), "/usr/lib/jvm/default-java"} {
		if home == "" {
			continue
		}
		p := filepath.Join(home, "bin", "jar")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no jar tool on PATH, in $JAVA_HOME or /usr/lib/jvm/default-java (install default-jdk-headless: `make deps`)")
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
