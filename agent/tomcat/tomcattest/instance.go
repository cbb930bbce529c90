package tomcattest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// CreateInstance makes a CATALINA_BASE in dir with Debian's
// tomcat10-instance-create: an HTTP connector on 127.0.0.1:httpPort, the
// shutdown port on 127.0.0.1:shutdownPort, and an empty webapps/.
//
// dir must not exist or be an empty directory (a fresh t.TempDir() will do):
// tomcat10-instance-create refuses an existing directory, so an empty one is
// removed first. It works as root; the base belongs to the caller's user.
func CreateInstance(ctx context.Context, dir string, httpPort, shutdownPort int) error {
	fail := func(err error) error { return fmt.Errorf("create tomcat instance %s: %w", dir, err) }
	if httpPort <= 0 || shutdownPort <= 0 || httpPort == shutdownPort {
		return fail(fmt.Errorf("need two different ports, got http %d and shutdown %d", httpPort, shutdownPort))
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	if entries, err := os.ReadDir(dir); err == nil {
		if len(entries) > 0 {
			return fail(errors.New("directory exists and is not empty"))
		}
		if err := os.Remove(dir); err != nil {
			return fail(err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}

	tool, err := exec.LookPath("tomcat10-instance-create")
	if err != nil {
		return fail(fmt.Errorf("%w (install Debian's tomcat10-user: `make deps`)", err))
	}
	cmd := exec.CommandContext(ctx, tool, "-p", strconv.Itoa(httpPort), "-c", strconv.Itoa(shutdownPort), dir)
	// The script asks for <ENTER> when it believes a port is in use; answer
	// it rather than hang.
	cmd.Stdin = strings.NewReader("\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fail(fmt.Errorf("tomcat10-instance-create: %w: %s", err, bytes.TrimSpace(out)))
	}

	serverXML := filepath.Join(dir, "conf", "server.xml")
	data, err := os.ReadFile(serverXML)
	if err != nil {
		return fail(err)
	}
	edits := []struct{ old, new string }{
		{
			fmt.Sprintf(`<Connector port="%d" protocol="HTTP/1.1"`, httpPort),
			fmt.Sprintf(`<Connector address="127.0.0.1" port="%d" protocol="HTTP/1.1"`, httpPort),
		},
		{
			fmt.Sprintf(`<Server port="%d" `, shutdownPort),
			fmt.Sprintf(`<Server address="127.0.0.1" port="%d" `, shutdownPort),
		},
	}
	text := string(data)
	for _, e := range edits {
		if n := strings.Count(text, e.old); n != 1 {
			return fail(fmt.Errorf("conf/server.xml: found %q %d times, want once", e.old, n))
		}
		text = strings.Replace(text, e.old, e.new, 1)
	}
	if err := os.WriteFile(serverXML, []byte(text), 0o644); err != nil {
		return fail(err)
	}

	webapps := filepath.Join(dir, "webapps")
	entries, err := os.ReadDir(webapps)
	if err != nil {
		return fail(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(webapps, e.Name())); err != nil {
			return fail(err)
		}
	}
	return nil
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
