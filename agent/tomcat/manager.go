package tomcat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// managerCallTimeout bounds the manager's quick calls (list, undeploy); a
// deploy runs as long as the context it starts, within the step's deadline.
const managerCallTimeout = 30 * time.Second

// manager is Tomcat's manager text interface of one instance
// (/manager/text/), reached on loopback with HTTP basic auth as a user with
// role manager-script.
type manager struct {
	base     string // http://127.0.0.1:8080/manager/text
	user     string
	password string
}

// deployed is one version of a context as the manager lists it.
type deployed struct {
	version  string // "" for the unversioned context
	running  bool
	sessions int
}

// manager returns the instance's manager client, reading the password from
// manager_password_file. Its errors begin with the key.
func (c *config) manager() (*manager, error) {
	if c.passwordFile == "" {
		return nil, fmt.Errorf("%s: missing (hot deploys go through Tomcat's manager, and the agent needs its password)", keyManagerPasswordFile)
	}
	data, err := os.ReadFile(c.passwordFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyManagerPasswordFile, err)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return nil, fmt.Errorf("%s: %s is empty (write the password of manager_user %s in it)", keyManagerPasswordFile, c.passwordFile, c.managerUser)
	}
	host := "127.0.0.1"
	if a := net.ParseIP(c.connectorAddress(c.port)); a != nil && !a.IsUnspecified() {
		host = a.String()
	}
	return &manager{
		base:     "http://" + net.JoinHostPort(host, strconv.Itoa(c.port)) + "/manager/text",
		user:     c.managerUser,
		password: pw,
	}, nil
}

// call runs one manager command and returns its answer's first line after
// "OK - ". A "FAIL - " answer is an error carrying Tomcat's words.
func (m *manager) call(ctx context.Context, cmd string, q url.Values) (ok string, body []string, err error) {
	u := m.base + "/" + cmd
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, err
	}
	req.SetBasicAuth(m.user, m.password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("manager %s: %w (is Tomcat up, and its manager deployed?)", cmd, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return "", nil, fmt.Errorf("manager %s: 401 Unauthorized: %s and the password in %s do not match conf/tomcat-users.xml", cmd, keyManagerUser+" "+m.user, keyManagerPasswordFile)
	case http.StatusForbidden:
		return "", nil, fmt.Errorf("manager %s: 403 Forbidden: give user %s the role manager-script in conf/tomcat-users.xml, and let the manager's RemoteAddrValve allow 127.0.0.1", cmd, m.user)
	case http.StatusNotFound:
		return "", nil, fmt.Errorf("manager %s: 404 at %s: deploy the manager (conf/Catalina/localhost/manager.xml, see docs/agent.md)", cmd, m.base)
	default:
		return "", nil, fmt.Errorf("manager %s: %s", cmd, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		body = append(body, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return "", nil, fmt.Errorf("manager %s: %w", cmd, err)
	}
	if len(body) == 0 {
		return "", nil, fmt.Errorf("manager %s: empty answer", cmd)
	}
	if rest, found := strings.CutPrefix(body[0], "OK - "); found {
		return rest, body[1:], nil
	}
	return "", nil, &managerError{cmd: cmd, text: body[0]}
}

// managerError is a "FAIL - " answer of the manager.
type managerError struct{ cmd, text string }

func (e *managerError) Error() string { return "manager " + e.cmd + ": " + e.text }

// list returns the versions of context path (as the manager spells it: "/"
// or "/app") that Tomcat has deployed, whose webapps/ name is name.
func (m *manager) list(ctx context.Context, path, name string) ([]deployed, error) {
	ctx, cancel := context.WithTimeout(ctx, managerCallTimeout)
	defer cancel()
	_, lines, err := m.call(ctx, "list", nil)
	if err != nil {
		return nil, err
	}
	var out []deployed
	for _, line := range lines {
		// path:state:sessions:docBase; a versioned context lists its bare
		// path and the versioned name as docBase: /app:running:0:app##0001.
		f := strings.SplitN(line, ":", 4)
		if len(f) != 4 || f[0] != path {
			continue
		}
		n, _ := strconv.Atoi(f[2])
		d := deployed{running: f[1] == "running", sessions: n}
		base := strings.TrimSuffix(filepath.Base(f[3]), ".war")
		if v, ok := strings.CutPrefix(base, name+"##"); ok {
			d.version = v
		}
		out = append(out, d)
	}
	return out, nil
}

// deploy has Tomcat deploy war, a file in webapps/ named for path and
// version, and returns once the version has started. A version that fails
// to start is a *managerError; Tomcat keeps it, stopped.
func (m *manager) deploy(ctx context.Context, path, version, war string) (string, error) {
	ok, _, err := m.call(ctx, "deploy", url.Values{"path": {path}, "version": {version}, "war": {"file:" + war}})
	return ok, err
}

// undeploy has Tomcat stop a version and remove its WAR and exploded
// directory from webapps/; version "" is the unversioned context.
func (m *manager) undeploy(ctx context.Context, path, version string) error {
	ctx, cancel := context.WithTimeout(ctx, managerCallTimeout)
	defer cancel()
	q := url.Values{"path": {path}}
	if version != "" {
		q.Set("version", version)
	}
	_, _, err := m.call(ctx, "undeploy", q)
	return err
}

// isNoContext reports whether err is the manager's answer to an undeploy
// of a version it does not have.
func isNoContext(err error) bool {
	var me *managerError
	return errors.As(err, &me) && strings.Contains(me.text, "No context exists")
}
